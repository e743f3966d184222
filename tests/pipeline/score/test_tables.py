"""Table 1 (runtime from Snakemake benchmark files) and the top terms by decoder norm, over
replicates."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.script_runner import call_main
from iae_pipeline.contract import make_factor_anndata, read_run
from iae_pipeline.score.tables import (
    RUNTIME_COLUMNS,
    TOP_TERM_COLUMNS,
    read_benchmark,
    runtime_table,
    to_html,
    to_markdown,
    top_terms,
    top_terms_over_replicates,
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


def test_runtime_table_over_replicates(tmp_path):
    files = [
        write_benchmark(tmp_path / "ae0.tsv", [(10.0, 500.0), (12.0, 520.0), (11.0, 510.0)]),
        write_benchmark(tmp_path / "ae1.tsv", [(13.0, 540.0)]),
        write_benchmark(tmp_path / "sl0.tsv", [(330.0, 900.0)]),
        write_benchmark(tmp_path / "sl1.tsv", [(390.0, 1000.0)]),
        write_benchmark(tmp_path / "other.tsv", [(5.0, 100.0)]),
    ]
    entries = [
        {"dataset": "kang", "model": "ae", "label": "Autoencoder", "replicate": 0},
        {"dataset": "kang", "model": "ae", "label": "Autoencoder", "replicate": 1},
        {"dataset": "kang", "model": "slalom", "replicate": 0},
        {"dataset": "kang", "model": "slalom", "replicate": 1},
        {"dataset": "retina", "model": "slalom", "replicate": 0},
    ]
    runs = [{"seed": 0}, {"seed": 1}, {"converged": True}, {"converged": False}, {"converged": 1}]
    table = runtime_table(files, entries, reference="ae", runs=runs)
    assert list(table.columns) == list(RUNTIME_COLUMNS)
    table = table.set_index(["dataset", "model"])
    ae, sl = table.loc[("kang", "ae")], table.loc[("kang", "slalom")]
    assert ae["replicates"] == 2 and ae["label"] == "Autoencoder" and sl["label"] == "slalom"
    assert ae["seconds_mean"] == 12.0  # replicate 0: median of its repeats (11), replicate 1: 13
    assert ae["seconds_sd"] == pytest.approx(np.std([11.0, 13.0], ddof=1))
    assert ae["max_rss_mb_mean"] == 530.0  # the max over repeats (520) and 540
    assert ae["seconds_ratio"] == 1.0 and pd.isna(ae["converged"])
    assert sl["seconds_mean"] == 360.0 and sl["seconds_ratio"] == pytest.approx(30.0)
    assert sl["rss_ratio"] == pytest.approx(950 / 530)
    assert sl["converged"] == "1 of 2" and table.loc[("retina", "slalom"), "converged"] == "yes"
    assert math.isnan(table.loc[("retina", "slalom"), "seconds_ratio"])  # no ae on retina
    assert math.isnan(table.loc[("retina", "slalom"), "seconds_sd"])  # one replicate
    assert (
        runtime_table(files[2:3], entries[2:3], runs=[{"converged": False}])["converged"].item()
        == "no"
    )
    write_benchmark(tmp_path / "ae0.tsv", [(0.0, 500.0)])  # Snakemake rounds to 0.01 s
    assert runtime_table(files[:1], entries[:1])["seconds_ratio"].isna().all()
    write_benchmark(tmp_path / "ae0.tsv", [(0.0, 0.0)])  # too short to be sampled at all
    assert np.isnan(runtime_table(files[:1], entries[:1])["max_rss_mb_mean"].iloc[0])


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
    with pytest.raises(ValueError, match="same order"):
        runtime_table([f], [{"dataset": "d", "model": "ae"}], runs=[{}, {}])
    with pytest.raises(ValueError, match="twice"):
        runtime_table([f, f], [{"dataset": "d", "model": "ae"}] * 2)
    two = [{"dataset": "d", "model": "ae", "replicate": r} for r in (0, 1)]
    assert runtime_table([f, f], two)["replicates"].item() == 2
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


def test_top_terms_over_replicates(factors):
    second = factors.var.copy()
    second.loc["REACTOME_A", "weight_norm"] = 100.0  # first in one replicate only
    second.loc["HALLMARK_C", "active"] = False
    table = top_terms_over_replicates([factors.var, second], n=2)
    assert list(table.columns) == list(TOP_TERM_COLUMNS)
    assert list(table["term"]) == ["REACTOME_A", "REACTOME_B"]  # by mean norm
    row = table.set_index("term")
    assert row.loc["REACTOME_A", "top_fraction"] == 0.5  # 3rd, then 1st
    assert row.loc["REACTOME_A", "rank_median"] == 2.0
    assert row.loc["REACTOME_B", "top_fraction"] == 1.0 and (table["replicates"] == 2).all()
    assert row.loc["REACTOME_B", "weight_norm_sd"] == 0.0
    three = top_terms_over_replicates([factors.var, second], n=3).set_index("term")
    assert three.loc["HALLMARK_C", "active_fraction"] == 0.5
    with pytest.raises(ValueError, match="top_n"):
        top_terms_over_replicates([factors.var], n=0)


def test_runtime_and_top_terms_scripts(tmp_path, factors, snakemake_benchmark):
    out = {k: str(tmp_path / f"table1.{k}") for k in ("tsv", "md", "html")}
    paths = []
    for rep, converged in enumerate((True, False)):
        fit = factors.copy()
        fit.uns["run"] = {**fit.uns["run"], "converged": converged, "seed": rep}
        paths.append(str(tmp_path / f"slalom{rep}.h5ad"))
        fit.write_h5ad(paths[-1])
    ae = str(tmp_path / "ae.h5ad")
    factors.write_h5ad(ae)
    call_main(
        "runtime_table",
        input={
            "benchmarks": [str(snakemake_benchmark)] * 3,
            "factors": [ae, *paths],
        },
        params={
            "entries": [
                {"dataset": "d", "model": "ae", "replicate": 0},
                {"dataset": "d", "model": "slalom", "replicate": 0},
                {"dataset": "d", "model": "slalom", "replicate": 1},
            ]
        },
        output=out,
    )
    table = pd.read_csv(out["tsv"], sep="\t")
    assert list(table["model"]) == ["ae", "slalom"] and list(table["replicates"]) == [1, 2]
    assert pd.isna(table["converged"][0]) and table["converged"][1] == "1 of 2"
    assert (table["seconds_ratio"] == 1.0).all() and (table["rss_ratio"] == 1.0).all()
    assert Path(out["md"]).read_text().count("\n| d |") == 2
    assert "<table>" in Path(out["html"]).read_text()

    top = {k: str(tmp_path / f"top.{k}") for k in ("tsv", "md", "html")}
    call_main(
        "top_terms",
        input={"factors": [ae, *paths]},
        params={"model": "ae", "n": 2, "dataset": "d", "label": "Autoencoder"},
        output=top,
    )
    written = pd.read_csv(top["tsv"], sep="\t")
    assert list(written["term"]) == ["REACTOME_B", "HALLMARK_C"]
    assert set(written["label"]) == {"Autoencoder"} and set(written["replicates"]) == {3}
    assert "over 3 replicate(s), d, Autoencoder" in Path(top["md"]).read_text()
    with pytest.raises(ValueError, match="uns\\['run'\\]"):
        bare = tmp_path / "bare.h5ad"
        factors.copy().write_h5ad(bare)
        import h5py

        with h5py.File(bare, "a") as handle:
            del handle["uns/run"]
        read_run(bare)
