"""Figure 2: accuracy of the chosen (e.g. IFN-related) terms, models side by side, every
replicate a point over the bar of its model's mean.

Snakemake script: input.scores (one dataset's gathered score TSV, every replicate),
params.terms (a regular expression such as "INTERFERON", or a list of names), params.models
(order), optional params.labels ({model: label}), params.metric (default accuracy_train),
params.left_out (models of fig2.models not set side by side, named in the figure),
params.dataset; output.png, output.pdf; log[0].
"""

import matplotlib

matplotlib.use("Agg")

from iae_pipeline.figures.accuracy import plot_accuracy_bars
from iae_pipeline.figures.style import finish_figure
from iae_pipeline.runner import run_script
from iae_pipeline.score.scoring import read_scores


def main(smk) -> None:
    scores = read_scores(smk.input.scores)
    terms = smk.params.terms
    terms = terms if isinstance(terms, str) else list(terms)
    dataset = str(smk.params.get("dataset", "") or ",".join(sorted(set(scores["dataset"]))))
    fig_notes = []
    left_out = list(smk.params.get("left_out", []) or [])
    if left_out:
        fig_notes.append(
            f"model(s) {left_out} not drawn: not among side_by_side_models (not finished)."
        )
    fig, notes = plot_accuracy_bars(
        scores,
        terms,
        list(smk.params.models),
        dict(smk.params.get("labels", {}) or {}),
        metric=str(smk.params.get("metric", "accuracy_train")),
        title=f"{dataset}: how well each factor predicts the condition",
        extra_notes=fig_notes,
    )
    finish_figure(fig, notes, "figure 2", smk.output.png, smk.output.pdf)


if __name__ == "__main__":
    run_script(main, snakemake)  # noqa: F821
