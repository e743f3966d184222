# Per-factor logistic regression against the condition, top terms, Table 1 (runtimes).


localrules:
    top_terms,
    runtime_table,


rule score:
    input:
        factors=lambda wc: [factors_path(wc.dataset, m) for m in MODELS],
        code=code("score"),
    output:
        scores=report(
            "results/{dataset}/scores.tsv",
            caption="../report/scores.rst",
            category="Tables",
            subcategory="{dataset}",
        ),
    params:
        dataset="{dataset}",
        models=list(MODELS),
        cv_folds=config["scoring"]["cv_folds"],
        seed=config["seed"],
    log:
        "logs/{dataset}/score.log",
    benchmark:
        "results/benchmarks/{dataset}/score.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/score.py"


rule top_terms:
    input:
        factors=lambda wc: [factors_path(wc.dataset, m) for m in MODELS],
        code=code("top_terms"),
    output:
        tsv="results/{dataset}/top_terms.tsv",
        md="results/{dataset}/top_terms.md",
        html=report(
            "results/{dataset}/top_terms.html",
            caption="../report/top_terms.rst",
            category="Tables",
            subcategory="{dataset}",
        ),
    params:
        models=list(MODELS),
        labels={m: model_label(m) for m in MODELS},
        n=config["scoring"]["top_n"],
        dataset="{dataset}",
    log:
        "logs/{dataset}/top_terms.log",
    benchmark:
        "results/benchmarks/{dataset}/top_terms.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/top_terms.py"


RUNTIME_ENTRIES = [
    {"dataset": d, "model": m, "label": model_label(m)} for d in DATASETS for m in MODELS
]


rule runtime_table:
    input:
        benchmarks=[fit_benchmark(e["dataset"], e["model"]) for e in RUNTIME_ENTRIES],
        code=code("runtime_table"),
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
        entries=RUNTIME_ENTRIES,
        reference=(AE_MODELS or list(MODELS))[0],
    log:
        "logs/runtime_table.log",
    benchmark:
        "results/benchmarks/runtime_table.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/runtime_table.py"
