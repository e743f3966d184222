"""Peak memory of every job of the workflow on a simulated atlas, from Snakemake's benchmark
files (``max_rss``).

Writes an atlas (``--cells`` x ``--genes``, log-normalised, ``--nonzero`` of the entries
non-zero, 300 gene sets, 8 donors in both conditions) with :mod:`atlas`, then runs the
repository's workflow on it as a user's ``source: h5ad`` dataset, one job at a time
(``--cores 1``, one thread): prepare, the autoencoder fit (``--epochs``, ``--batch-size``,
the paper's 62 by default), its scores, summary, top terms, Figures 1-3, refinement, the donor-level test and
the baselines. f-scLVM is not run: it refuses more than 100,000 cells (``max_cells``).
Prints every job's peak RSS and wall time, the largest, the CPU and the machine's load
before and after; and each job's exact peak, which its script logs at the end
(``getrusage``; Snakemake samples the memory every 0.5 s for 15 s, then every 30 s).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_memory.py --cells 200000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_memory.py --cells 1000000
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "workflow" / "lib")]

from atlas import write_counts_h5ad  # noqa: E402

#: the atlas generator's log-mean shift that leaves ~6 % of the entries non-zero (measured
#: on 3,000 cells: -3.0 gives 9.1 %, -3.4 6.4 %, -3.6 5.4 %)
BASE_FOR_6_PERCENT = -3.45
PEAK = re.compile(r"peak memory (\d+) MB")


def write_inputs(out: Path, cells: int, genes: int, base: float, seed: int) -> float:
    """The atlas, its GMT and the workflow config under ``out``; return the non-zero share."""
    atlas, gmt = out / "atlas.h5ad", out / "atlas.gmt"
    if not atlas.exists():
        sets = write_counts_h5ad(atlas, cells, genes, 300, base=base, seed=seed, donors=8)
        gmt.write_text("".join(f"{t}\tsimulated\t" + "\t".join(g) + "\n" for t, g in sets.items()))
    with h5py.File(atlas) as f:
        nonzero = f["X/data"].shape[0] / (cells * genes)
    return nonzero


def workflow_config(out: Path, epochs: int, top_genes: int | None, batch_size: int) -> Path:
    """A config running every per-model step and analysis on the atlas (autoencoder only;
    ``top_genes`` highly variable genes kept, None: every gene)."""
    config = {
        "seed": 0,
        "replicates": 1,
        "preprocess": {"n_top_genes": top_genes},
        "genesets": {"atlas": {"source": "local", "path": str(out / "atlas.gmt")}},
        "datasets": {
            "atlas": {
                "source": "h5ad",
                "path": str(out / "atlas.h5ad"),
                "species": "human",
                "genesets": ["atlas"],
                "condition_key": "condition",
                "cell_type_key": "cell_type",
                "data_type": "lognorm",
                "sample_key": "donor",
                "paired": True,
            }
        },
        "models": {
            "ae": {"kind": "autoencoder", "options": {"epochs": epochs, "batch_size": batch_size}}
        },
        "figures": {
            "fig1": {"model": "ae", "terms": ["SET_000", "SET_001"]},
            "fig2": {"terms": "SET_00[0-4]", "models": ["ae"]},
            "fig3": {
                "model": "ae",
                "terms": ["SET_000", "SET_001"],
                "cell_types": ["type_0", "type_1"],
                "group_key": "condition",
                "groups": ["control", "stimulated"],
            },  # fmt: skip
        },
    }
    path = out / "memory.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_workflow(out: Path, config: Path, omit: list[str]) -> float:
    """Snakemake in ``out``, one job and one thread at a time, without the rules ``omit``
    (and what depends on them); return the wall time."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(out),
         "--cores", "1", *(["--omit-from", *omit] if omit else []), "--configfile", str(config)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"the workflow failed:\n{proc.stderr[-4000:]}")
    return time.perf_counter() - start


def job_peaks(out: Path) -> list[tuple[str, float, float]]:
    """(job, max_rss MB, wall s) of every benchmark file, largest first."""
    rows = []
    for path in sorted((out / "results" / "benchmarks").rglob("*.tsv")):
        with path.open() as handle:
            record = next(csv.DictReader(handle, delimiter="\t"))
        rss = float(record["max_rss"]) if record["max_rss"] not in ("", "NA", "-") else 0.0
        job = str(path.relative_to(out / "results" / "benchmarks").with_suffix(""))
        rows.append((job, rss, float(record["s"])))
    return sorted(rows, key=lambda r: -r[1])


def log_peaks(out: Path) -> dict[str, float]:
    """Each job's exact peak (MB), from the line its script logs at the end (getrusage)."""
    peaks = {}
    for path in sorted((out / "logs").rglob("*.log")):
        found = PEAK.search(path.read_text(errors="replace"))
        if found:
            peaks[str(path.relative_to(out / "logs").with_suffix(""))] = float(found.group(1))
    return peaks


def cpu_model() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=200_000)
    p.add_argument("--genes", type=int, default=2000)
    p.add_argument("--base", type=float, default=BASE_FOR_6_PERCENT)
    p.add_argument("--epochs", type=int, default=1, help="one epoch shows a fit's memory")
    p.add_argument("--batch-size", type=int, default=62, help="the paper's 62 by default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top-genes", type=int, help="highly variable genes kept (default: all)")
    p.add_argument("--omit", nargs="+", default=[], help="rules not run (e.g. baselines)")
    p.add_argument("--dir", type=Path, default=ROOT / "benchmarks" / "out" / "memory")
    args = p.parse_args()
    out = args.dir / f"{args.cells}"
    out.mkdir(parents=True, exist_ok=True)
    nonzero = write_inputs(out, args.cells, args.genes, args.base, args.seed)
    load_before = os.getloadavg()
    config = workflow_config(out, args.epochs, args.top_genes, args.batch_size)
    wall = run_workflow(out, config, args.omit)
    load_after = os.getloadavg()
    rows = job_peaks(out)
    print(f"{args.cells:,} cells x {args.genes:,} genes, {nonzero:.1%} non-zero; {cpu_model()}, "
          f"{os.cpu_count()} CPUs; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after; workflow {wall:.0f} s")  # fmt: skip
    print(f"{'job':<48} {'max_rss MB':>10} {'wall s':>8}")
    for job, rss, seconds in rows:
        print(f"{job:<48} {rss:>10.0f} {seconds:>8.1f}")
    print(f"largest: {rows[0][0]} {rows[0][1]:.0f} MB")
    peaks = log_peaks(out)
    print("exact peaks (getrusage, from the jobs' logs; Snakemake samples every 0.5 s, then 30 s):")
    for job, peak in sorted(peaks.items(), key=lambda kv: -kv[1]):
        print(f"  {job:<46} {peak:>10.0f}")


if __name__ == "__main__":
    main()
