# Per-factor logistic regression against the condition, per replicate; per-model tables and
# top terms over the replicates; the side-by-side tables and Table 1 (runtimes).
# Everything per model depends on that model's fits only; the side-by-side outputs gather
# the models of side_by_side_models (config/README.md).


localrules:
    summarise_model,
    top_terms,
    gather_scores,
    runtime_table,


# One job per fit: the replicates (rep{r}) and the random-mask fits (null{k},
# analyses.random_masks). Each job also scores its fit with the condition labels permuted
# within samples (seeded with `seed`): the label control of the calibration; and writes the
# response shares under analyses.random_masks.label_permutations more permutations.
rule score:
    input:
        factors="results/{dataset}/{model}/{fit}/factors.h5ad",
        prepared="results/{dataset}/prepared.h5ad",
    output:
        scores="results/{dataset}/{model}/{fit}/scores.tsv",
        permuted="results/{dataset}/{model}/{fit}/scores_permuted.tsv",
        label_null="results/{dataset}/{model}/{fit}/label_null.tsv",
    params:
        dataset="{dataset}",
        model="{model}",
        replicate=lambda wc: fit_index(wc.fit),
        cv_folds=config["scoring"]["cv_folds"],
        seed=config["seed"],
        design=lambda wc: donor_design(wc.dataset),
        label_permutations=lambda wc: label_permutations(wc.model, wc.fit),
    log:
        "logs/{dataset}/score_{model}_{fit}.log",
    benchmark:
        "results/benchmarks/{dataset}/score_{model}_{fit}.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/score.py"


rule summarise_model:
    input:
        scores=lambda wc: replicate_scores(wc.dataset, wc.model),
    output:
        scores=report(
            "results/{dataset}/{model}/scores.tsv",
            caption="../report/scores.rst",
            category="Tables",
            subcategory="{dataset}",
        ),
        summary=report(
            "results/{dataset}/{model}/summary.tsv",
            caption="../report/summary.rst",
            category="Tables",
            subcategory="{dataset}",
        ),
    params:
        dataset="{dataset}",
        model="{model}",
        label=lambda wc: model_label(wc.model),
        replicates=lambda wc: replicates(wc.model),
        cv_folds=config["scoring"]["cv_folds"],
        seed=config["seed"],
    log:
        "logs/{dataset}/summarise_{model}.log",
    benchmark:
        "results/benchmarks/{dataset}/summarise_{model}.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/summarise_model.py"


rule top_terms:
    input:
        factors=lambda wc: replicate_factors(wc.dataset, wc.model),
    output:
        tsv="results/{dataset}/{model}/top_terms.tsv",
        md="results/{dataset}/{model}/top_terms.md",
        html=report(
            "results/{dataset}/{model}/top_terms.html",
            caption="../report/top_terms.rst",
            category="Tables",
            subcategory="{dataset}",
        ),
    params:
        model="{model}",
        label=lambda wc: model_label(wc.model),
        replicates=lambda wc: replicates(wc.model),
        n=config["scoring"]["top_n"],
        dataset="{dataset}",
    log:
        "logs/{dataset}/top_terms_{model}.log",
    benchmark:
        "results/benchmarks/{dataset}/top_terms_{model}.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/top_terms.py"


rule gather_scores:
    input:
        scores=lambda wc: [
            f"results/{wc.dataset}/{m}/scores.tsv" for m in side_by_side_inputs(wc.dataset)
        ],
        summaries=lambda wc: [
            f"results/{wc.dataset}/{m}/summary.tsv" for m in side_by_side_inputs(wc.dataset)
        ],
    output:
        scores="results/{dataset}/scores.tsv",
        summary=report(
            "results/{dataset}/summary.tsv",
            caption="../report/summary.rst",
            category="Tables",
            subcategory="{dataset}",
        ),
    params:
        dataset="{dataset}",
        models=lambda wc: side_by_side_inputs(wc.dataset),
    log:
        "logs/{dataset}/gather_scores.log",
    benchmark:
        "results/benchmarks/{dataset}/gather_scores.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/gather_scores.py"


rule runtime_table:
    input:
        benchmarks=lambda wc: runtime_inputs("benchmarks"),
        factors=lambda wc: runtime_inputs("factors"),
    output:
        tsv="results/runtime.tsv",
        md="results/runtime.md",
        html=report(
            "results/runtime.html",
            caption="../report/runtime.rst",
            category="Tables",
            subcategory="Runtime (Table 1)",
        ),
    params:
        entries=lambda wc: runtime_entries(),
        reference=(AE_MODELS or list(MODELS))[0],
    log:
        "logs/runtime_table.log",
    benchmark:
        "results/benchmarks/runtime_table.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/runtime_table.py"
