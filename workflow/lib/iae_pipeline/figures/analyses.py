"""Figures of the analyses beyond the paper: gene-set refinement
(:mod:`iae_pipeline.analyses.refinement`), donor-level tests
(:mod:`iae_pipeline.analyses.donor_tests`) and the classical baselines
(:mod:`iae_pipeline.analyses.baselines`). Each returns ``(figure, notes)`` like the
paper's figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from iae_pipeline.figures.style import (
    OKABE_ITO,
    count_label,
    message_figure,
    new_figure,
    notes_footer,
    style_context,
    wrap,
)
from interpretable_ae.genesets import display_name

STATUS_COLORS = {"kept": OKABE_ITO[0], "gained": OKABE_ITO[1], "lost": "0.55"}


LOST_SHOWN = 8  # lost genes named under a refinement panel; the table has them all


def plot_refinement(
    genes: pd.DataFrame,
    summary: pd.DataFrame,
    terms: Sequence[str],
    *,
    n_genes: int = 12,
    title: str = "",
    notes: Sequence[str] = (),
) -> tuple[Figure, list[str]]:
    """Gene-set refinement: per term, the genes a model uses inside and outside its set.

    One panel per term: its most used annotated genes (a third of ``n_genes``, blue), then
    its most used genes outside the annotation (orange, with the fraction of replicates
    where gained), by mean weight; the annotated genes it lost are listed under the panel.

    Parameters
    ----------
    genes
        :func:`iae_pipeline.analyses.refinement.refinement_table`.
    summary
        :func:`iae_pipeline.analyses.refinement.term_summary`.
    terms
        The terms drawn, one panel each.
    n_genes
        Genes per panel.
    title
        The figure's title.
    notes
        Notes printed under the figure.

    Returns
    -------
    tuple of matplotlib.figure.Figure and list of str
        The figure and its notes.
    """
    notes = list(notes)
    terms = [t for t in terms if t in set(summary["term"])]
    if not terms:
        notes.append("no active annotated factor to draw.")
        return message_figure(title or "Gene-set refinement", " ".join(notes)), notes
    info = summary.set_index("term")
    n_cols = min(3, len(terms))
    n_rows = int(np.ceil(len(terms) / n_cols))
    with style_context():
        fig = new_figure(3.3 * n_cols + 0.4, (0.9 + 0.17 * n_genes) * n_rows + 0.3, notes)
        axes = fig.subplots(n_rows, n_cols, squeeze=False)
        for ax in axes.ravel()[len(terms) :]:
            ax.axis("off")
        for ax, term in zip(axes.ravel(), terms, strict=False):
            part = genes[genes["term"] == term].sort_values(["median_rank", "gene"], kind="stable")
            kept = part[part["status"] == "kept"].head(max(1, n_genes // 3))
            gained = part[part["status"] == "gained"].head(n_genes - len(kept))
            part = pd.concat([kept, gained])
            y = np.arange(len(part))
            colors = [STATUS_COLORS[s] for s in part["status"]]
            ax.barh(y, part["mean_weight"], color=colors, height=0.75)
            ax.axvline(0, color="0.3", lw=0.6)
            labels = [
                g if s == "kept" or f >= 1 else f"{g} ({f:.0%})"
                for g, s, f in zip(part["gene"], part["status"], part["fraction"], strict=True)
            ]
            ax.set_yticks(y, labels, fontsize=7)
            ax.invert_yaxis()
            row = info.loc[term]
            ax.set_title(
                wrap(display_name(term), 34)
                + f"\n{row['n_annotated']} annotated · {count_label(row['n_gained'])} gained · "
                f"{count_label(row['n_lost'])} lost",
                fontsize=8,
            )
            ax.set_xlabel("weight (mean over replicates)", fontsize=7)
            lost = str(row["lost"]).split(", ") if isinstance(row["lost"], str) else []
            if lost:
                shown = ", ".join(lost[:LOST_SHOWN])
                if len(lost) > LOST_SHOWN:
                    shown += f" and {len(lost) - LOST_SHOWN} more (table)"
                ax.text(
                    0.0,
                    -0.16 - 0.5 / max(len(part), 1),
                    wrap("lost: " + shown, 48),
                    transform=ax.transAxes,
                    fontsize=6,
                    va="top",
                    color="0.3",
                )
        handles = [Patch(color=STATUS_COLORS[s], label=s) for s in ("kept", "gained")]
        fig.legend(handles=handles, loc="outside upper right", frameon=False, ncols=2)
        if title:
            fig.suptitle(title, fontsize=10)
        notes_footer(fig, notes)
    return fig, notes


def plot_volcano(
    table: pd.DataFrame,
    *,
    models: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    alpha: float = 0.05,
    n_labels: int = 3,
    title: str = "",
) -> tuple[Figure, list[str]]:
    """Donor-level tests, one panel per model: effect against -log10 p.

    The effect is case minus control, in standard deviations of the factor's values;
    factors significant after Benjamini-Hochberg are filled, the ``n_labels`` smallest
    p-values named.

    Parameters
    ----------
    table
        :func:`iae_pipeline.analyses.donor_tests.donor_tests`.
    models
        The models drawn, in this order (default: all in the table).
    labels
        Display names of the models.
    alpha
        The false discovery rate of the filled points.
    n_labels
        Factors named per panel.
    title
        The figure's title.

    Returns
    -------
    tuple of matplotlib.figure.Figure and list of str
        The figure and its notes.
    """
    notes: list[str] = []
    labels = dict(labels or {})
    tested = table[table["pvalue"].notna()]
    models = [m for m in (models or list(dict.fromkeys(table["model"]))) if m in set(tested.model)]
    if not models:
        notes.append("no factor was tested.")
        return message_figure(title or "Donor-level tests", " ".join(notes)), notes
    test = str(tested["test"].iloc[0])
    kind_markers = {"annotated": "o", "sparse": "s", "dense": "D"}
    with style_context():
        fig = new_figure(3.4 * len(models) + 0.3, 3.6, notes)
        axes = fig.subplots(1, len(models), squeeze=False, sharey=True)[0]
        for ax, model in zip(axes, models, strict=True):
            part = tested[tested["model"] == model]
            logp = -np.log10(part["pvalue"].clip(lower=1e-300))
            for kind, marker in kind_markers.items():
                sel = (part["kind"] == kind).to_numpy()
                if not sel.any():
                    continue
                sig = part["significant"].to_numpy(dtype=bool) & sel
                ax.scatter(
                    part["effect"][sel & ~sig], logp[sel & ~sig], s=12, marker=marker,
                    facecolor="none", edgecolor="0.5", lw=0.6,
                )  # fmt: skip
                ax.scatter(
                    part["effect"][sig], logp[sig], s=16, marker=marker, color=OKABE_ITO[1],
                    lw=0,
                )  # fmt: skip
            for i, (_, row) in enumerate(part.nsmallest(n_labels, "pvalue").iterrows()):
                right = row["effect"] >= 0
                ax.annotate(
                    wrap(display_name(row["term"]), 24),
                    (row["effect"], -np.log10(max(row["pvalue"], 1e-300))),
                    fontsize=6,
                    xytext=(6 if right else -6, 8 - 11 * i),
                    textcoords="offset points",
                    ha="left" if right else "right",
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.5"},
                )
            ax.axvline(0, color="0.6", lw=0.6)
            n_sig = int(part["significant"].sum())
            n_units = int(part["n_samples"].max())
            ax.set_title(
                f"{labels.get(model, model)}\n{n_sig} of {len(part)} factors at FDR < {alpha:g}",
                fontsize=8,
            )
            ax.set_xlabel("effect (case − control, SD of loadings)")
        axes[0].set_ylabel("−log10 p")
        unit = "pairs" if test.startswith(("paired", "Wilcoxon")) else "samples"
        handles = [
            Patch(color=OKABE_ITO[1], label=f"FDR < {alpha:g} (Benjamini-Hochberg)"),
            Patch(facecolor="none", edgecolor="0.5", label="not significant"),
        ]
        fig.legend(handles=handles, loc="outside lower center", frameon=False, ncols=2)
        fig.suptitle(
            (title + "\n" if title else "") + f"{test}, {n_units} {unit}; unit = sample",
            fontsize=9,
        )
        notes_footer(fig, notes)
    return fig, notes


def plot_agreement(
    table: pd.DataFrame,
    *,
    top_n: int = 10,
    labels: Mapping[str, str] | None = None,
    title: str = "",
) -> tuple[Figure, list[str]]:
    """The ranks of the terms in any method's top ``top_n``, per method.

    Rows are terms, columns the methods (prerank GSEA, ``score_genes``, then each model);
    cells in a top ``top_n`` are coloured, the others grey, every cell shows its rank.

    Parameters
    ----------
    table
        :func:`iae_pipeline.analyses.baselines.agreement_table`.
    top_n
        The size of each method's top.
    labels
        Display names of the models.
    title
        The figure's title.

    Returns
    -------
    tuple of matplotlib.figure.Figure and list of str
        The figure and its notes.
    """
    notes: list[str] = []
    labels = dict(labels or {})
    rank_cols = {"gsea": "gsea_rank", "score_genes": "score_rank"}
    rank_cols |= {c.removeprefix("rank_"): c for c in table.columns if c.startswith("rank_")}
    shown = table[table["agreement"].astype(str) != ""]
    if shown.empty:
        notes.append("no term is in any top list.")
        return message_figure(title or "Baselines", " ".join(notes)), notes
    names = list(rank_cols)
    ranks = shown[[rank_cols[n] for n in names]].to_numpy(dtype=float)
    heading = {"gsea": "prerank\nGSEA", "score_genes": "score_genes"}
    columns = [heading.get(n, wrap(labels.get(n, n), 12)) for n in names]
    with style_context():
        fig = new_figure(3.2 + 0.75 * len(names), 0.9 + 0.2 * len(shown), notes)
        ax = fig.add_subplot()
        in_top = np.where(np.isnan(ranks), np.nan, np.where(ranks <= top_n, ranks, np.nan))
        ax.imshow(
            np.where(np.isnan(ranks), np.nan, 1.0), cmap="Greys", vmin=0, vmax=8, aspect="auto"
        )
        ax.imshow(in_top, cmap="viridis_r", vmin=1, vmax=top_n, aspect="auto")
        for i in range(ranks.shape[0]):
            for j in range(ranks.shape[1]):
                r = ranks[i, j]
                text = "–" if np.isnan(r) else f"{r:.0f}" if r == int(r) else f"{r:.1f}"
                dark = not np.isnan(r) and r <= top_n and r < top_n * 0.6
                ax.text(j, i, text, ha="center", va="center", fontsize=6,
                        color="white" if dark else "black")  # fmt: skip
        ax.set_xticks(range(len(names)), columns, fontsize=7)
        ax.xaxis.tick_top()
        ax.axvline(1.5, color="white", lw=3)
        rows = [
            f"{wrap(display_name(t), 46)}  [{a}]"
            for t, a in zip(shown["term"], shown["agreement"], strict=True)
        ]
        ax.set_yticks(range(len(shown)), rows, fontsize=6)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_title(
            (title + "\n" if title else "")
            + f"rank of each term (coloured: in the top {top_n}; '–': not fitted)",
            fontsize=8,
        )
        notes_footer(fig, notes)
    return fig, notes
