"""The paper's figures, drawn from contract ``factors.h5ad`` files and score tables.

- :func:`plot_term_scatter`: Figure 1, loadings of two terms coloured by an obs column.
- :func:`plot_accuracy_bars`: Figure 2, per-term accuracies, models side by side.
- :func:`plot_group_loadings`: Figure 3, loadings per cell type and group (boxes + points).

Terms are looked up by :func:`lookup_terms` (exact name, else the display name compared
case- and punctuation-insensitively), so ``INTERFERON SIGNALING`` finds both
``REACTOME_INTERFERON_SIGNALING`` and reactome.org's ``Interferon Signaling``. A term that is
absent or switched off never raises: each plotting function returns ``(figure, notes)``, draws
what it can, and prints the notes under the figure. Use a headless backend (Agg).
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from iae_pipeline.contract import factor_columns, term_key
from iae_pipeline.files import staged
from interpretable_ae.genesets import display_name

log = logging.getLogger(__name__)

# Okabe & Ito's colour-blind safe qualitative palette (black moved last).
OKABE_ITO = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#E69F00",
    "#56B4E9",
    "#CC79A7",
    "#F0E442",
    "#000000",
)
NOTE_COLOR = "#8B0000"
FIG_RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,
}


# --------------------------------------------------------------------------- terms


@dataclass(frozen=True)
class TermLookup:
    """Where a requested term was found among a model's factors."""

    query: str
    term: str | None = None
    active: bool = False
    ambiguous: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return self.term is not None

    @property
    def label(self) -> str:
        return display_name(self.term if self.term is not None else self.query)

    @property
    def note(self) -> str:
        """Empty when all is well, else one sentence for the figure and the log."""
        if self.term is None:
            return f"'{self.query}' is not among the model's factors (absent)."
        notes = []
        if not self.active:
            notes.append(f"'{self.label}' is switched off (zero decoder weights) in this model.")
        if self.ambiguous:
            notes.append(f"'{self.query}' also matches {list(self.ambiguous)}; drew '{self.term}'.")
        return " ".join(notes)


def resolve_term(names: Sequence[str], query: str) -> tuple[str | None, tuple[str, ...]]:
    """``(match, other candidates)`` for ``query`` among ``names``: exact, else by :func:`term_key`."""
    names = [str(n) for n in names]
    if query in names:
        return query, ()
    key = term_key(query)
    hits = [n for n in names if term_key(n) == key]
    return (hits[0], tuple(hits[1:])) if hits else (None, ())


def lookup_terms(adata: ad.AnnData, queries: Sequence[str]) -> list[TermLookup]:
    """Find each of ``queries`` among the factors of a contract AnnData."""
    out = []
    for query in queries:
        term, others = resolve_term(adata.var_names, str(query))
        active = bool(adata.var.loc[term, "active"]) if term is not None else False
        out.append(TermLookup(str(query), term, active, others))
    return out


def select_terms(names: Sequence[str], spec: str | Sequence[str]) -> tuple[list[str], list[str]]:
    """Terms chosen by ``spec``: a regular expression (string, searched case-insensitively in
    the full and the display name) or a list of names (resolved as :func:`resolve_term`).

    Returns ``(found, not found)``; the found terms keep the order of ``names`` for a regular
    expression and the order of ``spec`` for a list.
    """
    names = list(dict.fromkeys(str(n) for n in names))
    if isinstance(spec, str):
        try:
            pattern = re.compile(spec, flags=re.IGNORECASE)
        except re.error as err:
            raise ValueError(
                f"figure terms: '{spec}' is not a valid regular expression ({err}); give a "
                "regular expression or a list of term names"
            ) from None
        return [n for n in names if pattern.search(n) or pattern.search(display_name(n))], []
    found, missing = [], []
    for query in spec:
        term, _ = resolve_term(names, str(query))
        (found if term is not None else missing).append(term if term is not None else str(query))
    return list(dict.fromkeys(found)), missing


# --------------------------------------------------------------------------- colours


def category_colors(
    categories: Sequence[str], uns: Mapping | None = None, key: str | None = None
) -> dict[str, str]:
    """A colour per category: ``uns[f'{key}_colors']`` (scanpy's convention) when it fits,
    else Okabe-Ito (up to 8 categories) or tab20."""
    categories = [str(c) for c in categories]
    stored = None if uns is None or key is None else uns.get(f"{key}_colors")
    if stored is not None and len(stored) == len(categories):
        return dict(zip(categories, (str(c) for c in stored), strict=True))
    if len(categories) <= len(OKABE_ITO):
        palette = list(OKABE_ITO)
    else:
        cmap = colormaps["tab20"]
        palette = [cmap(i % 20) for i in range(len(categories))]
    return {c: palette[i] for i, c in enumerate(categories)}


def _categories(values: pd.Series) -> list[str]:
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.astype(str))
        return [str(c) for c in values.cat.categories if str(c) in present]
    return sorted(values.astype(str).unique())


# --------------------------------------------------------------------------- layout helpers


LOST_SHOWN = 8  # lost genes named under a refinement panel; the table has them all


def _count(value: float) -> str:
    """A count, or a mean count over replicates with one decimal."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _wrap(text: str, width: int = 38) -> str:
    return "\n".join(textwrap.wrap(text, width=width, break_long_words=False)) or text


def _note_lines(notes: Sequence[str], width_in: float) -> list[str]:
    chars = max(40, int(width_in * 16))
    return [line for n in notes for line in textwrap.wrap("Note: " + n, chars)]


def _notes_footer(fig: Figure, notes: Sequence[str]) -> None:
    if notes:
        text = "\n".join(_note_lines(notes, fig.get_figwidth()))
        fig.text(0.01, 0.01, text, ha="left", va="bottom", fontsize=7, color=NOTE_COLOR)


def _new_figure(width: float, height: float, notes: Sequence[str] = ()) -> Figure:
    n_lines = len(_note_lines(notes, width))
    total = height + (0.16 + 0.13 * n_lines if n_lines else 0.0)
    fig = Figure(figsize=(width, total), layout="constrained")
    if n_lines:
        bottom = (0.12 + 0.13 * n_lines) / total  # room for the notes footer
        fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))
    return fig


def message_figure(title: str, message: str) -> Figure:
    """A figure that only states why nothing could be drawn."""
    fig = Figure(figsize=(6, 2.5))
    fig.text(0.5, 0.7, title, ha="center", va="center", fontsize=11, weight="bold")
    fig.text(0.5, 0.4, _wrap(message, 80), ha="center", va="center", fontsize=9, color=NOTE_COLOR)
    return fig


def save_figure(fig: Figure, *paths: str | Path, dpi: int = 300) -> None:
    """Write ``fig`` to each path (format from the suffix), each via a temporary file."""
    for path in map(Path, paths):
        with staged(path, suffix=f".part{path.suffix}") as tmp, _rc():
            fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or None)


def figure_title(adata: ad.AnnData, dataset: str = "", label: str = "") -> str:
    """``dataset · model label`` (the label from ``uns['run']`` when not given)."""
    run = adata.uns.get("run", {})
    label = label or str(run.get("label", "") or run.get("model", ""))
    return " · ".join(t for t in (dataset, label) if t)


def finish_figure(fig: Figure, notes: Sequence[str], name: str, *paths: str | Path) -> None:
    """Log the figure's notes (absent or switched-off terms, ...) as warnings, then save it."""
    for note in notes:
        log.warning("%s: %s", name, note)
    save_figure(fig, *paths)
    log.info("%s: wrote %s", name, ", ".join(map(str, paths)))


def _legend_outside(ax, handles, title: str, ncol: int = 1) -> None:
    ax.legend(
        handles=handles,
        title=title,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        frameon=False,
        ncol=ncol,
        borderaxespad=0.0,
        markerscale=1.5,
    )


# --------------------------------------------------------------------------- Figure 1


def subsample_cells(n_obs: int, max_cells: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of a seeded random ``max_cells`` of ``n_obs`` cells, or None for all."""
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
    """Loadings of two terms against each other, cells coloured by ``obs[color_key]``.

    With one usable term, its loadings are drawn per category (jittered strip); with none,
    a figure stating so. Points are drawn in a seeded random order, so that no category
    hides another. With more than ``max_cells`` cells a seeded random subsample of that
    many is drawn, and the figure says so. ``adata`` may be backed (only the two columns
    are read).
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

    rng = np.random.default_rng(seed)
    columns = factor_columns(adata, [f.term for f in usable])
    values = adata.obs[color_key].astype(str)
    keep = subsample_cells(adata.n_obs, max_cells, seed)
    if keep is not None:
        notes.append(
            f"{len(keep):,} of {adata.n_obs:,} cells drawn (a random subsample, seed {seed})."
        )
        columns, values = columns[keep], values.iloc[keep]
    n_cells = len(values)
    cats = _categories(adata.obs[color_key])
    cats = [c for c in cats if c in set(values)]
    colors = category_colors(_categories(adata.obs[color_key]), adata.uns, color_key)
    order = rng.permutation(n_cells)
    c = values.map(colors).to_numpy()[order]
    size = point_size or float(np.clip(3000 / max(n_cells, 1), 1.0, 12.0))
    loadings = [columns[:, j] for j in range(len(usable))]

    def axis_label(f: TermLookup) -> str:
        off = "  [switched off]" if not f.active else ""
        return _wrap(f.label + off) + "\n(loading)"

    with _rc():
        legend_width = 0.75 + 0.065 * max(len(_wrap(cat, 28).split("\n")[0]) for cat in cats)
        if len(usable) == 2:
            fig = _new_figure(4.4 + legend_width, 4.2, notes)
            ax = fig.add_subplot()
            ax.scatter(
                loadings[0][order],
                loadings[1][order],
                c=c,
                s=size,
                lw=0,
                alpha=0.8,
                rasterized=True,
            )
            ax.set_xlabel(axis_label(usable[0]))
            ax.set_ylabel(axis_label(usable[1]))
        else:
            notes.append(f"only '{usable[0].label}' could be drawn; shown per {color_key}.")
            fig = _new_figure(4.4 + legend_width, 1.2 + 0.35 * len(cats), notes)
            ax = fig.add_subplot()
            pos = {cat: i for i, cat in enumerate(cats)}
            y = values.map(pos).to_numpy(dtype=float) + rng.uniform(-0.3, 0.3, n_cells)
            ax.scatter(loadings[0][order], y[order], c=c, s=size, lw=0, alpha=0.8, rasterized=True)
            ax.set_yticks(range(len(cats)), [_wrap(cat, 24) for cat in cats])
            ax.invert_yaxis()
            ax.set_xlabel(axis_label(usable[0]))
            ax.set_ylabel(color_key.replace("_", " "))
        handles = [
            ax.scatter([], [], color=colors[cat], s=20, label=_wrap(cat, 28)) for cat in cats
        ]
        _legend_outside(ax, handles, color_key.replace("_", " "), ncol=1 if len(cats) <= 16 else 2)
        if title:
            ax.set_title(title)
        _notes_footer(fig, notes)
    return fig, notes


# --------------------------------------------------------------------------- Figure 2

BEST_UNANNOTATED = "best unannotated factor"


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
    """Horizontal grouped bars: one group per term, one bar per model (in ``models`` order);
    each bar is the mean over the model's replicates, each replicate a point on it.

    ``terms`` is a regular expression or a list of names (see :func:`select_terms`); with a
    regular expression at most ``max_terms`` terms are kept, those with the best mean
    ``metric``. Factors switched off in every replicate are hatched (in some: said in the
    label), absent ones marked "absent". With ``include_unannotated`` a last group shows
    each model's best sparse/dense factor of each replicate, where the signal may have gone.
    ``scores`` without a ``replicate`` column are one replicate; ``extra_notes`` are printed
    under the figure with its own notes.
    """
    if metric not in scores.columns:
        raise ValueError(f"score table has no column '{metric}'; choose accuracy_train, ...")
    labels = dict(labels or {})
    notes: list[str] = list(extra_notes)
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
    if not groups or not models:
        notes.append("no term matches; nothing to draw.")
        return message_figure(title or "Figure 2", " ".join(notes)), notes
    per_bar = {key: part for key, part in rows.groupby(["term", "model"], sort=False)}
    n_reps = int(scores.groupby("model")["replicate"].nunique().max())

    colors = category_colors(models)
    n_models = len(models)
    height = 0.8 / n_models
    rng = np.random.default_rng(0)  # vertical jitter of the replicate points only
    with _rc():
        fig = _new_figure(7.0, 1.0 + 0.2 * n_models * len(groups), notes)
        ax = fig.add_subplot()
        for i, model in enumerate(models):
            for g, (term, _) in enumerate(groups):
                y = g - 0.4 + height * (i + 0.5)
                if (term, model) not in per_bar:
                    what = "none" if term == BEST_UNANNOTATED else "absent"
                    ax.text(0.005, y, what, va="center", ha="left", fontsize=6, color="0.4")
                    continue
                part = per_bar[(term, model)]
                values = part[metric].to_numpy(dtype=float)
                mean = float(values.mean())
                n_off = int((~part["active"].astype(bool)).sum())
                off = n_off == len(part)
                ax.barh(
                    y,
                    mean,
                    height=height * 0.92,
                    color="white" if off else colors[model],
                    edgecolor=colors[model],
                    hatch="////" if off else None,
                    lw=0.8,
                    alpha=1.0 if off or len(values) == 1 else 0.55,
                )
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
        chance = float(scores["accuracy_chance"].max()) if "accuracy_chance" in scores else None
        if chance is not None and metric.startswith("accuracy"):
            ax.axvline(chance, color="0.3", ls="--", lw=0.8, zorder=0)
        ax.set_yticks(range(len(groups)), [_wrap(name, 40) for _, name in groups])
        ax.invert_yaxis()
        ax.set_xlim(0, 1.15)
        ax.set_xticks(np.linspace(0, 1, 6))
        ax.set_xlabel(_metric_label(metric))
        handles = [Patch(color=colors[m], label=_wrap(labels.get(m, m), 24)) for m in models]
        handles.append(
            Patch(facecolor="white", edgecolor="0.3", hatch="////", label="switched off")
        )
        if n_reps > 1:
            handles.append(
                ax.scatter([], [], s=6, color="black", label=f"one replicate (of {n_reps})")
            )
        if chance is not None and metric.startswith("accuracy"):
            handles.append(ax.plot([], [], color="0.3", ls="--", lw=0.8, label="chance")[0])
        _legend_outside(ax, handles, "model")
        if title:
            ax.set_title(title)
        _notes_footer(fig, notes)
    return fig, notes


def _metric_label(metric: str) -> str:
    return {
        "accuracy_train": "accuracy of a logistic regression on the factor (training)",
        "accuracy_cv": "accuracy of a logistic regression on the factor (cross-validated)",
        "auroc": "AUROC of a logistic regression on the factor (cross-validated)",
    }.get(metric, metric.replace("_", " "))


# --------------------------------------------------------------------------- Figure 3


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
    """Per term (rows): boxes of the loadings per cell type (x) and group (colour), with up to
    ``max_points`` seeded random cells per box drawn as points."""
    for key in (group_key, cell_type_key):
        if key not in adata.obs:
            raise ValueError(
                f"obs['{key}'] is missing from the factors file; set fig3.group_key to a column "
                f"of obs ({list(adata.obs.columns)})"
            )
    notes: list[str] = []
    found = lookup_terms(adata, terms)
    notes += [f.note for f in found if f.note]
    present_types = {str(c).lower(): str(c) for c in adata.obs[cell_type_key].astype(str).unique()}
    types = [present_types[c.lower()] for c in cell_types if c.lower() in present_types]
    if len(types) < len(cell_types):
        lost = [c for c in cell_types if c.lower() not in present_types]
        notes.append(f"cell type(s) {lost} not found in obs['{cell_type_key}'].")
    all_groups = _categories(adata.obs[group_key])
    if groups:
        order = [g for g in groups if g in all_groups]
        if len(order) < len(groups):
            notes.append(
                f"group(s) {[g for g in groups if g not in all_groups]} not in obs['{group_key}']."
            )
    else:
        order = all_groups
    if not any(f.usable for f in found) or not types or not order:
        notes.append("nothing to draw.")
        return message_figure(title or "Figure 3", " ".join(notes)), notes

    colors = category_colors(all_groups, adata.uns, group_key)
    colors = {g: colors[g] for g in order}
    rng = np.random.default_rng(seed)
    ct = adata.obs[cell_type_key].astype(str).to_numpy()
    gr = adata.obs[group_key].astype(str).to_numpy()
    width = 0.8 / len(order)
    with _rc():
        fig_width = max(4.5, 2.0 + 1.1 * len(types) * max(1, len(order) / 3))
        fig = _new_figure(fig_width, 2.6 * len(found), notes)
        axes = fig.subplots(len(found), 1, squeeze=False, sharex=True)[:, 0]
        for ax, f in zip(axes, found, strict=True):
            if not f.usable:
                ax.axis("off")
                ax.text(
                    0.5,
                    0.5,
                    f.note,
                    ha="center",
                    va="center",
                    color=NOTE_COLOR,
                    transform=ax.transAxes,
                    fontsize=8,
                )
                ax.set_yticks([])
                ax.set_title(_wrap(f.label, 70), fontsize=9)
                continue
            x = factor_columns(adata, [f.term])[:, 0]
            for i, cell_type in enumerate(types):
                for j, group in enumerate(order):
                    vals = x[(ct == cell_type) & (gr == group)]
                    pos = i - 0.4 + width * (j + 0.5)
                    if vals.size == 0:
                        ax.text(
                            pos,
                            0.02,
                            "none",
                            rotation=90,
                            fontsize=6,
                            color="0.4",
                            ha="center",
                            va="bottom",
                            transform=ax.get_xaxis_transform(),
                        )
                        continue
                    ax.boxplot(
                        vals,
                        positions=[pos],
                        widths=width * 0.8,
                        showfliers=False,
                        patch_artist=True,
                        medianprops={"color": "black", "lw": 1},
                        boxprops={"facecolor": colors[group], "alpha": 0.35, "lw": 0.8},
                        whiskerprops={"lw": 0.8},
                        capprops={"lw": 0.8},
                    )
                    shown = vals if vals.size <= max_points else rng.choice(vals, max_points, False)
                    jitter = rng.uniform(-width * 0.3, width * 0.3, shown.size)
                    ax.scatter(
                        pos + jitter,
                        shown,
                        s=3,
                        lw=0,
                        color=colors[group],
                        alpha=0.7,
                        rasterized=True,
                        zorder=3,
                    )
            off = "  [switched off]" if not f.active else ""
            ax.set_title(_wrap(f.label + off, 70), fontsize=9)
            ax.set_ylabel("loading")
        axes[-1].set_xticks(range(len(types)), [_wrap(t, 16) for t in types])
        axes[-1].set_xlim(-0.6, len(types) - 0.4)
        axes[-1].set_xlabel(cell_type_key.replace("_", " "))
        handles = [Patch(facecolor=colors[g], alpha=0.7, label=_wrap(g, 20)) for g in order]
        _legend_outside(axes[0], handles, group_key.replace("_", " "))
        if title:
            fig.suptitle(title, fontsize=10)
        _notes_footer(fig, notes)
    return fig, notes


def _rc():
    from matplotlib import rc_context

    return rc_context(FIG_RC)


# --------------------------------------------------------------------------- analyses
# Figures of the analyses beyond the paper (iae_pipeline.analyses.refinement, .donor_tests,
# .baselines); each returns ``(figure, notes)`` like the paper's figures.

STATUS_COLORS = {"kept": OKABE_ITO[0], "gained": OKABE_ITO[1], "lost": "0.55"}


def plot_refinement(
    genes: pd.DataFrame,
    summary: pd.DataFrame,
    terms: Sequence[str],
    *,
    n_genes: int = 12,
    title: str = "",
    notes: Sequence[str] = (),
) -> tuple[Figure, list[str]]:
    """One panel per term: its most used annotated genes (a third of ``n_genes``, blue),
    then its most used genes outside the annotation (orange, with the fraction of
    replicates where gained), by mean weight; the annotated genes it lost are listed
    under the panel. ``genes`` and ``summary`` are
    :func:`iae_pipeline.analyses.refinement.refinement_table` and ``term_summary``."""
    notes = list(notes)
    terms = [t for t in terms if t in set(summary["term"])]
    if not terms:
        notes.append("no active annotated factor to draw.")
        return message_figure(title or "Gene-set refinement", " ".join(notes)), notes
    info = summary.set_index("term")
    n_cols = min(3, len(terms))
    n_rows = int(np.ceil(len(terms) / n_cols))
    with _rc():
        fig = _new_figure(3.3 * n_cols + 0.4, (0.9 + 0.17 * n_genes) * n_rows + 0.3, notes)
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
                _wrap(display_name(term), 34)
                + f"\n{row['n_annotated']} annotated · {_count(row['n_gained'])} gained · "
                f"{_count(row['n_lost'])} lost",
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
                    _wrap("lost: " + shown, 48),
                    transform=ax.transAxes,
                    fontsize=6,
                    va="top",
                    color="0.3",
                )
        handles = [Patch(color=STATUS_COLORS[s], label=s) for s in ("kept", "gained")]
        fig.legend(handles=handles, loc="outside upper right", frameon=False, ncols=2)
        if title:
            fig.suptitle(title, fontsize=10)
        _notes_footer(fig, notes)
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
    """Donor-level tests (:func:`iae_pipeline.analyses.donor_tests.donor_tests`), one panel per
    model: effect (case minus control, in SD of the factor's loadings) against
    -log10 p; factors significant after Benjamini-Hochberg are filled, the ``n_labels``
    smallest p-values named."""
    notes: list[str] = []
    labels = dict(labels or {})
    tested = table[table["pvalue"].notna()]
    models = [m for m in (models or list(dict.fromkeys(table["model"]))) if m in set(tested.model)]
    if not models:
        notes.append("no factor was tested.")
        return message_figure(title or "Donor-level tests", " ".join(notes)), notes
    test = str(tested["test"].iloc[0])
    kind_markers = {"annotated": "o", "sparse": "s", "dense": "D"}
    with _rc():
        fig = _new_figure(3.4 * len(models) + 0.3, 3.6, notes)
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
                    _wrap(display_name(row["term"]), 24),
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
        _notes_footer(fig, notes)
    return fig, notes


def plot_agreement(
    table: pd.DataFrame,
    *,
    top_n: int = 10,
    labels: Mapping[str, str] | None = None,
    title: str = "",
) -> tuple[Figure, list[str]]:
    """Ranks of the terms in any method's top ``top_n`` (rows), per method (columns:
    prerank GSEA, score_genes, then each model), from
    :func:`iae_pipeline.analyses.baselines.agreement_table`; cells in a top ``top_n`` are
    coloured, the others grey, every cell shows its rank."""
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
    columns = [heading.get(n, _wrap(labels.get(n, n), 12)) for n in names]
    with _rc():
        fig = _new_figure(3.2 + 0.75 * len(names), 0.9 + 0.2 * len(shown), notes)
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
            f"{_wrap(display_name(t), 46)}  [{a}]"
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
        _notes_footer(fig, notes)
    return fig, notes
