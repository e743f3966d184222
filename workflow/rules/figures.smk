# The paper's figures. Which terms and models to draw is config (figures, and
# datasets.<name>.figures), with the paper's choices as defaults. Figures 1 and 3 show one
# model (replicate 0) and wait for nothing else; Figure 2 sets the side-by-side models
# against each other, every replicate drawn. They read only the loadings they draw and
# subsample the points of large datasets, so they are light: on a cluster they run on the
# submitting node.


localrules:
    figure1,
    figure2,
    figure3,


rule figure1:
    input:
        factors=lambda wc: factors_path(wc.dataset, wc.model, 0),
    output:
        by_condition=report(
            "results/{dataset}/{model}/figures/fig1_condition.png",
            caption="../report/figure1.rst",
            category="Figures",
            subcategory="{dataset}",
        ),
        by_cell_type=report(
            "results/{dataset}/{model}/figures/fig1_cell_type.png",
            caption="../report/figure1.rst",
            category="Figures",
            subcategory="{dataset}",
        ),
        by_condition_pdf="results/{dataset}/{model}/figures/fig1_condition.pdf",
        by_cell_type_pdf="results/{dataset}/{model}/figures/fig1_cell_type.pdf",
    params:
        terms=lambda wc: figure_settings(wc.dataset, "fig1")["terms"],
        max_cells=lambda wc: figure_settings(wc.dataset, "fig1").get("max_cells", 50000),
        dataset="{dataset}",
        model="{model}",
        label=lambda wc: model_label(wc.model),
        seed=config["seed"],
    log:
        "logs/{dataset}/figure1_{model}.log",
    benchmark:
        "results/benchmarks/{dataset}/figure1_{model}.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/figure1.py"


rule figure2:
    input:
        scores="results/{dataset}/scores.tsv",
    output:
        png=report(
            "results/{dataset}/figures/fig2_accuracy.png",
            caption="../report/figure2.rst",
            category="Figures",
            subcategory="{dataset}",
        ),
        pdf="results/{dataset}/figures/fig2_accuracy.pdf",
    params:
        terms=lambda wc: figure_settings(wc.dataset, "fig2")["terms"],
        metric=lambda wc: figure_settings(wc.dataset, "fig2").get("metric", "accuracy_train"),
        models=lambda wc: figure2_models(wc.dataset),
        left_out=lambda wc: figure2_left_out(wc.dataset),
        labels=lambda wc: {m: model_label(m) for m in figure2_models(wc.dataset)},
        dataset="{dataset}",
    log:
        "logs/{dataset}/figure2.log",
    benchmark:
        "results/benchmarks/{dataset}/figure2.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/figure2.py"


rule figure3:
    input:
        factors=lambda wc: factors_path(wc.dataset, wc.model, 0),
    output:
        png=report(
            "results/{dataset}/{model}/figures/fig3_groups.png",
            caption="../report/figure3.rst",
            category="Figures",
            subcategory="{dataset}",
        ),
        pdf="results/{dataset}/{model}/figures/fig3_groups.pdf",
    params:
        terms=lambda wc: figure_settings(wc.dataset, "fig3")["terms"],
        cell_types=lambda wc: figure_settings(wc.dataset, "fig3")["cell_types"],
        group_key=lambda wc: figure_settings(wc.dataset, "fig3").get("group_key", "group"),
        groups=lambda wc: figure_settings(wc.dataset, "fig3").get("groups", []),
        dataset="{dataset}",
        model="{model}",
        label=lambda wc: model_label(wc.model),
        seed=config["seed"],
    log:
        "logs/{dataset}/figure3_{model}.log",
    benchmark:
        "results/benchmarks/{dataset}/figure3_{model}.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/figure3.py"
