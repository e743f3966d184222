# Downloads: one rule per source kind. They write only under resources/, check the sha256
# given in the config (an empty value: the computed one is written to the log), retry, and
# run on the submitting machine (compute nodes often have no internet).


localrules:
    download_dataset,
    download_genesets,
    download_orthologs,


rule download_dataset:
    output:
        "resources/datasets/{dataset}/{file}",
    params:
        spec=dataset_file_spec,
    log:
        "logs/download/{dataset}/{file}.log",
    benchmark:
        "results/benchmarks/download/{dataset}/{file}.tsv"
    retries: 3
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/download.py"


rule download_genesets:
    input:
        geneset_local_input,
    output:
        "resources/genesets/{geneset}.gmt",
    params:
        spec=lambda wc: config["genesets"][wc.geneset],
    log:
        "logs/download/genesets/{geneset}.log",
    benchmark:
        "results/benchmarks/download/genesets/{geneset}.tsv"
    retries: 3
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/download.py"


rule download_orthologs:
    output:
        "resources/orthologs/human_mouse.csv",
    params:
        spec=lambda wc: config["orthologs"],
    log:
        "logs/download/orthologs.log",
    benchmark:
        "results/benchmarks/download/orthologs.tsv"
    retries: 3
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/download.py"
