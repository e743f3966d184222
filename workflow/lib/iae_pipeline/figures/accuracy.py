"""Figure 2: per-term accuracy of a logistic regression on each factor, models side by
side, each replicate a point on its model's bar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from iae_pipeline.figures.style import (
    category_colors,
    legend_outside,
    message_figure,
    new_figure,
    notes_footer,
    style_context,
    wrap,
)
from iae_pipeline.figures.terms import select_terms
from interpretable_ae.genesets import display_name

BEST_UNANNOTATED = "best unannotated factor"


@dataclass
class AccuracyBars:
    """What Figure 2 draws: per (term, model) the replicates' scores, in drawing order."""

    models: list[str]
    groups: list[tuple[str, str]]  # (term, its label), top to bottom
    per_bar: dict[tuple[str, str], pd.DataFrame]
    n_replicates: int
    chance: float | None
    notes: list[str]


def accuracy_bars(
    scores: pd.DataFrame,
    terms: str | Sequence[str],
    models: Sequence[str],
    *,
    metric: str = "accuracy_train",
    max_terms: int = 12,
    include_unannotated: bool = True,
    notes: Sequence[str] = (),
) -> AccuracyBars:
    """The data of Figure 2 (:func:`plot_accuracy_bars`), without drawing.

    Parameters
    ----------
    scores, terms, models, metric, max_terms, include_unannotated
        As for :func:`plot_accuracy_bars`.
    notes
        Notes to start the figure's notes with.

    Returns
    -------
    AccuracyBars
        The chosen terms (best first for a regular expression), each model's scores per
        term and replicate, each model's best unannotated factor per replicate, the
        chance level and the notes.
    """
    if metric not in scores.columns:
        raise ValueError(f"score table has no column '{metric}'; choose accuracy_train, ...")
    notes = list(notes)
    scores = scores if "replicate" in scores else scores.assign(replicate=0)
    absent_models = [m for m in models if m not in set(scores["model"])]
    if absent_models:
        notes.append(f"no scores for model(s) {absent_models}.")
    models = [m for m in models if m in set(scores["model"])]
    annotated = scores[(scores["kind"] == "annotated") & scores["model"].isin(models)]
    chosen, missing = select_terms(annotated["term"].unique(), terms)
    if missing:
        notes.append(f"term(s) {missing} are absent from all models.")
    best = annotated[annotated["term"].isin(chosen)].groupby(["term", "model"])[metric].mean()
    best = best.groupby("term").max()
    if isinstance(terms, str) and len(chosen) > max_terms:
        keep = set(best.sort_values(ascending=False).index[:max_terms])
        notes.append(f"{len(chosen)} terms match '{terms}'; showing the {max_terms} best.")
        chosen = [t for t in chosen if t in keep]
    if isinstance(terms, str):  # best first; a list keeps the order it was given in
        chosen = sorted(chosen, key=lambda t: -best.get(t, 0.0))
    rows = annotated[annotated["term"].isin(chosen)]
    groups = [(t, display_name(t)) for t in chosen]
    unannotated = scores[(scores["kind"] != "annotated") & scores["model"].isin(models)]
    if include_unannotated and not unannotated.empty:
        best_idx = unannotated.groupby(["model", "replicate"])[metric].idxmax()
        rows = pd.concat([rows, unannotated.loc[best_idx].assign(term=BEST_UNANNOTATED)])
        groups.append((BEST_UNANNOTATED, "best unannotated (sparse/dense) factor"))
    per_bar = {key: part for key, part in rows.groupby(["term", "model"], sort=False)}
    n_reps = int(scores.groupby("model")["replicate"].nunique().max())
    chance = float(scores["accuracy_chance"].max()) if "accuracy_chance" in scores else None
    return AccuracyBars(models, groups, per_bar, n_reps, chance, notes)


def plot_accuracy_bars(
    scores: pd.DataFrame,
    terms: str | Sequence[str],
    models: Sequence[str],
    labels: Mapping[str, str] | None = None,
    *,
    metric: str = "accuracy_train",
    max_terms: int = 12,
    include_unannotated: bool = True,
    title: str = "",
    extra_notes: Sequence[str] = (),
) -> tuple[Figure, list[str]]:
    """Figure 2: horizontal grouped bars, one group per term, one bar per model.

    Each bar is the mean over the model's replicates, each replicate a point on it.
    Factors switched off in every replicate are hatched (in some: said in the label),
    absent ones marked "absent". With ``include_unannotated`` a last group shows each
    model's best sparse/dense factor of each replicate, where the signal may have gone.

    Parameters
    ----------
    scores
        Score table(s) of :mod:`iae_pipeline.score.scoring`, with a ``replicate`` column
        (without: one replicate).
    terms
        A regular expression (at most ``max_terms`` terms are kept, those with the best
        mean ``metric``) or a list of names (see
        :func:`iae_pipeline.figures.terms.select_terms`).
    models
        The models to draw, in this order.
    labels
        Display names of the models.
    metric
        The score column drawn.
    max_terms
        At most this many terms for a regular expression.
    include_unannotated
        Add each model's best sparse/dense factor.
    title
        The figure's title.
    extra_notes
        Notes printed under the figure before its own.

    Returns
    -------
    tuple of matplotlib.figure.Figure and list of str
        The figure and its notes.
    """
    data = accuracy_bars(
        scores, terms, models, metric=metric, max_terms=max_terms,
        include_unannotated=include_unannotated, notes=extra_notes,
    )  # fmt: skip
    if not data.groups or not data.models:
        data.notes.append("no term matches; nothing to draw.")
        return message_figure(title or "Figure 2", " ".join(data.notes)), data.notes
    with style_context():
        fig = new_figure(7.0, 1.0 + 0.2 * len(data.models) * len(data.groups), data.notes)
        ax = fig.add_subplot()
        colors = category_colors(data.models)
        _draw_bars(ax, data, metric, colors)
        _finish_axes(ax, data, metric, colors, dict(labels or {}))
        if title:
            ax.set_title(title)
        notes_footer(fig, data.notes)
    return fig, data.notes


def _draw_bars(ax, data: AccuracyBars, metric: str, colors: Mapping[str, str]) -> None:
    """One bar per (term, model) at the replicates' mean, each replicate a point."""
    height = 0.8 / len(data.models)
    rng = np.random.default_rng(0)  # vertical jitter of the replicate points only
    for i, model in enumerate(data.models):
        for g, (term, _) in enumerate(data.groups):
            y = g - 0.4 + height * (i + 0.5)
            if (term, model) not in data.per_bar:
                what = "none" if term == BEST_UNANNOTATED else "absent"
                ax.text(0.005, y, what, va="center", ha="left", fontsize=6, color="0.4")
                continue
            part = data.per_bar[(term, model)]
            values = part[metric].to_numpy(dtype=float)
            mean = float(values.mean())
            n_off = int((~part["active"].astype(bool)).sum())
            off = n_off == len(part)
            ax.barh(
                y, mean, height=height * 0.92, color="white" if off else colors[model],
                edgecolor=colors[model], hatch="////" if off else None, lw=0.8,
                alpha=1.0 if off or len(values) == 1 else 0.55,
            )  # fmt: skip
            text = f"{mean:.2f}"
            if len(values) > 1:
                jitter = rng.uniform(-0.25, 0.25, len(values)) * height
                ax.scatter(values, y + jitter, s=6, color="black", lw=0, zorder=3)
                text += f" ± {values.std(ddof=1):.2f}"
            if off:
                text += " (off)"
            elif n_off:
                text += f" (off in {n_off} of {len(part)})"
            ax.text(max(mean, values.max()) + 0.025, y, text, va="center", fontsize=6)


def _finish_axes(
    ax, data: AccuracyBars, metric: str, colors: Mapping[str, str], labels: Mapping[str, str]
) -> None:
    """Term labels, the chance line, the axis and the legend."""
    show_chance = data.chance is not None and metric.startswith("accuracy")
    if show_chance:
        ax.axvline(data.chance, color="0.3", ls="--", lw=0.8, zorder=0)
    ax.set_yticks(range(len(data.groups)), [wrap(name, 40) for _, name in data.groups])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel(metric_label(metric))
    handles = [Patch(color=colors[m], label=wrap(labels.get(m, m), 24)) for m in data.models]
    handles.append(Patch(facecolor="white", edgecolor="0.3", hatch="////", label="switched off"))
    if data.n_replicates > 1:
        label = f"one replicate (of {data.n_replicates})"
        handles.append(ax.scatter([], [], s=6, color="black", label=label))
    if show_chance:
        handles.append(ax.plot([], [], color="0.3", ls="--", lw=0.8, label="chance")[0])
    legend_outside(ax, handles, "model")


def metric_label(metric: str) -> str:
    """The axis label of a score column.

    Parameters
    ----------
    metric
        ``accuracy_train``, ``accuracy_cv``, ``auroc`` or another column.

    Returns
    -------
    str
        What the metric is, in words.
    """
    return {
        "accuracy_train": "accuracy of a logistic regression on the factor (training)",
        "accuracy_cv": "accuracy of a logistic regression on the factor (cross-validated)",
        "auroc": "AUROC of a logistic regression on the factor (cross-validated)",
    }.get(metric, metric.replace("_", " "))
