# One AnnData per dataset: normalised, log1p, annotated highly variable genes, the gene-set
# mask I (varm['geneset_mask']) and the condition / cell type (iae_pipeline.contract).
# A dataset with a `simulation` (the demo) first gets its planted condition, a step of its own.


rule simulate:
    input:
        unpack(dataset_inputs),
    output:
        simulated="results/{dataset}/simulated.h5ad",
    params:
        dataset=lambda wc: dataset_settings(config, wc.dataset),
        genesets=geneset_specs,
    log:
        "logs/{dataset}/simulate.log",
    benchmark:
        "results/benchmarks/{dataset}/simulate.tsv"
    resources:
        mem_mb=8000,
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/simulate.py"


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
