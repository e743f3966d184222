"""Result tables: Table 1 (runtime from Snakemake benchmark files) and the top terms.

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

import anndata as ad
import numpy as np
import pandas as pd

from interpretable_ae.genesets import display_name

from .contract import validate_factor_anndata
from .files import staged

BENCHMARK_COLUMNS = ("s", "max_rss")
RUNTIME_COLUMNS = (
    "dataset",
    "model",
    "label",
    "seconds",
    "max_rss_mb",
    "repeats",
    "seconds_ratio",
    "rss_ratio",
)


def read_benchmark(path: str | Path) -> pd.DataFrame:
    """Read one Snakemake benchmark TSV; ``NA``/``-`` cells become NaN."""
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


def runtime_table(
    benchmarks: Sequence[str | Path],
    entries: Sequence[Mapping[str, str]],
    reference: str = "ae",
) -> pd.DataFrame:
    """Table 1: median wall seconds and max RSS (MB) per (dataset, model), with ratios.

    ``entries`` are ``{dataset, model[, label]}`` aligned with ``benchmarks``; the ratios
    divide by the ``reference`` model of the same dataset (NaN when it was not run, or when
    its value is zero: Snakemake rounds to 0.01 s).
    """
    if len(benchmarks) != len(entries):
        raise ValueError(
            f"{len(benchmarks)} benchmark file(s) but {len(entries)} entries; params.entries "
            "must list one {dataset, model} per benchmark file, in the same order"
        )
    rows = []
    for path, entry in zip(benchmarks, entries, strict=True):
        if "dataset" not in entry or "model" not in entry:
            raise ValueError(f"entry {dict(entry)} for {path} needs the keys 'dataset' and 'model'")
        bench = read_benchmark(path)
        rows.append(
            {
                "dataset": str(entry["dataset"]),
                "model": str(entry["model"]),
                "label": str(entry.get("label", entry["model"])),
                "seconds": float(bench["s"].median()),
                # a job shorter than Snakemake's first memory sample reads 0 MB: not measured
                "max_rss_mb": float(bench["max_rss"].where(bench["max_rss"] > 0).max()),
                "repeats": len(bench),
            }
        )
    table = pd.DataFrame(rows, columns=list(RUNTIME_COLUMNS[:6]))
    if table.duplicated(["dataset", "model"]).any():
        dup = table.loc[table.duplicated(["dataset", "model"]), ["dataset", "model"]].values[0]
        raise ValueError(f"params.entries lists {tuple(dup)} twice; each run must appear once")
    ref = table[table["model"] == reference].set_index("dataset")
    for col, ratio in (("seconds", "seconds_ratio"), ("max_rss_mb", "rss_ratio")):
        denominator = table["dataset"].map(ref[col])
        table[ratio] = table[col] / denominator.where(denominator > 0)
    return table


def top_terms(
    adata: ad.AnnData, n: int = 10, kinds: Sequence[str] = ("annotated",)
) -> pd.DataFrame:
    """The ``n`` factors of the given kinds with the largest decoder L2 norm (``weight_norm``)."""
    validate_factor_anndata(adata)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}; set scoring.top_n")
    var = adata.var[adata.var["kind"].astype(str).isin(kinds)]
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


def _cell(value: object, digits: int) -> str:
    if isinstance(value, float | np.floating):
        return "–" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _is_number(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned, NaN as an en dash)."""
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
    """A small self-contained HTML page with the table (for Snakemake's report)."""
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
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
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
    """Write ``table`` as TSV (full precision), Markdown and/or HTML, each atomically."""
    if tsv is not None:
        write_text(tsv, table.to_csv(sep="\t", index=False))
    if md is not None:
        write_text(md, (f"## {title}\n\n" if title else "") + to_markdown(table, digits))
    if html_path is not None:
        write_text(html_path, to_html(table, title, digits))
