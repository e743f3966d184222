"""Table 1 (runtime from Snakemake benchmark files) and the top terms by decoder norm."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.script_runner import call_main
from iae_pipeline.contract import make_factor_anndata
from iae_pipeline.tables import (
    read_benchmark,
    runtime_table,
    to_html,
    to_markdown,
    top_terms,
)

# A job long and large enough for Snakemake to sample its memory (tiny jobs read as zeros).
ALLOCATE = "import time; x = bytearray(80_000_000); time.sleep(1.2)"
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_benchmark(path: Path, rows: list[tuple[float, float]]) -> str:
    lines = [f"{s}\t0:00:00\t{rss}\t1\t1\t1\t0\t0\t0\t0\n" for s, rss in rows]
    path.write_text(HEADER + "".join(lines))
    return str(path)


@pytest.fixture(scope="module")
def snakemake_benchmark(tmp_path_factory) -> Path:
    """A benchmark file written by Snakemake itself (so the header is the real one)."""
    work = tmp_path_factory.mktemp("bench")
    (work / "Snakefile").write_text(
        'rule a:\n    output: "out.txt"\n    benchmark: "bench.tsv"\n'
        f"    shell: \"{sys.executable} -c '{ALLOCATE}' && touch {{output}}\"\n"
    )
    snakemake = Path(sys.executable).with_name("snakemake")
    subprocess.run(
        [str(snakemake), "-c1", "-q", "--directory", str(work), "-s", str(work / "Snakefile")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return work / "bench.tsv"


def test_reads_a_real_snakemake_benchmark(snakemake_benchmark):
    bench = read_benchmark(snakemake_benchmark)
    assert len(bench) == 1
    assert bench["s"].iloc[0] >= 1.0
    assert bench["max_rss"].iloc[0] > 50  # MB: the 80 MB allocation was seen


def test_runtime_table_ratios(tmp_path):
    files = [
        write_benchmark(tmp_path / "ae.tsv", [(10.0, 500.0), (12.0, 520.0), (11.0, 510.0)]),
        write_benchmark(tmp_path / "sl.tsv", [(330.0, 900.0)]),
        write_benchmark(tmp_path / "other.tsv", [(5.0, 100.0)]),
    ]
    entries = [
        {"dataset": "kang", "model": "ae", "label": "Autoencoder"},
        {"dataset": "kang", "model": "slalom"},
        {"dataset": "retina", "model": "slalom"},
    ]
    table = runtime_table(files, entries, reference="ae").set_index(["dataset", "model"])
    assert table.loc[("kang", "ae"), "seconds"] == 11.0  # median over repeats
    assert table.loc[("kang", "ae"), "max_rss_mb"] == 520.0  # max over repeats
    assert table.loc[("kang", "ae"), "repeats"] == 3
    assert table.loc[("kang", "ae"), "seconds_ratio"] == 1.0
    assert table.loc[("kang", "slalom"), "seconds_ratio"] == pytest.approx(30.0)
    assert table.loc[("kang", "slalom"), "rss_ratio"] == pytest.approx(900 / 520)
    assert table.loc[("kang", "slalom"), "label"] == "slalom"
    assert math.isnan(table.loc[("retina", "slalom"), "seconds_ratio"])  # no ae on retina
    zero = runtime_table(files[:2], entries[:2], reference="slalom")  # fine
    assert zero["seconds_ratio"].notna().all()
    write_benchmark(tmp_path / "ae.tsv", [(0.0, 500.0)])  # Snakemake rounds to 0.01 s
    assert runtime_table(files[:2], entries[:2])["seconds_ratio"].isna().all()
    write_benchmark(tmp_path / "ae.tsv", [(0.0, 0.0)])  # too short to be sampled at all
    assert np.isnan(runtime_table(files[:1], entries[:1])["max_rss_mb"].iloc[0])


@pytest.mark.parametrize(
    ("content", "message"),
    [("a\tb\n1\t2\n", "not a Snakemake benchmark"), (HEADER, "has no rows")],
)
def test_bad_benchmark_file(tmp_path, content, message):
    path = tmp_path / "b.tsv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_benchmark(path)


def test_runtime_table_rejects_misaligned_or_duplicate_entries(tmp_path):
    f = write_benchmark(tmp_path / "a.tsv", [(1.0, 1.0)])
    with pytest.raises(ValueError, match="same order"):
        runtime_table([f, f], [{"dataset": "d", "model": "ae"}])
    with pytest.raises(ValueError, match="twice"):
        runtime_table([f, f], [{"dataset": "d", "model": "ae"}] * 2)
    with pytest.raises(ValueError, match="'dataset' and 'model'"):
        runtime_table([f], [{"model": "ae"}])


@pytest.fixture()
def factors():
    rng = np.random.default_rng(0)
    n_cells, n_genes = 30, 40
    names = ["REACTOME_A", "REACTOME_B", "HALLMARK_C", "REACTOME_D", "sparse_0", "dense_0"]
    kinds = ["annotated"] * 4 + ["sparse", "dense"]
    scale = np.array([1.0, 3.0, 2.0, 0.0, 10.0, 20.0])  # the unannotated ones are largest
    weights = rng.normal(size=(n_genes, len(names))) * scale
    obs = pd.DataFrame(
        {"condition": ["c", "s"] * 15, "cell_type": ["t"] * 30},
        index=[f"c{i}" for i in range(n_cells)],
    )
    return make_factor_anndata(
        rng.normal(size=(n_cells, len(names))),
        obs,
        names,
        kinds,
        weights,
        [f"g{i}" for i in range(n_genes)],
        scale > 0,
        {"model": "ae", "setup": "t", "seed": 0, "seconds": 1.0},
    )


def test_top_terms_by_decoder_norm(factors):
    top = top_terms(factors, n=3)
    assert list(top["term"]) == ["REACTOME_B", "HALLMARK_C", "REACTOME_A"]
    assert list(top["display_name"]) == ["B", "C", "A"]
    assert list(top["rank"]) == [1, 2, 3]
    assert top["weight_norm"].is_monotonic_decreasing
    assert len(top_terms(factors, n=10)) == 4  # only the annotated ones
    everything = top_terms(factors, n=2, kinds=("annotated", "sparse", "dense"))
    assert list(everything["term"]) == ["dense_0", "sparse_0"]
    with pytest.raises(ValueError, match="top_n"):
        top_terms(factors, n=0)


def test_markdown_and_html():
    table = pd.DataFrame(
        {"model": ["a|b", "c"], "seconds": [1.23456, float("nan")], "active": [True, False]}
    )
    md = to_markdown(table, digits=2).splitlines()
    assert md[0] == "| model | seconds | active |" and md[1] == "| --- | ---: | --- |"
    assert md[2] == "| a\\|b | 1.23 | True |" and md[3] == "| c | – | False |"
    page = to_html(table, "T <1>")
    assert "<title>T &lt;1&gt;</title>" in page and page.count("<tr>") == 3


def test_runtime_and_top_terms_scripts(tmp_path, factors, snakemake_benchmark):
    out = {k: str(tmp_path / f"table1.{k}") for k in ("tsv", "md", "html")}
    call_main(
        "runtime_table",
        input={"benchmarks": [str(snakemake_benchmark), str(snakemake_benchmark)]},
        params={"entries": [{"dataset": "d", "model": "ae"}, {"dataset": "d", "model": "slalom"}]},
        output=out,
    )
    table = pd.read_csv(out["tsv"], sep="\t")
    assert list(table["model"]) == ["ae", "slalom"]
    assert (table["seconds_ratio"] == 1.0).all() and (table["rss_ratio"] == 1.0).all()
    assert Path(out["md"]).read_text().count("\n| d |") == 2
    assert "<table>" in Path(out["html"]).read_text()

    path = tmp_path / "ae.h5ad"
    factors.write_h5ad(path)
    top = {k: str(tmp_path / f"top.{k}") for k in ("tsv", "md")}
    call_main(
        "top_terms",
        input={"factors": [str(path)]},
        params={"models": ["ae"], "n": 2, "dataset": "d", "labels": {"ae": "Autoencoder"}},
        output=top,
    )
    written = pd.read_csv(top["tsv"], sep="\t")
    assert list(written["term"]) == ["REACTOME_B", "HALLMARK_C"]
    assert set(written["label"]) == {"Autoencoder"}
    assert "### Autoencoder (`ae`)" in Path(top["md"]).read_text()
