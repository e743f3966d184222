"""The figures' shared style: the colour-blind safe palette, fonts, layout with notes
under the figure, and saving through a temporary file.

Every figure function returns ``(figure, notes)``: it draws what it can and states the
rest (an absent or switched-off term, a subsample) in red notes under the figure, which
:func:`finish_figure` also logs. Figures are drawn on matplotlib's object API (no pyplot
state), so any backend works, headless included.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import anndata as ad
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from iae_pipeline.files import staged

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


def style_context():
    """The figures' matplotlib settings (:data:`FIG_RC`), as a context manager.

    Returns
    -------
    contextlib.AbstractContextManager
        ``matplotlib.rc_context(FIG_RC)``.
    """
    from matplotlib import rc_context

    return rc_context(FIG_RC)


def category_colors(
    categories: Sequence[str], uns: Mapping | None = None, key: str | None = None
) -> dict[str, str]:
    """A colour per category.

    Parameters
    ----------
    categories
        The categories, in drawing order.
    uns
        An AnnData's ``uns``, for scanpy's ``uns['<key>_colors']``.
    key
        The obs column the categories come from.

    Returns
    -------
    dict of str to str
        ``uns['<key>_colors']`` when it has a colour per category, else Okabe-Ito (up to 8
        categories) or tab20.
    """
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


def present_categories(values: pd.Series) -> list[str]:
    """The categories that occur, in the categorical's order (else sorted).

    Parameters
    ----------
    values
        An obs column.

    Returns
    -------
    list of str
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.astype(str))
        return [str(c) for c in values.cat.categories if str(c) in present]
    return sorted(values.astype(str).unique())


def count_label(value: float) -> str:
    """A count for a label: an integer, or a mean over replicates with one decimal.

    Parameters
    ----------
    value
        The count.

    Returns
    -------
    str

    Examples
    --------
    >>> count_label(3.0), count_label(2.5)
    ('3', '2.5')
    """
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def wrap(text: str, width: int = 38) -> str:
    """Text wrapped at word boundaries into lines of at most ``width`` characters.

    Parameters
    ----------
    text
        The text.
    width
        The line length.

    Returns
    -------
    str
        The lines joined by newlines.
    """
    return "\n".join(textwrap.wrap(text, width=width, break_long_words=False)) or text


def note_lines(notes: Sequence[str], width_in: float) -> list[str]:
    """A figure's notes as lines that fit its width.

    Parameters
    ----------
    notes
        The notes.
    width_in
        The figure's width in inches.

    Returns
    -------
    list of str
    """
    chars = max(40, int(width_in * 16))
    return [line for n in notes for line in textwrap.wrap("Note: " + n, chars)]


def notes_footer(fig: Figure, notes: Sequence[str]) -> None:
    """Print a figure's notes at its bottom left, in dark red.

    Parameters
    ----------
    fig
        The figure.
    notes
        The notes (none: nothing is printed).
    """
    if notes:
        text = "\n".join(note_lines(notes, fig.get_figwidth()))
        fig.text(0.01, 0.01, text, ha="left", va="bottom", fontsize=7, color=NOTE_COLOR)


def new_figure(width: float, height: float, notes: Sequence[str] = ()) -> Figure:
    """A figure with room at the bottom for its notes.

    Parameters
    ----------
    width, height
        The drawing's size in inches, notes excluded.
    notes
        The notes to make room for.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n_lines = len(note_lines(notes, width))
    total = height + (0.16 + 0.13 * n_lines if n_lines else 0.0)
    fig = Figure(figsize=(width, total), layout="constrained")
    if n_lines:
        bottom = (0.12 + 0.13 * n_lines) / total  # room for the notes footer
        fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))
    return fig


def message_figure(title: str, message: str) -> Figure:
    """A figure that only states why nothing could be drawn.

    Parameters
    ----------
    title
        Its title.
    message
        The reason, wrapped.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=(6, 2.5))
    fig.text(0.5, 0.7, title, ha="center", va="center", fontsize=11, weight="bold")
    fig.text(0.5, 0.4, wrap(message, 80), ha="center", va="center", fontsize=9, color=NOTE_COLOR)
    return fig


def save_figure(fig: Figure, *paths: str | Path, dpi: int = 300) -> None:
    """Write a figure to each path, each via a temporary file.

    Parameters
    ----------
    fig
        The figure.
    *paths
        The files; the format comes from the suffix (``.png``, ``.pdf``).
    dpi
        Resolution of raster formats.
    """
    for path in map(Path, paths):
        with staged(path, suffix=f".part{path.suffix}") as tmp, style_context():
            fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or None)


def figure_title(adata: ad.AnnData, dataset: str = "", label: str = "") -> str:
    """A figure's title: ``dataset · model label``.

    Parameters
    ----------
    adata
        A factor file.
    dataset
        The dataset's name.
    label
        The model's label (default: from ``uns['run']``).

    Returns
    -------
    str
    """
    run = adata.uns.get("run", {})
    label = label or str(run.get("label", "") or run.get("model", ""))
    return " · ".join(t for t in (dataset, label) if t)


def finish_figure(fig: Figure, notes: Sequence[str], name: str, *paths: str | Path) -> None:
    """Log a figure's notes (absent or switched-off terms, ...) as warnings, then save it.

    Parameters
    ----------
    fig
        The figure.
    notes
        Its notes.
    name
        The figure's name, in the log.
    *paths
        The files (:func:`save_figure`).
    """
    for note in notes:
        log.warning("%s: %s", name, note)
    save_figure(fig, *paths)
    log.info("%s: wrote %s", name, ", ".join(map(str, paths)))


def legend_outside(ax, handles, title: str, ncol: int = 1) -> None:
    """A legend to the right of the axes, outside them.

    Parameters
    ----------
    ax
        The axes.
    handles
        The legend's handles.
    title
        The legend's title.
    ncol
        Its columns.
    """
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
