# The paper's figures. Which terms and models to draw is config (figures, and
# datasets.<name>.figures), with the paper's choices as defaults. They are light: on a
# cluster they run on the submitting node.


localrules:
    figure1,
    figure2,
    figure3,


rule figure1:
    input:
        factors=lambda wc: factors_path(wc.dataset, figure_settings(wc.dataset, "fig1")["model"]),
        code=code("figure1"),
    output:
        by_condition=report(
            "results/{dataset}/figures/fig1_condition.png",
            caption="../report/figure1.rst",
            category="Figures",
            subcategory="{dataset}",
        ),
        by_cell_type=report(
            "results/{dataset}/figures/fig1_cell_type.png",
            caption="../report/figure1.rst",
            category="Figures",
            subcategory="{dataset}",
        ),
        by_condition_pdf="results/{dataset}/figures/fig1_condition.pdf",
        by_cell_type_pdf="results/{dataset}/figures/fig1_cell_type.pdf",
    params:
        terms=lambda wc: figure_settings(wc.dataset, "fig1")["terms"],
        dataset="{dataset}",
        model=lambda wc: figure_settings(wc.dataset, "fig1")["model"],
        label=lambda wc: model_label(figure_settings(wc.dataset, "fig1")["model"]),
        seed=config["seed"],
    log:
        "logs/{dataset}/figure1.log",
    benchmark:
        "results/benchmarks/{dataset}/figure1.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/figure1.py"


rule figure2:
    input:
        scores="results/{dataset}/scores.tsv",
        code=code("figure2"),
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
        models=lambda wc: figure2_models(wc.dataset),
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
        factors=lambda wc: factors_path(wc.dataset, figure_settings(wc.dataset, "fig3")["model"]),
        code=code("figure3"),
    output:
        png=report(
            "results/{dataset}/figures/fig3_groups.png",
            caption="../report/figure3.rst",
            category="Figures",
            subcategory="{dataset}",
        ),
        pdf="results/{dataset}/figures/fig3_groups.pdf",
    params:
        terms=lambda wc: figure_settings(wc.dataset, "fig3")["terms"],
        cell_types=lambda wc: figure_settings(wc.dataset, "fig3")["cell_types"],
        group_key=lambda wc: figure_settings(wc.dataset, "fig3").get("group_key", "group"),
        groups=lambda wc: figure_settings(wc.dataset, "fig3").get("groups", []),
        dataset="{dataset}",
        model=lambda wc: figure_settings(wc.dataset, "fig3")["model"],
        label=lambda wc: model_label(figure_settings(wc.dataset, "fig3")["model"]),
        seed=config["seed"],
    log:
        "logs/{dataset}/figure3.log",
    benchmark:
        "results/benchmarks/{dataset}/figure3.tsv"
    conda:
        "../../envs/results.yaml"
    script:
        "../scripts/figure3.py"
