# Analyses beyond the paper (config: analyses, and datasets.<name>.sample_key / paired /
# control): gene-set refinement per model, a donor-level test of every factor against the
# condition, and classical baselines (prerank GSEA, score_genes) beside the models' ranks.
# Refinement and the donor test are light: on a cluster they run on the submitting node;
# the baselines score every term on every cell, minutes on the paper's larger datasets.


localrules:
    refinement,
    donor_test,


rule refinement:
    wildcard_constraints:
        model=_alternatives(list(MODELS)),
    input:
        prepared="results/{dataset}/prepared.h5ad",
        factors=lambda wc: replicate_factors(wc.dataset, wc.model),
    output:
        genes="results/{dataset}/{model}/refinement.tsv",
        terms="results/{dataset}/{model}/refinement_terms.tsv",
        html=report(
            "results/{dataset}/{model}/refinement_terms.html",
            caption="../report/refinement.rst",
            category="Analyses",
            subcategory="{dataset}",
        ),
        png=report(
            "results/{dataset}/figures/refinement_{model}.png",
            caption="../report/refinement.rst",
            category="Analyses",
            subcategory="{dataset}",
        ),
        pdf="results/{dataset}/figures/refinement_{model}.pdf",
    params:
        dataset="{dataset}",
        model="{model}",
        label=lambda wc: model_label(wc.model),
        min_weight=config["analyses"]["refinement"]["min_weight"],
        terms=config["analyses"]["refinement"]["terms"],
        top_terms=config["analyses"]["refinement"]["top_terms"],
        top_genes=config["analyses"]["refinement"]["top_genes"],
    log:
        "logs/{dataset}/refinement_{model}.log",
    benchmark:
        "results/benchmarks/{dataset}/refinement_{model}.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/refinement.py"


rule donor_test:
    input:
        # the prepared data carry the sample design checked before the fits; without a
        # sample key no factors are read: the job then only states that no test was run
        prepared="results/{dataset}/prepared.h5ad",
        factors=lambda wc: (
            [factors_path(wc.dataset, m) for m in analysis_models(wc.dataset)]
            if donor_design(wc.dataset)["sample_key"]
            else []
        ),
    output:
        tsv="results/{dataset}/donor_test.tsv",
        html=report(
            "results/{dataset}/donor_test.html",
            caption="../report/donor_test.rst",
            category="Analyses",
            subcategory="{dataset}",
        ),
        png=report(
            "results/{dataset}/figures/donor_test.png",
            caption="../report/donor_test.rst",
            category="Analyses",
            subcategory="{dataset}",
        ),
        pdf="results/{dataset}/figures/donor_test.pdf",
    params:
        dataset="{dataset}",
        models=lambda wc: analysis_models(wc.dataset),
        labels={m: model_label(m) for m in MODELS},
        design=lambda wc: donor_design(wc.dataset),
        alpha=config["analyses"]["donor_test"]["alpha"],
    log:
        "logs/{dataset}/donor_test.log",
    benchmark:
        "results/benchmarks/{dataset}/donor_test.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/donor_test.py"


rule baselines:
    input:
        prepared="results/{dataset}/prepared.h5ad",
        scores="results/{dataset}/scores.tsv",
    output:
        tsv="results/{dataset}/baselines.tsv",
        html=report(
            "results/{dataset}/baselines.html",
            caption="../report/baselines.rst",
            category="Analyses",
            subcategory="{dataset}",
        ),
        png=report(
            "results/{dataset}/figures/baselines.png",
            caption="../report/baselines.rst",
            category="Analyses",
            subcategory="{dataset}",
        ),
        pdf="results/{dataset}/figures/baselines.pdf",
    params:
        dataset="{dataset}",
        models=lambda wc: analysis_models(wc.dataset),
        labels={m: model_label(m) for m in MODELS},
        ranking=config["analyses"]["baselines"]["ranking"],
        permutations=config["analyses"]["baselines"]["permutations"],
        top_n=config["analyses"]["baselines"]["top_n"],
        cv_folds=config["scoring"]["cv_folds"],
        seed=config["seed"],
        control=lambda wc: config["datasets"][wc.dataset].get("control", ""),
    log:
        "logs/{dataset}/baselines.log",
    benchmark:
        "results/benchmarks/{dataset}/baselines.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/baselines.py"
