"""Figures of the factors' loadings per cell: Figure 1 (two terms against each other,
cells coloured by condition or cell type) and Figure 3 (one term's loadings per cell type
and group, boxes with the cells as points).

Each figure is drawn in two steps: the data it shows (read from a factor file, backed or
not: only the drawn columns are read), then the drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from iae_pipeline.contract import factor_columns
from iae_pipeline.figures.style import (
    NOTE_COLOR,
    category_colors,
    legend_outside,
    message_figure,
    new_figure,
    notes_footer,
    present_categories,
    style_context,
    wrap,
)
from iae_pipeline.figures.terms import TermLookup, lookup_terms


def subsample_cells(n_obs: int, max_cells: int | None, seed: int) -> np.ndarray | None:
    """A seeded random subsample of cells to draw.

    Parameters
    ----------
    n_obs
        The cells.
    max_cells
        How many to draw at most (``None``: all).
    seed
        Seeds the choice.

    Returns
    -------
    numpy.ndarray or None
        Sorted indices of ``max_cells`` cells, or ``None`` when every cell is drawn.
    """
    if max_cells is None or n_obs <= max_cells:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_obs, size=max_cells, replace=False))


def plot_term_scatter(
    adata: ad.AnnData,
    terms: Sequence[str],
    color_key: str,
    *,
    title: str = "",
    seed: int = 0,
    point_size: float | None = None,
    max_cells: int | None = 50_000,
) -> tuple[Figure, list[str]]:
    """Figure 1: the loadings of two terms against each other, cells coloured by
    ``obs[color_key]``.

    With one usable term, its loadings are drawn per category (jittered strip); with none,
    a figure stating so. Points are drawn in a seeded random order, so that no category
    hides another.

    Parameters
    ----------
    adata
        A factor file (:mod:`iae_pipeline.contract`), in memory or backed: only the two
        columns are read.
    terms
        Exactly two term names (found as :func:`iae_pipeline.figures.terms.lookup_terms`).
    color_key
        The obs column that colours the cells (``condition``, ``cell_type``).
    title
        The figure's title.
    seed
        Seeds the drawing order, the jitter and the subsample.
    point_size
        Marker size (default: from the number of cells).
    max_cells
        With more cells, a seeded random subsample of that many is drawn, and the figure
        says so (None: every cell).

    Returns
    -------
    tuple of matplotlib.figure.Figure and list of str
        The figure and its notes (absent or switched-off terms, the subsample).
    """
    if len(terms) != 2:
        raise ValueError(f"figure 1 needs exactly two terms, got {list(terms)}; fix fig1.terms")
    if color_key not in adata.obs:
        raise ValueError(f"obs['{color_key}'] is missing from the factors file; cannot colour")
    found = lookup_terms(adata, terms)
    notes = [f.note for f in found if f.note]
    usable = [f for f in found if f.usable]
    if not usable:
        fig = message_figure(title or "Figure 1", " ".join(notes) + " Nothing to draw.")
        return fig, notes
    columns = factor_columns(adata, [f.term for f in usable])
    values = adata.obs[color_key].astype(str)
    keep = subsample_cells(adata.n_obs, max_cells, seed)
    if keep is not None:
        notes.append(
            f"{len(keep):,} of {adata.n_obs:,} cells drawn (a random subsample, seed {seed})."
        )
        columns, values = columns[keep], values.iloc[keep]
    cats = [c for c in present_categories(adata.obs[color_key]) if c in set(values)]
    colors = category_colors(present_categories(adata.obs[color_key]), adata.uns, color_key)
    with style_context():
        legend_width = 0.75 + 0.065 * max(len(wrap(cat, 28).split("\n")[0]) for cat in cats)
        if len(usable) == 1:
            notes.append(f"only '{usable[0].label}' could be drawn; shown per {color_key}.")
            height = 1.2 + 0.35 * len(cats)
        else:
            height = 4.2
        fig = new_figure(4.4 + legend_width, height, notes)
        ax = fig.add_subplot()
        _scatter_cells(ax, usable, columns, values, cats, colors, color_key, seed, point_size)
        handles = [ax.scatter([], [], color=colors[c], s=20, label=wrap(c, 28)) for c in cats]
        legend_outside(ax, handles, color_key.replace("_", " "), ncol=1 if len(cats) <= 16 else 2)
        if title:
            ax.set_title(title)
        notes_footer(fig, notes)
    return fig, notes


def _scatter_cells(
    ax, usable: Sequence[TermLookup], columns: np.ndarray, values, cats: Sequence[str],
    colors: dict[str, str], color_key: str, seed: int, point_size: float | None,
) -> None:  # fmt: skip
    """Two terms: one against the other; one term: its loadings per category."""
    rng = np.random.default_rng(seed)
    n_cells = len(values)
    order = rng.permutation(n_cells)
    c = values.map(colors).to_numpy()[order]
    size = point_size or float(np.clip(3000 / max(n_cells, 1), 1.0, 12.0))

    def axis_label(f: TermLookup) -> str:
        off = "  [switched off]" if not f.active else ""
        return wrap(f.label + off) + "\n(loading)"

    style = {"c": c, "s": size, "lw": 0, "alpha": 0.8, "rasterized": True}
    if len(usable) == 2:
        ax.scatter(columns[order, 0], columns[order, 1], **style)
        ax.set_xlabel(axis_label(usable[0]))
        ax.set_ylabel(axis_label(usable[1]))
        return
    pos = {cat: i for i, cat in enumerate(cats)}
    y = values.map(pos).to_numpy(dtype=float) + rng.uniform(-0.3, 0.3, n_cells)
    ax.scatter(columns[order, 0], y[order], **style)
    ax.set_yticks(range(len(cats)), [wrap(cat, 24) for cat in cats])
    ax.invert_yaxis()
    ax.set_xlabel(axis_label(usable[0]))
    ax.set_ylabel(color_key.replace("_", " "))


@dataclass
class GroupLoadings:
    """What Figure 3 draws: the terms, cell types and groups found, and the notes."""

    found: list[TermLookup]
    types: list[str]
    order: list[str]
    colors: dict[str, str]
    notes: list[str]

    @property
    def drawable(self) -> bool:
        return any(f.usable for f in self.found) and bool(self.types) and bool(self.order)


def group_loadings(
    adata: ad.AnnData,
    terms: Sequence[str],
    cell_types: Sequence[str],
    group_key: str,
    groups: Sequence[str] | None = None,
    cell_type_key: str = "cell_type",
) -> GroupLoadings:
    """The data of Figure 3 (:func:`plot_group_loadings`), without drawing.

    Parameters
    ----------
    adata, terms, cell_types, group_key, groups, cell_type_key
        As for :func:`plot_group_loadings`.

    Returns
    -------
    GroupLoadings
        The terms, cell types (matched ignoring case) and groups found, their colours, and a
        note for each one missing.
    """
    for key in (group_key, cell_type_key):
        if key not in adata.obs:
            raise ValueError(
                f"obs['{key}'] is missing from the factors file; set fig3.group_key to a column "
                f"of obs ({list(adata.obs.columns)})"
            )
    found = lookup_terms(adata, terms)
    notes = [f.note for f in found if f.note]
    present_types = {str(c).lower(): str(c) for c in adata.obs[cell_type_key].astype(str).unique()}
    types = [present_types[c.lower()] for c in cell_types if c.lower() in present_types]
    if len(types) < len(cell_types):
        lost = [c for c in cell_types if c.lower() not in present_types]
        notes.append(f"cell type(s) {lost} not found in obs['{cell_type_key}'].")
    all_groups = present_categories(adata.obs[group_key])
    order = all_groups
    if groups:
        order = [g for g in groups if g in all_groups]
        if len(order) < len(groups):
            notes.append(
                f"group(s) {[g for g in groups if g not in all_groups]} not in obs['{group_key}']."
            )
    colors = category_colors(all_groups, adata.uns, group_key)
    return GroupLoadings(found, types, order, {g: colors[g] for g in order}, notes)


def plot_group_loadings(
    adata: ad.AnnData,
    terms: Sequence[str],
    cell_types: Sequence[str],
    group_key: str,
    groups: Sequence[str] | None = None,
    *,
    cell_type_key: str = "cell_type",
    max_points: int = 250,
    seed: int = 0,
    title: str = "",
) -> tuple[Figure, list[str]]:
    """Figure 3: per term (rows), boxes of the loadings per cell type (x) and group
    (colour), with up to ``max_points`` seeded random cells per box drawn as points.

    Parameters
    ----------
    adata
        A factor file, in memory or backed.
    terms
        The terms drawn, one row each.
    cell_types
        The cell types on the x axis (matched ignoring case).
    group_key
        The obs column of the groups (e.g. ``group``: disease severity).
    groups
        The groups, in this order (default: all).
    cell_type_key
        The obs column of the cell types.
    max_points
        Cells drawn as points per box, at most.
    seed
        Seeds the points' choice and jitter.
    title
        The figure's title.

    Returns
    -------
    tuple of matplotlib.figure.Figure and list of str
        The figure and its notes.
    """
    data = group_loadings(adata, terms, cell_types, group_key, groups, cell_type_key)
    if not data.drawable:
        data.notes.append("nothing to draw.")
        return message_figure(title or "Figure 3", " ".join(data.notes)), data.notes
    rng = np.random.default_rng(seed)
    cells = (adata.obs[cell_type_key].astype(str).to_numpy(), adata.obs[group_key].astype(str))
    with style_context():
        fig_width = max(4.5, 2.0 + 1.1 * len(data.types) * max(1, len(data.order) / 3))
        fig = new_figure(fig_width, 2.6 * len(data.found), data.notes)
        axes = fig.subplots(len(data.found), 1, squeeze=False, sharex=True)[:, 0]
        for ax, f in zip(axes, data.found, strict=True):
            if f.usable:
                x = factor_columns(adata, [f.term])[:, 0]
                _draw_boxes(ax, x, cells[0], cells[1].to_numpy(), data, max_points, rng)
                off = "  [switched off]" if not f.active else ""
                ax.set_title(wrap(f.label + off, 70), fontsize=9)
                ax.set_ylabel("loading")
            else:
                ax.axis("off")
                ax.text(0.5, 0.5, f.note, ha="center", va="center", color=NOTE_COLOR,
                        transform=ax.transAxes, fontsize=8)  # fmt: skip
                ax.set_yticks([])
                ax.set_title(wrap(f.label, 70), fontsize=9)
        axes[-1].set_xticks(range(len(data.types)), [wrap(t, 16) for t in data.types])
        axes[-1].set_xlim(-0.6, len(data.types) - 0.4)
        axes[-1].set_xlabel(cell_type_key.replace("_", " "))
        handles = [
            Patch(facecolor=data.colors[g], alpha=0.7, label=wrap(g, 20)) for g in data.order
        ]
        legend_outside(axes[0], handles, group_key.replace("_", " "))
        if title:
            fig.suptitle(title, fontsize=10)
        notes_footer(fig, data.notes)
    return fig, data.notes


def _draw_boxes(
    ax, x: np.ndarray, ct: np.ndarray, gr: np.ndarray, data: GroupLoadings, max_points: int,
    rng: np.random.Generator,
) -> None:  # fmt: skip
    """One box per cell type and group, with some of its cells as points."""
    width = 0.8 / len(data.order)
    for i, cell_type in enumerate(data.types):
        for j, group in enumerate(data.order):
            vals = x[(ct == cell_type) & (gr == group)]
            pos = i - 0.4 + width * (j + 0.5)
            if vals.size == 0:
                ax.text(pos, 0.02, "none", rotation=90, fontsize=6, color="0.4", ha="center",
                        va="bottom", transform=ax.get_xaxis_transform())  # fmt: skip
                continue
            ax.boxplot(
                vals, positions=[pos], widths=width * 0.8, showfliers=False, patch_artist=True,
                medianprops={"color": "black", "lw": 1},
                boxprops={"facecolor": data.colors[group], "alpha": 0.35, "lw": 0.8},
                whiskerprops={"lw": 0.8}, capprops={"lw": 0.8},
            )  # fmt: skip
            shown = vals if vals.size <= max_points else rng.choice(vals, max_points, False)
            jitter = rng.uniform(-width * 0.3, width * 0.3, shown.size)
            ax.scatter(pos + jitter, shown, s=3, lw=0, color=data.colors[group], alpha=0.7,
                       rasterized=True, zorder=3)  # fmt: skip
