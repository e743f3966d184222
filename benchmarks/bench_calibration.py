"""Benchmark: is the random-mask calibration calibrated, and does it find a planted response?

    python benchmarks/bench_calibration.py kang [--replicates 5 --random 20 --permutations 200]
    python benchmarks/bench_calibration.py nested [--seeds 10 --random 20 --permutations 20]

``kang``: 600 real Kang PBMCs (``expression/kang2018_liger_600.h5ad``, found through
``tests/helpers/real_files.py``: ``IAE_TEST_DATA`` or a pinned download) with Reactome 4.0,
terms with more than 5 genes (131 genes, 36 terms), the paper's autoencoder settings.
``nested``: the simulation of ``tests/helpers/nested_sets.py`` (a response planted on the
child of child ⊂ parent ⊂ grandparent, eight decoy families of that shape, 40 random sets,
six donors). The model is fitted ``--replicates`` times on the real mask and ``--random``
times on masks with permuted gene rows, once; then the analysis runs with the true labels
and with ``--permutations`` label permutations (within donors where there are donors), in
three designs: the plain share ``(Δz w)ᵀΔx / ‖Δx‖²`` against random masks only, the
whitened share against random masks only, and the workflow's (whitened, and the larger of
the random-mask and the label-permutation p-values, from 200 more label permutations).
Prints, per design, the interferon (or planted) group's place, share, p-values and FDR with
the true labels, and how often any term or any group passes FDR 0.05 with permuted labels:
the rate a calibrated analysis keeps at or below 0.05. One torch thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "workflow" / "lib"), str(ROOT / "tests")]
from helpers.calibration_run import fits, prepared_from  # noqa: E402
from helpers.nested_sets import PLANTED, nested_simulation  # noqa: E402
from helpers.real_files import real_file  # noqa: E402
from iae_pipeline.analyses.calibration import calibrate, split_sentence  # noqa: E402
from iae_pipeline.prepare.preprocess import prepare  # noqa: E402
from iae_pipeline.samples import condition_levels  # noqa: E402
from iae_pipeline.score.response import (  # noqa: E402
    aligned_expression,
    factor_shares,
    measure_responses,
    noise_covariance,
    permuted_condition,
)
from interpretable_ae.conventions import MASK_KEY, TERMS_KEY  # noqa: E402
from interpretable_ae.genesets import read_gmt  # noqa: E402

DESIGNS = ("plain, masks only", "whitened, masks only", "whitened, masks and labels")
LABEL_NULL = 200


def kang() -> tuple[ad.AnnData, str, str | None]:
    cells = ad.read_h5ad(real_file("expression/kang2018_liger_600.h5ad"))
    sets = read_gmt(real_file("genesets/c2.cp.reactome.v4.0.symbols.gmt"))
    prepared = prepare(cells, sets, data_type="counts", n_top_genes=None, min_genes=5,
                       prune_genes=False, name="kang600")  # fmt: skip
    return prepared, "REACTOME_INTERFERON_SIGNALING", None


def nested(seed: int) -> tuple[ad.AnnData, str, str | None]:
    adata, sets = nested_simulation(seed, n_decoys=8)
    return prepared_from(adata, sets), PLANTED[0], "donor"


class Shares:
    """Every fit's response shares for the true labels, the label null's permutations and
    the control's permutations, in both metrics, computed once."""

    def __init__(self, prepared, real, null, sample_key, controls: int) -> None:
        cond = prepared.obs["condition"]
        samples = prepared.obs[sample_key] if sample_key else None
        self.labels = [cond] + [
            permuted_condition(cond, 0, samples, index=i) for i in range(1, LABEL_NULL + 1)
        ]
        self.labels += [permuted_condition(cond, 1, samples, index=i) for i in range(controls)]
        _, case = condition_levels(cond)
        groups = prepared.obs[sample_key].astype(str).to_numpy() if sample_key else None
        X = aligned_expression(prepared, list(real[0].uns["gene_names"]))
        labellings = [(c.astype(str) == case).to_numpy() for c in self.labels]
        cov = {"whitened": noise_covariance(X, groups), "plain": np.eye(X.shape[1])}
        self.shares = {}
        for metric, c in cov.items():
            resp = measure_responses(X, labellings, groups, c)
            self.shares[metric] = [
                [factor_shares(np.asarray(f.X), np.asarray(f.varm["gene_weights"]), resp)
                 for f in group]
                for group in (real, null)
            ]  # fmt: skip
        self.fits = (real, null)

    def tables(self, metric: str, row: int):
        out = []
        for column, factors, shares in zip(("replicate", "fit"), self.fits, self.shares[metric],
                                        strict=True):  # fmt: skip
            out.append(pd.concat([
                pd.DataFrame({column: i, "term": f.var_names.astype(str),
                              "kind": f.var["kind"].astype(str).to_numpy(),
                              "response_share": s[row]})
                for i, (f, s) in enumerate(zip(factors, shares, strict=True))
            ], ignore_index=True))  # fmt: skip
        label_null = [
            pd.DataFrame(s[1 : LABEL_NULL + 1], columns=f.var_names.astype(str))
            for f, s in zip(self.fits[0], self.shares[metric][0], strict=True)
        ]
        return out[0], out[1], label_null


def analyse(prepared, shares: Shares, design: str, row: int):
    metric = "plain" if design.startswith("plain") else "whitened"
    real, null, label_null = shares.tables(metric, row)
    terms = [str(t) for t in prepared.uns[TERMS_KEY]]
    return calibrate(real, null, prepared.varm[MASK_KEY], terms,
                     label_null=label_null if design.endswith("labels") else None)  # fmt: skip


def report(name, prepared, real, null, term, sample_key, permutations) -> list[dict]:
    shares = Shares(prepared, real, null, sample_key, permutations)
    rows = []
    for design in DESIGNS:
        result = analyse(prepared, shares, design, 0)
        group = result.terms.set_index("term").loc[term, "group"]
        g = result.groups.set_index("group").loc[group]
        hits = []
        for b in range(permutations):
            control = analyse(prepared, shares, design, 1 + LABEL_NULL + b)
            hits.append((control.terms["significant"].any(), control.groups["significant"].any()))
        row = {
            "data": name, "design": design, "rank": int(g["rank"]), "groups": len(result.groups),
            "share": round(float(g["score_mean"]), 3), "sd": round(float(g["score_sd"]), 3),
            "null_q95": round(float(g["null_q95"]), 3), "p_mask": float(g["pvalue_mask"]),
            "p_label": float(g["pvalue_label"]), "fdr": float(g["padj"]),
            "groups_passing": int(result.groups["significant"].sum()),
            "terms_passing": int(result.terms["significant"].sum()),
            "perm_any_term": float(np.mean([h[0] for h in hits])) if hits else np.nan,
            "perm_any_group": float(np.mean([h[1] for h in hits])) if hits else np.nan,
            "split": split_sentence(result.split, int(group)),
        }  # fmt: skip
        print(row, flush=True)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", choices=("kang", "nested"))
    p.add_argument("--replicates", type=int, default=None)
    p.add_argument("--random", type=int, default=None)
    p.add_argument("--permutations", type=int, default=None)
    p.add_argument("--seeds", type=int, default=10)
    args = p.parse_args(argv)
    rows = []
    if args.data == "kang":
        prepared, term, key = kang()
        t0 = time.perf_counter()
        real, null = fits(prepared, args.replicates or 5, args.random or 20)
        print(f"kang: {len(real) + len(null)} fits in {time.perf_counter() - t0:.0f} s")
        rows += report("kang600", prepared, real, null, term, key, args.permutations or 200)
    else:
        for seed in range(args.seeds):
            prepared, term, key = nested(seed)
            t0 = time.perf_counter()
            real, null = fits(prepared, args.replicates or 1, args.random or 20)
            print(f"seed {seed}: {len(real) + len(null)} fits in {time.perf_counter() - t0:.0f} s")
            rows += report(f"nested{seed}", prepared, real, null, term, key,
                           args.permutations if args.permutations is not None else 20)  # fmt: skip
    print(pd.DataFrame(rows).drop(columns=["split"]).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
