# One rule per model kind; every model writes the same factor contract (contract.py):
# results/{dataset}/{model}/factors.h5ad. Snakemake's benchmark files give Table 1.


rule fit_autoencoder:
    input:
        prepared="results/{dataset}/prepared.h5ad",
        code=code("fit_autoencoder"),
    output:
        factors="results/{dataset}/{ae_model}/factors.h5ad",
        model=directory("results/{dataset}/{ae_model}/model"),
    params:
        setup="{ae_model}",
        options=lambda wc: model_options(wc.dataset, wc.ae_model),
        seed=config["seed"],
    log:
        "logs/{dataset}/fit_autoencoder_{ae_model}.log",
    benchmark:
        "results/benchmarks/{dataset}/fit_autoencoder_{ae_model}.tsv"
    # one torch thread by default: on a shared machine a second OpenMP thread can make the
    # small matmuls ten times slower; the SLURM profile gives it 2 dedicated cores
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../../envs/autoencoder.yaml"
    script:
        "../scripts/fit_autoencoder.py"


rule fit_slalom:
    input:
        prepared="results/{dataset}/prepared.h5ad",
        code=code("fit_slalom"),
    output:
        factors="results/{dataset}/{slalom_model}/factors.h5ad",
    params:
        setup="{slalom_model}",
        options=lambda wc: model_options(wc.dataset, wc.slalom_model),
        seed=config["seed"],
    log:
        "logs/{dataset}/fit_slalom_{slalom_model}.log",
    benchmark:
        "results/benchmarks/{dataset}/fit_slalom_{slalom_model}.tsv"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=7 * 24 * 60,
    conda:
        "../../envs/slalom.yaml"
    script:
        "../scripts/fit_slalom.py"
