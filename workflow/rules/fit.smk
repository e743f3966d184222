# One rule per model kind, one job per replicate: replicate r is fitted with seed `seed + r`
# (a model whose fits do not depend on the seed only has replicate 0). Every model writes the
# same factor contract (contract.py): results/{dataset}/{model}/rep{r}/factors.h5ad.
# Snakemake's benchmark files give Table 1.


# Both fits checkpoint their training state every `checkpoint_minutes` of the config (10 by
# default; at an epoch's or iteration's end) in checkpoint/ beside their outputs (not an
# output itself): a rerun after a crash or a time limit resumes there (on SLURM the profile
# resubmits a job ended at its time limit); a checkpoint of other options or data is
# ignored; removed when done.
rule fit_autoencoder:
    input:
        prepared="results/{dataset}/prepared.h5ad",
    output:
        factors="results/{dataset}/{ae_model}/rep{rep}/factors.h5ad",
        model=directory("results/{dataset}/{ae_model}/rep{rep}/model"),
    params:
        setup="{ae_model}",
        options=lambda wc: model_options(wc.dataset, wc.ae_model),
        seed=fit_seed,
    log:
        "logs/{dataset}/fit_autoencoder_{ae_model}_rep{rep}.log",
    benchmark:
        "results/benchmarks/{dataset}/fit_autoencoder_{ae_model}_rep{rep}.tsv"
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
    output:
        factors="results/{dataset}/{slalom_model}/rep{rep}/factors.h5ad",
    params:
        setup="{slalom_model}",
        options=lambda wc: model_options(wc.dataset, wc.slalom_model),
        seed=fit_seed,
    log:
        "logs/{dataset}/fit_slalom_{slalom_model}_rep{rep}.log",
    benchmark:
        "results/benchmarks/{dataset}/fit_slalom_{slalom_model}_rep{rep}.tsv"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=7 * 24 * 60,
    conda:
        "../../envs/slalom.yaml"
    script:
        "../scripts/fit_slalom.py"


# The random-mask null (analyses.random_masks): random fit k of a model is fitted on the
# prepared mask with its gene rows permuted by seed `seed + k` (every term keeps its size
# and overlaps), with the model's own options and the same seed; one job per fit.
use rule fit_autoencoder as fit_autoencoder_null with:
    output:
        factors="results/{dataset}/{ae_model}/null{k}/factors.h5ad",
    params:
        setup="{ae_model}",
        options=lambda wc: model_options(wc.dataset, wc.ae_model),
        seed=null_fit_seed,
        random_mask=null_fit_seed,
    log:
        "logs/{dataset}/fit_autoencoder_{ae_model}_null{k}.log",
    benchmark:
        "results/benchmarks/{dataset}/fit_autoencoder_{ae_model}_null{k}.tsv"


use rule fit_slalom as fit_slalom_null with:
    output:
        factors="results/{dataset}/{slalom_model}/null{k}/factors.h5ad",
    params:
        setup="{slalom_model}",
        options=lambda wc: model_options(wc.dataset, wc.slalom_model),
        seed=null_fit_seed,
        random_mask=null_fit_seed,
    log:
        "logs/{dataset}/fit_slalom_{slalom_model}_null{k}.log",
    benchmark:
        "results/benchmarks/{dataset}/fit_slalom_{slalom_model}_null{k}.tsv"
