# One AnnData per dataset: normalised, log1p, annotated highly variable genes, the gene-set
# mask I (varm['geneset_mask']) and the condition / cell type (see contract.py).


rule prepare:
    input:
        unpack(prepare_inputs),
    output:
        prepared="results/{dataset}/prepared.h5ad",
    params:
        dataset=lambda wc: dataset_settings(config, wc.dataset),
        genesets=geneset_specs,
        seed=config["seed"],
    log:
        "logs/{dataset}/prepare.log",
    benchmark:
        "results/benchmarks/{dataset}/prepare.tsv"
    resources:
        mem_mb=8000,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/prepare.py"
