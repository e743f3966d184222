# Analyses beyond the paper (config: analyses, and datasets.<name>.sample_key / paired /
# control): gene-set refinement per model, a donor-level test of every factor against the
# condition, and classical baselines (prerank GSEA, score_genes) beside the models' ranks.
# Refinement and the donor test are light: on a cluster they run on the submitting node;
# the baselines score every term on every cell, minutes on the paper's larger datasets.


localrules:
    refinement,
    donor_test,
    calibration,
    verdicts,


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


# The random-mask null (analyses.random_masks): a model's replicates set against its random
# fits (rules/fit.smk), term by term and group by group, with the same analysis on the
# condition labels permuted within samples as its control. Light: score tables only.
rule calibration:
    wildcard_constraints:
        model=_alternatives(CALIBRATED),
    input:
        prepared="results/{dataset}/prepared.h5ad",
        real=lambda wc: fit_tables(wc.dataset, wc.model, "rep", "scores"),
        null=lambda wc: fit_tables(wc.dataset, wc.model, "null", "scores"),
        real_permuted=lambda wc: fit_tables(wc.dataset, wc.model, "rep", "scores_permuted"),
        null_permuted=lambda wc: fit_tables(wc.dataset, wc.model, "null", "scores_permuted"),
        label_null=lambda wc: fit_tables(wc.dataset, wc.model, "rep", "label_null"),
    output:
        groups="results/{dataset}/{model}/calibration/groups.tsv",
        terms="results/{dataset}/{model}/calibration/terms.tsv",
        split="results/{dataset}/{model}/calibration/split.tsv",
        control="results/{dataset}/{model}/calibration/control.tsv",
        html=report(
            "results/{dataset}/{model}/calibration/groups.html",
            caption="../report/calibration.rst",
            category="Calibration",
            subcategory="{dataset}",
        ),
        png=report(
            "results/{dataset}/figures/calibration_{model}.png",
            caption="../report/calibration.rst",
            category="Calibration",
            subcategory="{dataset}",
        ),
        pdf="results/{dataset}/figures/calibration_{model}.pdf",
    params:
        dataset="{dataset}",
        label=lambda wc: model_label(wc.model),
        scores=RANDOM_MASKS["scores"],
        groups=RANDOM_MASKS["groups"],
        window=RANDOM_MASKS["window"],
        min_null=RANDOM_MASKS["min_null"],
        alpha=RANDOM_MASKS["alpha"],
        top_n=RANDOM_MASKS["top_n"],
        label_permutations=RANDOM_MASKS["label_permutations"],
        seed=config["seed"],
        fits=lambda wc: random_fits(wc.model),
    log:
        "logs/{dataset}/calibration_{model}.log",
    benchmark:
        "results/benchmarks/{dataset}/calibration_{model}.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/calibration.py"


# The paper's claims judged on one dataset: Figure 2, the dense factors, Table 1's ratio,
# and the interferon terms against random masks (when the autoencoder is calibrated).
rule verdicts:
    input:
        summary="results/{dataset}/summary.tsv",
        prepared="results/{dataset}/prepared.h5ad",
        benchmarks=lambda wc: [e["benchmark"] for e in verdict_entries(wc.dataset)],
        factors=lambda wc: [e["factors"] for e in verdict_entries(wc.dataset)],
        groups=lambda wc: calibration_outputs(wc.dataset, "groups"),
        terms=lambda wc: calibration_outputs(wc.dataset, "terms"),
        split=lambda wc: calibration_outputs(wc.dataset, "split"),
    output:
        tsv="results/{dataset}/verdicts.tsv",
        html=report(
            "results/{dataset}/verdicts.html",
            caption="../report/verdicts.rst",
            category="Calibration",
            subcategory="{dataset}",
        ),
    params:
        dataset="{dataset}",
        roles=lambda wc: verdict_roles(wc.dataset),
        entries=lambda wc: [
            {"model": e["model"], "replicate": e["replicate"]} for e in verdict_entries(wc.dataset)
        ],
        fig2_terms=lambda wc: figure_settings(wc.dataset, "fig2")["terms"],
        alpha=RANDOM_MASKS["alpha"],
        min_cells=10000,
    log:
        "logs/{dataset}/verdicts.log",
    benchmark:
        "results/benchmarks/{dataset}/verdicts.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/verdicts.py"
