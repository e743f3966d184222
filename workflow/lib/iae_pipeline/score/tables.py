"""Result tables: Table 1 (runtime from Snakemake benchmark files) and the top terms, both
over a model's replicates.

Snakemake 9 writes a ``benchmark:`` file as a TSV with the header
``s  h:m:s  max_rss  max_vms  max_uss  max_pss  io_in  io_out  mean_load  cpu_time``
(seconds, memory in MB), one row per repeat. Tables are written as TSV, Markdown and a
small standalone HTML page (which Snakemake's report shows inline).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from iae_pipeline.contract import validate_factor_anndata
from iae_pipeline.files import staged
from interpretable_ae.genesets import display_name

BENCHMARK_COLUMNS = ("s", "max_rss")
RUNTIME_COLUMNS = (
    "dataset",
    "model",
    "label",
    "replicates",
    "seconds_mean",
    "seconds_sd",
    "max_rss_mb_mean",
    "max_rss_mb_sd",
    "converged",
    "seconds_ratio",
    "rss_ratio",
)
TOP_TERM_COLUMNS = (
    "rank",
    "term",
    "display_name",
    "kind",
    "replicates",
    "weight_norm_mean",
    "weight_norm_sd",
    "top_fraction",
    "rank_median",
    "active_fraction",
)


def read_benchmark(path: str | Path) -> pd.DataFrame:
    """Read one Snakemake benchmark file.

    Parameters
    ----------
    path
        A benchmark TSV (one row per repeat).

    Returns
    -------
    pandas.DataFrame
        Its rows; ``NA`` and ``-`` cells become NaN.

    Raises
    ------
    ValueError
        The file cannot be read or lacks the wall-time column.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: benchmark file not found; is the rule's benchmark: path right?")
    table = pd.read_csv(path, sep="\t", na_values=["NA", "-", ""])
    missing = [c for c in BENCHMARK_COLUMNS if c not in table.columns]
    if missing or table.empty:
        what = f"lacks column(s) {missing}" if missing else "has no rows"
        raise ValueError(
            f"{path}: not a Snakemake benchmark file ({what}); expected the tab-separated "
            "header 's h:m:s max_rss ...' written by a rule's benchmark: directive"
        )
    for col in BENCHMARK_COLUMNS:
        table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def _converged(flags: Sequence[Any]) -> str | float:
    """``yes`` / ``no`` / ``k of n`` over replicates; NaN (an empty cell, "–" in Markdown) for
    a model without a convergence criterion (no ``converged`` key: the autoencoder)."""
    known = [bool(f) for f in flags if f is not None]
    if not known:
        return np.nan
    if all(known):
        return "yes"
    if not any(known):
        return "no"
    return f"{sum(known)} of {len(known)}"


def runtime_table(
    benchmarks: Sequence[str | Path],
    entries: Sequence[Mapping[str, Any]],
    reference: str = "ae",
    runs: Sequence[Mapping[str, Any] | None] | None = None,
) -> pd.DataFrame:
    """Table 1: wall time and peak memory per dataset and model, over replicates.

    A replicate's seconds are the median over its benchmark repeats, its memory the
    maximum; the table gives their mean and sample sd (NaN for one replicate), whether the
    fits converged, and the ratios of the means to the ``reference`` model of the same
    dataset (NaN when it was not run, or when its value is zero: Snakemake rounds to
    0.01 s).

    Parameters
    ----------
    benchmarks
        The fits' benchmark files, one per fit.
    entries
        ``{dataset, model[, label, replicate]}`` per fit, aligned with ``benchmarks``.
    reference
        The model the ratios divide by.
    runs
        The fits' ``uns['run']`` (aligned too, optional); their ``converged`` fills the
        column of that name.

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, model), columns :data:`RUNTIME_COLUMNS`: the label, the
        replicates, ``seconds_mean`` and ``_sd``, ``max_rss_mb_mean`` and ``_sd``,
        ``converged`` and the ratios ``seconds_ratio`` and ``rss_ratio``.

    Raises
    ------
    ValueError
        Lists of different lengths, a missing benchmark file, or a fit listed twice.
    """
    if len(benchmarks) != len(entries) or (runs is not None and len(runs) != len(entries)):
        raise ValueError(
            f"{len(benchmarks)} benchmark file(s), {len(entries)} entries"
            + (f" and {len(runs)} run(s)" if runs is not None else "")
            + "; params.entries must list one {dataset, model, replicate} per benchmark file, "
            "in the same order"
        )
    rows = []
    for i, (path, entry) in enumerate(zip(benchmarks, entries, strict=True)):
        if "dataset" not in entry or "model" not in entry:
            raise ValueError(f"entry {dict(entry)} for {path} needs the keys 'dataset' and 'model'")
        bench = read_benchmark(path)
        run = runs[i] if runs is not None else None
        rows.append(
            {
                "dataset": str(entry["dataset"]),
                "model": str(entry["model"]),
                "label": str(entry.get("label", entry["model"])),
                "replicate": int(entry.get("replicate", 0)),
                "seconds": float(bench["s"].median()),
                # a job shorter than Snakemake's first memory sample reads 0 MB: not measured
                "max_rss_mb": float(bench["max_rss"].where(bench["max_rss"] > 0).max()),
                "converged": None if not run or "converged" not in run else bool(run["converged"]),
            }
        )
    fits = pd.DataFrame(rows)
    if fits.duplicated(["dataset", "model", "replicate"]).any():
        dup = fits.loc[fits.duplicated(["dataset", "model", "replicate"])].iloc[0]
        raise ValueError(
            f"params.entries lists ({dup['dataset']}, {dup['model']}, replicate "
            f"{dup['replicate']}) twice; each fit must appear once"
        )
    groups = fits.groupby(["dataset", "model"], sort=False)
    table = groups.agg(
        label=("label", "first"),
        replicates=("replicate", "size"),
        seconds_mean=("seconds", "mean"),
        seconds_sd=("seconds", "std"),
        max_rss_mb_mean=("max_rss_mb", "mean"),
        max_rss_mb_sd=("max_rss_mb", "std"),
    ).reset_index()
    table["converged"] = [_converged(list(g["converged"])) for _, g in groups]
    ref = table[table["model"] == reference].set_index("dataset")
    for col, ratio in (("seconds_mean", "seconds_ratio"), ("max_rss_mb_mean", "rss_ratio")):
        denominator = table["dataset"].map(ref[col])
        table[ratio] = table[col] / denominator.where(denominator > 0)
    return table[list(RUNTIME_COLUMNS)]


def top_terms(
    adata: ad.AnnData, n: int = 10, kinds: Sequence[str] = ("annotated",)
) -> pd.DataFrame:
    """The factors with the largest decoder L2 norm in one fit.

    Parameters
    ----------
    adata
        A factor file.
    n
        How many.
    kinds
        The factor kinds considered.

    Returns
    -------
    pandas.DataFrame
        Up to ``n`` rows, largest ``weight_norm`` first.

    Raises
    ------
    ValueError
        ``n`` below 1.
    """
    validate_factor_anndata(adata)
    return _top_by_norm(adata.var, n, kinds)


def _top_by_norm(var: pd.DataFrame, n: int, kinds: Sequence[str]) -> pd.DataFrame:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}; set scoring.top_n")
    var = var[var["kind"].astype(str).isin(kinds)]
    best = var.sort_values("weight_norm", ascending=False, kind="stable").head(n)
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(best) + 1),
            "term": best.index.astype(str),
            "display_name": [display_name(t) for t in best.index.astype(str)],
            "kind": best["kind"].astype(str).to_numpy(),
            "weight_norm": best["weight_norm"].to_numpy(dtype=np.float64),
            "active": best["active"].to_numpy(dtype=bool),
        }
    )


def top_terms_over_replicates(
    variables: Sequence[pd.DataFrame], n: int = 10, kinds: Sequence[str] = ("annotated",)
) -> pd.DataFrame:
    """The terms with the largest mean decoder L2 norm over a model's replicates.

    Parameters
    ----------
    variables
        The replicates' ``var`` tables (factors as rows, with ``kind``, ``active`` and
        ``weight_norm``).
    n
        How many terms.
    kinds
        The factor kinds considered.

    Returns
    -------
    pandas.DataFrame
        Per term: mean and sd of the norm, the fraction of replicates in whose own top
        ``n`` it is, its median rank by norm and the fraction of replicates in which it is
        active.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}; set scoring.top_n")
    if not variables:
        raise ValueError("no replicate given; check the rule inputs")
    frames = []
    for replicate, var in enumerate(variables):
        var = var[var["kind"].astype(str).isin(kinds)]
        order = var.sort_values("weight_norm", ascending=False, kind="stable").index
        frames.append(
            pd.DataFrame(
                {
                    "term": var.index.astype(str),
                    "kind": var["kind"].astype(str).to_numpy(),
                    "weight_norm": var["weight_norm"].to_numpy(dtype=np.float64),
                    "active": var["active"].to_numpy(dtype=bool),
                    "rank": pd.Series(np.arange(1, len(var) + 1), index=order)
                    .reindex(var.index)
                    .to_numpy(),
                    "replicate": replicate,
                }
            )
        )
    every = pd.concat(frames, ignore_index=True)
    table = (
        every.groupby("term", sort=False)
        .agg(
            kind=("kind", "first"),
            replicates=("replicate", "nunique"),
            weight_norm_mean=("weight_norm", "mean"),
            weight_norm_sd=("weight_norm", "std"),
            top_fraction=("rank", lambda r: float((r <= n).sum()) / len(variables)),
            rank_median=("rank", "median"),
            active_fraction=("active", lambda a: float(a.sum()) / len(variables)),
        )
        .sort_values("weight_norm_mean", ascending=False, kind="stable")
        .head(n)
        .reset_index()
    )
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.insert(2, "display_name", [display_name(t) for t in table["term"]])
    return table[list(TOP_TERM_COLUMNS)]


def _cell(value: object, digits: int) -> str:
    if isinstance(value, float | np.floating):
        return "–" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _is_number(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table.

    Parameters
    ----------
    table
        The table.
    digits
        Significant digits of floats.

    Returns
    -------
    str
        Numbers right-aligned, NaN as an en dash.
    """
    cols = [str(c) for c in table.columns]
    numeric = [_is_number(table[c]) for c in table.columns]
    rows = [[_cell(v, digits).replace("|", "\\|") for v in row] for row in table.itertuples(False)]
    lines = [
        "| " + " | ".join(cols) + " |",
        "| " + " | ".join("---:" if num else "---" for num in numeric) + " |",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_html(table: pd.DataFrame, title: str, digits: int = 3) -> str:
    """A small self-contained HTML page with the table (for Snakemake's report).

    Parameters
    ----------
    table
        The table.
    title
        The page's title and heading.
    digits
        Significant digits of floats.

    Returns
    -------
    str
        The page.
    """
    align = ["right" if _is_number(table[c]) else "left" for c in table.columns]
    head = "".join(
        f"<th style='text-align:{a}'>{html.escape(str(c))}</th>"
        for c, a in zip(table.columns, align, strict=True)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f"<td style='text-align:{a}'>{html.escape(_cell(v, digits))}</td>"
            for v, a in zip(row, align, strict=True)
        )
        + "</tr>"
        for row in table.itertuples(False)
    )
    style = (
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:4px 8px}th{background:#f2f2f2}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h3>{html.escape(title)}</h3>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>\n"
    )


def write_text(path: str | Path, text: str) -> None:
    """Write text through a temporary file in the same folder, so the file is whole or absent.

    Parameters
    ----------
    path
        The file.
    text
        Its content.
    """
    with staged(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_table(
    table: pd.DataFrame,
    tsv: str | Path | None = None,
    md: str | Path | None = None,
    html_path: str | Path | None = None,
    title: str = "",
    digits: int = 3,
) -> None:
    """Write a table as TSV (full precision), Markdown and/or HTML, each atomically.

    Parameters
    ----------
    table
        The table.
    tsv, md, html_path
        Where to write each form (``None``: not written).
    title
        The HTML page's title.
    digits
        Significant digits in the Markdown and HTML forms.
    """
    if tsv is not None:
        write_text(tsv, table.to_csv(sep="\t", index=False))
    if md is not None:
        write_text(md, (f"## {title}\n\n" if title else "") + to_markdown(table, digits))
    if html_path is not None:
        write_text(html_path, to_html(table, title, digits))
