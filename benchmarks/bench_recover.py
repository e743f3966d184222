"""Benchmark: delete and recover (expiMap's test) on simulated and real cells.

    python benchmarks/bench_recover.py                      # every dataset, paper settings
    python benchmarks/bench_recover.py --data kang --scope annotation --batch-size 600

Remove ``k`` annotated genes from a term's mask (the genes stay in the data), retrain the
autoencoder (:class:`interpretable_ae.model.InterpretableAutoencoder`, as the workflow
fits it) and count how many come back among the term's top ``n_top`` genes by absolute
weight (``n_top`` = the term's annotated genes in the data); ``k`` random genes outside the
term give the chance level (:mod:`recovery`). Replicate ``r`` trains with
seed ``r`` and deletes genes drawn with seed ``1000 + r``. Data (``--data``):

- ``demo``: the demo's data, built by the workflow's own steps (pbmc68k_reduced, the
  planted stimulation of HALLMARK_INTERFERON_GAMMA_RESPONSE with ``--extra-genes`` more
  responding genes, 250 as in the demo, MSigDB 7.5.1 hallmark and Reactome sets, terms
  with more than 19 genes, genes in no kept term dropped);
- ``kang``: 600 real control and IFN-beta-stimulated PBMCs (Kang 2018 via liger's example
  files) with Reactome 4.0 (the paper's file), terms with >= 5 genes, term
  REACTOME_INTERFERON_SIGNALING.

The real files come through the tests' resolver (tests/helpers/real_files.py: a local
mirror or a download checked by sha256). Every dataset is log-normalised and then
centred per gene here (``X - X.mean(0)``), as the authors' notebooks do before training,
so the numbers do not depend on whether the estimator centres its input itself (centring
centred data changes nothing). Prints
one row per (data, term) with the recovered counts of the replicates, their mean and
spread, the control counts and the number of deleted genes with any non-zero weight;
writes every replicate to ``benchmarks/out/bench_recover.tsv``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "workflow" / "lib"), str(ROOT / "tests")]
from recovery import SCOPES, delete_and_recover  # noqa: E402

from helpers.real_files import real_file  # noqa: E402
from iae_pipeline.prepare.datasets import load_pbmc68k_demo  # noqa: E402
from iae_pipeline.prepare.preprocess import normalize_log, prepare  # noqa: E402
from iae_pipeline.prepare.simulation import simulate_dataset  # noqa: E402
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY  # noqa: E402
from interpretable_ae.genesets import (  # noqa: E402
    build_mask,
    merge_gene_sets,
    read_gmt,
    select_terms,
)

DATASETS = ("demo", "kang")
KANG_TERM = "REACTOME_INTERFERON_SIGNALING"
DEMO_TERM = "HALLMARK_INTERFERON_GAMMA_RESPONSE"


def _annotate(adata: ad.AnnData, gene_sets: dict[str, list[str]], min_genes: int) -> ad.AnnData:
    mask, terms = build_mask(adata.var_names, gene_sets, min_genes=min_genes)
    adata.varm[MASK_KEY] = mask
    adata.uns[TERMS_KEY] = np.asarray(terms, dtype=object)
    return adata


def centred(adata: ad.AnnData) -> ad.AnnData:
    """Dense float32 X minus each gene's mean (the authors' ``adata.X -= adata.X.mean(0)``)."""
    X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    adata.X = (X - X.mean(axis=0, keepdims=True)).astype(np.float32)
    return adata


def demo_data(extra_genes: int = 250) -> tuple[ad.AnnData, list[str]]:
    sets = merge_gene_sets(
        {
            "hallmark": read_gmt(real_file("genesets/h.all.v7.5.1.symbols.gmt")),
            "reactome": read_gmt(real_file("genesets/c2.cp.reactome.v7.5.1.symbols.gmt")),
        }
    )
    sets = select_terms(sets, ["HALLMARK_", "REACTOME_"])
    simulation = {
        "terms": [DEMO_TERM], "strength": 2.0, "fraction": 0.5, "extra_genes": extra_genes,
        "extra_strength": 0.5, "seed": 0,
    }  # fmt: skip
    raw = load_pbmc68k_demo()
    sim = simulate_dataset(raw, sets, simulation, data_type="lognorm", name="demo")
    adata = prepare(sim, sets, data_type="lognorm", n_top_genes=1000, min_genes=19, name="demo")
    return adata, [DEMO_TERM]


def kang_data() -> tuple[ad.AnnData, list[str]]:
    adata = ad.read_h5ad(real_file("expression/kang2018_liger_600.h5ad"))
    normalize_log(adata, 1e4)
    sets = read_gmt(real_file("genesets/c2.cp.reactome.v4.0.symbols.gmt"))
    in_sets = {g for genes in sets.values() for g in genes}
    adata = adata[:, adata.var_names.isin(list(in_sets))].copy()
    return _annotate(adata, sets, min_genes=5), [KANG_TERM]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--scope", choices=SCOPES, default="term")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--replicates", type=int, default=5)
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--batch-size", type=int, default=62)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lambda1", type=float, default=0.93)
    p.add_argument("--lambda3", type=float, default=0.57)
    p.add_argument("--no-centre", action="store_true", help="train on uncentred data")
    p.add_argument(
        "--extra-genes", type=int, default=250,
        help="demo: genes outside the planted term that respond too (the demo's 250; 0: none)",
    )  # fmt: skip
    p.add_argument("--label", default="", help="a name for this setting in the output")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    options = {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "lambda0": 0.1, "lambda1": args.lambda1, "lambda3": args.lambda3,
    }  # fmt: skip
    label = args.label or (
        f"{args.scope} e{args.epochs} b{args.batch_size} l1={args.lambda1}"
        + (" uncentred" if args.no_centre else "")
        + (f" extra={args.extra_genes}" if "demo" in args.data else "")
    )
    rows = []
    for name in args.data:
        loaders = {"demo": lambda: demo_data(args.extra_genes), "kang": kang_data}
        adata, terms = loaders[name]()
        if not args.no_centre:
            adata = centred(adata)
        print(f"{name}: {adata.n_obs} cells x {adata.n_vars} genes, "
              f"{len(adata.uns[TERMS_KEY])} terms", flush=True)  # fmt: skip
        for term in terms:
            for r in range(args.replicates):
                t0 = time.perf_counter()
                res = delete_and_recover(
                    adata, term, options, k=args.k, scope=args.scope, seed=r,
                    deletion_seed=1000 + r,
                )  # fmt: skip
                res |= {"data": name, "setting": label, "replicate": r,
                        "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
                rows.append(res)
                print(f"  {term} rep {r}: {res['recovered']}/{res['k']} back "
                      f"(ranks {res['ranks']}, top {res['n_top']}), control {res['control']}, "
                      f"{res['n_used']} genes used, {res['seconds']} s", flush=True)  # fmt: skip
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "bench_recover.tsv"
    table.to_csv(out, sep="\t", index=False, mode="a", header=not out.exists())
    print(f"\n| data | term | setting | recovered per replicate (of {args.k}) | mean ± sd | "
          "min | control | deleted with weight ≠ 0 |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for (name, term), g in table.groupby(["data", "term"], sort=False):
        rec = g["recovered"]
        print(f"| {name} | {term} | {label} | {rec.tolist()} | {rec.mean():.1f} ± "
              f"{rec.std(ddof=1) if len(rec) > 1 else 0:.1f} | {rec.min()} | "
              f"{g['control'].tolist()} | {g['recovered_used'].tolist()} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
