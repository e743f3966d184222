"""Scoring and figures at atlas scale: how long the workflow's score and figure steps take on
10k / 100k / 1M cells x 300 factors, against scikit-learn factor by factor.

    python benchmarks/bench_scoring.py                    # 10k, 100k, 1M; ~15 min, 1 thread
    python benchmarks/bench_scoring.py --cells 10000      # one size

For each size, in a fresh process (so that its peak memory is its own): simulated loadings
(float32, as in factors.h5ad; a binary condition with 40 % cases; factors from useless to
separating it), then

- ``score``: the score rule's work in a process of its own (read the factors.h5ad, score
  every factor with :func:`iae_pipeline.score.scoring.score_replicate`, 5-fold CV, write the
  table), with its peak memory;
- ``sklearn``: the same scores with scikit-learn, factor by factor
  (:func:`iae_pipeline.score.scoring.score_factor`, ``LogisticRegression`` with its defaults and
  ``cross_val_predict``), timed on ``--sklearn-factors`` factors and scaled to all;
- ``max |diff|``: the batched solver's coefficients against scikit-learn's solved to 1e-12
  (``newton-cholesky``) on ``--check-factors`` factors, and the largest difference of
  accuracy / AUROC between the two;
- ``figures``: Figure 1 (both panels) and Figure 3 drawn by the figure rules' functions
  from that factors.h5ad, PNG + PDF.

Prints one Markdown table, wall and CPU seconds (the CPU time does not grow when other
jobs share the machine); JSON to benchmarks/out/bench_scoring.json (gitignored).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "lib"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, roc_auc_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_predict  # noqa: E402

from iae_pipeline.contract import make_factor_anndata, read_factors  # noqa: E402
from iae_pipeline.figures.loadings import plot_group_loadings, plot_term_scatter  # noqa: E402
from iae_pipeline.figures.style import save_figure  # noqa: E402
from iae_pipeline.score.scoring import (  # noqa: E402
    fit_logistic_1d,
    score_factor,
    score_factors,
    standardise,
)

CELL_TYPES = ["T", "B", "NK", "Monocyte", "Macrophage", "Epithelial"]


def simulate(n_cells: int, n_factors: int, seed: int = 0):
    """Loadings with a 40 % case condition; factor j is shifted by j / n_factors * 2 sd in
    the cases (factor 0 useless, the last one separating the classes well)."""
    rng = np.random.default_rng(seed)
    y = rng.random(n_cells) < 0.4
    X = rng.standard_normal((n_cells, n_factors), dtype=np.float32)
    X += np.outer(y, np.linspace(0, 2, n_factors)).astype(np.float32)
    obs = pd.DataFrame(
        {
            "condition": pd.Categorical(np.where(y, "case", "control")),
            "cell_type": pd.Categorical(rng.choice(CELL_TYPES, n_cells)),
            "group": pd.Categorical(rng.choice(["HC", "M", "S"], n_cells)),
        },
        index=pd.RangeIndex(n_cells).astype(str),
    )
    names = [f"TERM_{j}" for j in range(n_factors)]
    return make_factor_anndata(
        X,
        obs,
        names,
        ["annotated"] * n_factors,
        rng.normal(size=(50, n_factors)),
        [f"g{i}" for i in range(50)],
        np.ones(n_factors, bool),
        {"model": "sim", "setup": "sim", "seed": seed, "seconds": 0.0},
    )


def check_against_sklearn(adata, factors: list[int], seed: int = 0) -> dict[str, float]:
    """Largest coefficient and score differences to scikit-learn solved to 1e-12."""
    y = (adata.obs["condition"] == "case").to_numpy().astype(int)
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    ours = score_factors(adata[:, factors].copy(), cv_folds=5, seed=seed)
    x = standardise(np.asarray(adata.X[:, factors]))
    a, b = fit_logistic_1d(x, y)
    coef, metric = 0.0, 0.0
    for i, _ in enumerate(factors):
        clf = LogisticRegression(solver="newton-cholesky", tol=1e-12, max_iter=1000)
        xi = x[:, [i]]
        clf.fit(xi, y)
        coef = max(coef, abs(clf.intercept_[0] - a[i]), abs(clf.coef_[0, 0] - b[i]))
        proba = cross_val_predict(clf, xi, y, cv=cv, method="predict_proba")
        ref = (
            accuracy_score(y, clf.predict(xi)),
            accuracy_score(y, proba.argmax(axis=1)),
            roc_auc_score(y, proba[:, 1]),
        )
        got = ours.iloc[i][["accuracy_train", "accuracy_cv", "auroc"]].to_numpy(dtype=float)
        metric = max(metric, float(np.abs(got - np.array(ref)).max()))
    return {"max_coef_diff": coef, "max_score_diff": metric}


SCORE_RULE = """
import sys, time
sys.path.insert(0, {lib!r})
from iae_pipeline.score.scoring import score_replicate
from iae_pipeline.contract import read_factors
from iae_pipeline.score.tables import write_table
t0, c0 = time.perf_counter(), time.process_time()
table = score_replicate(read_factors({path!r}), "bench", "sim", cv_folds=5, seed=0)
write_table(table, tsv={out!r})
# the peak of this process's own memory (ru_maxrss would also count the parent's pages
# seen at the fork)
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(time.perf_counter() - t0, time.process_time() - c0, table["auroc"].max(), peak.split()[1])
"""


def score_rule(path: Path, out: Path) -> dict[str, float]:
    """The score rule's work in a process of its own: read the factors file, score every
    factor, write the table; its wall and CPU seconds and peak memory."""
    code = SCORE_RULE.format(lib=str(ROOT / "workflow" / "lib"), path=str(path), out=str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall, cpu, best, peak_kb = map(float, proc.stdout.split())
    return {"score_s": wall, "score_cpu_s": cpu, "best_auroc": best, "score_rss_mb": peak_kb / 1024}


def one_size(n_cells: int, n_factors: int, sklearn_factors: int, check_factors: int) -> dict:
    t0 = time.perf_counter()
    adata = simulate(n_cells, n_factors)
    out: dict = {"cells": n_cells, "factors": n_factors, "simulate_s": time.perf_counter() - t0}

    y = (adata.obs["condition"] == "case").to_numpy().astype(int)
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    picks = np.linspace(0, n_factors - 1, sklearn_factors).astype(int)
    t0, c0 = time.perf_counter(), time.process_time()
    for j in picks:
        score_factor(np.asarray(adata.X[:, j]), y, cv)
    out["sklearn_s"] = (time.perf_counter() - t0) / len(picks) * n_factors
    out["sklearn_cpu_s"] = (time.process_time() - c0) / len(picks) * n_factors

    out |= check_against_sklearn(
        adata, list(np.linspace(0, n_factors - 1, check_factors, dtype=int))
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "factors.h5ad"
        t0 = time.perf_counter()
        adata.write_h5ad(path)
        out["write_h5ad_s"] = time.perf_counter() - t0
        del adata
        out |= score_rule(path, Path(tmp) / "scores.tsv")
        t0, c0 = time.perf_counter(), time.process_time()
        lazy = read_factors(path, backed=True)
        for key in ("condition", "cell_type"):
            fig, _ = plot_term_scatter(lazy, ["TERM_299", "TERM_150"], key, seed=0)
            save_figure(fig, Path(tmp) / f"fig1_{key}.png", Path(tmp) / f"fig1_{key}.pdf")
        out["figure1_s"], out["figure1_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        lazy = read_factors(path, backed=True)
        fig, _ = plot_group_loadings(lazy, ["TERM_299", "TERM_150"], CELL_TYPES[:4], "group")
        save_figure(fig, Path(tmp) / "fig3.png", Path(tmp) / "fig3.pdf")
        out["figure3_s"], out["figure3_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--factors", type=int, default=300)
    parser.add_argument("--sklearn-factors", type=int, default=5)
    parser.add_argument("--check-factors", type=int, default=8)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/bench_scoring.json")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.cells[0], args.factors, args.sklearn_factors,
                                  args.check_factors)))  # fmt: skip
        return
    rows, load = [], os.getloadavg()
    for n in args.cells:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", "--cells", str(n), "--factors", str(args.factors),
             "--sklearn-factors", str(args.sklearn_factors),
             "--check-factors", str(args.check_factors)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"done: {n} cells", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print(f"load average before / after: {load[0]:.2f} / {os.getloadavg()[0]:.2f}")
    print(
        "| cells | factors | score: wall (CPU) s | score: peak RSS (MB) "
        "| scikit-learn, factor by factor: wall (CPU) s | speed-up (CPU) | max coef diff "
        "| max score diff | Fig. 1: wall (CPU) s | Fig. 3: wall (CPU) s |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['cells']:,} | {r['factors']} | {r['score_s']:.1f} ({r['score_cpu_s']:.1f}) "
            f"| {r['score_rss_mb']:.0f} | {r['sklearn_s']:.0f} ({r['sklearn_cpu_s']:.0f}) "
            f"| {r['sklearn_cpu_s'] / r['score_cpu_s']:.0f}x | {r['max_coef_diff']:.1e} "
            f"| {r['max_score_diff']:.1e} | {r['figure1_s']:.1f} ({r['figure1_cpu_s']:.1f}) "
            f"| {r['figure3_s']:.1f} ({r['figure3_cpu_s']:.1f}) |"
        )


if __name__ == "__main__":
    main()
