"""The calibration figure: each top term group's and term's score against its null band.

Two panels, groups first: the ``top_n`` groups and the ``top_n`` terms by mean score.
For each, a grey band spans the 5-95 % range of the matched random units (the null of its
size, :mod:`iae_pipeline.analyses.null`) with a tick at their median; small dots are the
replicates, the diamond their mean, filled when the unit passes Benjamini-Hochberg at
``alpha``. The right margin gives the adjusted p-value and, for a group, which member
leads in how many replicates; for a term of a group, in how many replicates it leads the
group (a term's place is never shown as settled when the replicates disagree).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from iae_pipeline.figures.style import (
    OKABE_ITO,
    message_figure,
    new_figure,
    notes_footer,
    style_context,
    wrap,
)
from interpretable_ae.genesets import display_name

SIGNIFICANT, OTHER, BAND = OKABE_ITO[1], "0.2", "0.85"


def score_label(score: str) -> str:
    """The axis label of a calibrated score."""
    return {
        "response_share": "response share (part of the condition's change)",
        "accuracy_cv": "cross-validated accuracy",
        "accuracy_train": "training accuracy",
        "auroc": "AUROC",
    }.get(score, score)


def _p_text(padj: float) -> str:
    if not np.isfinite(padj):
        return "FDR –"
    return f"FDR {padj:.2g}" if padj >= 1e-3 else f"FDR {padj:.1e}"


def _panel(ax, rows: pd.DataFrame, values: dict, labels, notes_right, alpha) -> None:
    y = np.arange(len(rows))[::-1]
    for yi, (_, row), label, right in zip(y, rows.iterrows(), labels, notes_right, strict=True):
        ax.plot([row["null_q05"], row["null_q95"]], [yi, yi], color=BAND, lw=7,
                solid_capstyle="butt", zorder=1)  # fmt: skip
        ax.plot([row["null_median"]] * 2, [yi - 0.25, yi + 0.25], color="0.55", lw=1, zorder=2)
        points = values.get(row["unit"], np.array([]))
        jitter = np.linspace(-0.15, 0.15, len(points)) if len(points) > 1 else np.zeros(1)
        ax.scatter(points, yi + jitter[: len(points)], s=7, color="0.35", lw=0, zorder=3)
        passed = bool(row["padj"] < alpha)
        ax.scatter([row["score_mean"]], [yi], marker="D", s=34, zorder=4,
                   facecolor=SIGNIFICANT if passed else "white",
                   edgecolor=SIGNIFICANT if passed else OTHER, lw=1.0)  # fmt: skip
        ax.annotate(right, (1.01, yi), xycoords=("axes fraction", "data"), fontsize=6.5,
                    va="center", ha="left", color=SIGNIFICANT if passed else "0.25")  # fmt: skip
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.axvline(0, color="0.75", lw=0.6, zorder=0)


def _labels(top_groups, top_terms, members):
    """Row labels and right-margin notes of both panels."""
    group_labels = [
        wrap(display_name(r.group_name) + (f" (+{r.members - 1})" if r.members > 1 else ""), 40)
        for r in top_groups.itertuples()
    ]
    group_right = [
        _p_text(r.padj) + (f"\n{wrap(display_name(r.leader), 22)}\nleads {r.leader_count}/"
                           f"{r.replicates}" if r.members > 1 else "")
        for r in top_groups.itertuples()
    ]  # fmt: skip
    term_labels = [wrap(display_name(t), 40) for t in top_terms["term"]]
    term_right = [
        _p_text(r.padj) + (f"\nleads its group {r.leads}/{r.replicates}"
                           if members.get(r.group, 1) > 1 else "")
        for r in top_terms.itertuples()
    ]  # fmt: skip
    return group_labels, group_right, term_labels, term_right


def plot_calibration(
    groups: pd.DataFrame,
    terms: pd.DataFrame,
    values: pd.DataFrame,
    *,
    top_n: int = 12,
    alpha: float = 0.05,
    title: str = "",
) -> tuple[Figure, list[str]]:
    """The figure of one model and score (module docstring).

    Parameters
    ----------
    groups, terms, values
        The tables of :func:`iae_pipeline.analyses.calibration.calibrate` (one score).
    top_n
        Groups and terms drawn.
    alpha
        The FDR level of the filled markers.
    title
        The figure's title.

    Returns
    -------
    tuple
        The figure and its notes.
    """
    notes: list[str] = []
    if groups.empty or terms.empty:
        notes.append("no annotated factor to calibrate.")
        return message_figure(title or "Calibration", " ".join(notes)), notes
    score = str(groups["score"].iloc[0])
    top_groups = groups.nsmallest(top_n, "rank").assign(unit=lambda t: t["group"].astype(str))
    top_terms = terms.sort_values("score_mean", ascending=False).head(top_n)
    top_terms = top_terms.assign(unit=top_terms["term"].astype(str))
    members = groups.set_index("group")["members"]
    per_unit = {
        level: {unit: grp["value"].to_numpy() for unit, grp in part.groupby("unit")}
        for level, part in values.groupby("level")
    }
    group_labels, group_right, term_labels, term_right = _labels(top_groups, top_terms, members)
    n_rows = max(len(top_groups), len(top_terms))
    with style_context():
        fig = new_figure(12.5, 1.2 + 0.42 * n_rows, notes)
        fig.get_layout_engine().set(wspace=0.12)  # room for the left panel's notes
        axes = fig.subplots(1, 2)
        _panel(axes[0], top_groups, per_unit.get("group", {}),
               group_labels, group_right, alpha)  # fmt: skip
        _panel(axes[1], top_terms, per_unit.get("term", {}),
               term_labels, term_right, alpha)  # fmt: skip
        axes[0].set_title(f"Term groups (top {len(top_groups)} of {len(groups)})", fontsize=9)
        axes[1].set_title(f"Terms (top {len(top_terms)} of {len(terms)})", fontsize=9)
        for ax in axes:
            ax.set_xlabel(score_label(score))
        handles = [
            Patch(color=BAND, label="random masks, same size: 5–95 %"),
            Line2D([], [], color="0.55", lw=1, label="their median"),
            Line2D([], [], marker="o", ls="", color="0.35", ms=3, label="replicates"),
            Line2D([], [], marker="D", ls="", mfc=SIGNIFICANT, mec=SIGNIFICANT,
                   label=f"mean, FDR < {alpha:g}"),
            Line2D([], [], marker="D", ls="", mfc="white", mec=OTHER, label="mean, not significant"),
        ]  # fmt: skip
        fig.legend(handles=handles, loc="outside lower center", frameon=False, ncols=5)
        if title:
            fig.suptitle(title, fontsize=10)
        notes_footer(fig, notes)
    return fig, notes
