"""Benchmark: this package's autoencoder against PyPI intercode 0.0.7 in one run.

    python benchmarks/bench_intercode.py [--epochs 15] [--threads 1]

On simulated Kang-sized data (13,500 cells x 1,000 genes x 300 gene sets, 3 planted) three
runs train for ``--epochs``: intercode and ours with the paper's settings (lr 1e-3, batch 62,
lambda0 0.1, lambda1 0.93, lambda3 0.57 in intercode's ``Intercode.train`` convention, which
is ours), and ours with the faster optimisation ``FAST`` (same lambdas, model and objective:
batch 128, lr 8e-3 after a quarter-epoch warm-up, and exact solves of the linear head,
``decoder_solve="doubling"``). Both see centred data: intercode's centred here, as the
authors' notebooks do, ours centred by the model (its default).
Prints seconds per epoch and their ratio, wall time to reach intercode's final full-data
loss, planted-term recovery (univariate logistic accuracy) and achieved GFLOP/s against
torch's sgemm rate (median, measured before and after); writes the same to
``benchmarks/out/bench_intercode.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "lib"))
from flops import sgemm_rate, train_flops_per_cell  # noqa: E402

from interpretable_ae.genesets import build_mask  # noqa: E402
from interpretable_ae.model import InterpretableAutoencoder  # noqa: E402
from interpretable_ae.simulate import simulate_counts  # noqa: E402
from interpretable_ae.training import DECODER_SOLVES, PRECISIONS, evaluate  # noqa: E402

#: where both models train (``--device``; intercode's ``use_cuda`` follows it)
DEVICE = "cpu"

PAPER = {"lr": 1e-3, "batch_size": 62, "lambda0": 0.1, "lambda1": 0.93, "lambda3": 0.57}
# the recommended faster optimisation (same lambdas, model, objective and data): batch 128,
# lr 8e-3 after a warm-up of a quarter epoch, and exact solves of the linear head on 2048
# cells (after steps 1, 2, 4, 8, ... and every epoch)
FAST = {
    "batch_size": 128,
    "lr": 8e-3,
    "warmup_epochs": 0.25,
    "decoder_solve": "doubling",
    "precision": "float32",
}


OTHER = {"float32": ("bfloat16", "bf16"), "bfloat16": ("float32", "fp32")}


def bf16_hardware() -> str:
    """What this CPU offers bfloat16 products (Linux: /proc/cpuinfo flags)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    if "amx_bf16" in flags:
        return "AMX (amx_bf16)"
    if "avx512_bf16" in flags:
        return "AVX512-BF16, no AMX"
    return "none: no AMX or AVX512-BF16, bfloat16 products are emulated (slow) here"


def recovery(latents: np.ndarray, labels: np.ndarray, names: list[str], planted: list[str]):
    """Univariate logistic accuracy per factor; ranks (1 = best) of the planted terms."""
    acc = np.array(
        [
            LogisticRegression().fit(latents[:, [k]], labels).score(latents[:, [k]], labels)
            for k in range(latents.shape[1])
        ]
    )
    order = np.argsort(-acc, kind="stable")
    rank = {names[k]: r + 1 for r, k in enumerate(order)}
    return {t: {"rank": rank[t], "accuracy": float(acc[names.index(t)])} for t in planted}


class _Clock(io.TextIOBase):
    """Stdout sink that timestamps intercode's per-epoch loss lines."""

    pattern = re.compile(r"Epoch: (\d+) -- total train loss:\s+([\d.]+)=")

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.epochs: list[tuple[float, float]] = []  # (seconds since start, loss)
        self.line = ""

    def write(self, s: str) -> int:  # print() writes its pieces one by one
        self.line += s
        *done, self.line = self.line.split("\n")
        for line in done:
            if m := self.pattern.search(line):
                self.epochs.append((time.perf_counter() - self.t0, float(m.group(2))))
        return len(s)


def run_intercode(adata, mask, terms, epochs: int, seed: int) -> dict:
    import intercode

    data = adata.copy()
    data.X = data.X - data.X.mean(axis=0)  # the authors' notebooks centre before training
    data.varm["I"], data.uns["terms"] = mask.toarray().astype(np.float32), terms
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = intercode.Intercode(data, use_cuda=DEVICE.startswith("cuda"))
    clock = _Clock()
    with contextlib.redirect_stdout(clock):
        model.train(
            PAPER["lr"],
            PAPER["batch_size"],
            epochs,
            PAPER["lambda0"],
            PAPER["lambda1"],
            None,
            PAPER["lambda3"],
        )
    seconds = [clock.epochs[0][0]] + list(np.diff([t for t, _ in clock.epochs]))
    # the full-data evaluation intercode runs after every epoch, timed alone (as it does it:
    # eval mode, autograd on), to also report its training-only seconds per epoch
    x = torch.from_numpy(np.asarray(data.X, dtype=np.float32))
    x = x.to(next(model.model.parameters()).device)
    model.model.eval()
    t0 = time.perf_counter()
    encoded, decoded = model.model(x)
    loss = torch.nn.functional.mse_loss(decoded, x, reduction="sum") + encoded.pow(2).sum()
    float(loss.detach())  # a sync on CUDA too
    eval_seconds = time.perf_counter() - t0
    with torch.no_grad():
        latents = model.model.encoder(x).cpu().numpy()
    return {
        "epoch_seconds": seconds,
        "eval_seconds_per_epoch": eval_seconds,
        "seconds_total": clock.epochs[-1][0],
        "cumulative_seconds": [t for t, _ in clock.epochs],
        "loss": [loss for _, loss in clock.epochs],
        "latents": latents,
        "names": list(terms),
    }


def run_ours(adata, mask, terms, epochs: int, seed: int, **options) -> dict:
    """Our model trained by ``InterpretableAutoencoder.train`` with ``options`` (batch
    size, lr, schedule, decoder_solve; centring on, as by default); the full-data loss
    after each epoch (on the data centred with the model's means) is measured outside the
    timed part."""
    ae = InterpretableAutoencoder(adata.copy(), mask=mask, terms=terms, device=DEVICE, seed=seed)
    x = np.asarray(adata.X, dtype=np.float32)
    losses: list[float] = []

    def measure(_: int) -> None:
        centred = torch.from_numpy(x - ae.gene_means)
        losses.append(evaluate(ae.module, centred, PAPER["lambda0"])[0])

    ae.train(
        epochs=epochs,
        lambda0=PAPER["lambda0"],
        lambda1=PAPER["lambda1"],
        lambda3=PAPER["lambda3"],
        seed=seed,
        progress=False,
        on_epoch_end=measure,
        **options,
    )
    history = ae.history
    return {
        "epoch_seconds": list(history.seconds),
        "eval_seconds_per_epoch": 0.0,
        "seconds_total": float(np.sum(history.seconds)),
        "cumulative_seconds": list(np.cumsum(history.seconds)),
        "loss": losses,
        "latents": ae.get_latent_representation(),
        "names": ae.factor_names,
    }


def combine(name: str, results: list[dict]) -> dict:
    """Median timings over repeats of one seeded run; the repeats must give equal losses."""
    first = results[0]
    if any(r["loss"] != first["loss"] for r in results[1:]):
        raise RuntimeError(f"{name}: repeats of the same seeded run gave different losses")
    return first | {
        "seconds_per_epoch": float(np.median([r["epoch_seconds"] for r in results])),
        "eval_seconds_per_epoch": float(np.median([r["eval_seconds_per_epoch"] for r in results])),
        "cumulative_seconds": list(np.median([r["cumulative_seconds"] for r in results], axis=0)),
        "seconds_total": float(np.median([r["seconds_total"] for r in results])),
    }


def time_to(result: dict, target: float) -> float | None:
    for t, loss in zip(result["cumulative_seconds"], result["loss"], strict=True):
        if loss <= target:
            return float(t)
    return None


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=13500)
    p.add_argument("--genes", type=int, default=1000)
    p.add_argument("--sets", type=int, default=300)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu, or cuda: both models on the GPU")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2, help="runs of each model (medians)")
    p.add_argument(
        "--tolerance", type=float, default=0.0, help="'reached' = loss <= target * (1 + tol)"
    )
    p.add_argument("--fast-batch", type=int, default=FAST["batch_size"])
    p.add_argument("--fast-lr", type=float, default=FAST["lr"])
    p.add_argument("--fast-warmup", type=float, default=FAST["warmup_epochs"])
    p.add_argument("--fast-solve", default=FAST["decoder_solve"], choices=DECODER_SOLVES)
    p.add_argument("--fast-precision", default=FAST["precision"], choices=PRECISIONS)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    return p.parse_args()


def jobs_of(adata, mask, terms, args: argparse.Namespace, fast: dict) -> dict:
    """The runs compared: intercode, ours at the paper's settings, ours fast in both
    precisions (speed and recovery both ways)."""
    other = fast | {"precision": OTHER[fast["precision"]][0]}
    paper = {"batch_size": PAPER["batch_size"], "lr": PAPER["lr"]}
    return {
        "intercode": lambda: run_intercode(adata, mask, terms, args.epochs, args.seed),
        "ours": lambda: run_ours(adata, mask, terms, args.epochs, args.seed, **paper),
        "ours_fast": lambda: run_ours(adata, mask, terms, args.epochs, args.seed, **fast),
        f"ours_fast_{OTHER[fast['precision']][1]}": lambda: run_ours(
            adata, mask, terms, args.epochs, args.seed, **other
        ),
    }


def report_rows(runs: dict, target: float, flops_epoch: float, gemm: float, labels, planted):
    """Per run: speed, loss, time to intercode's final loss, GFLOP/s, planted recovery."""
    base = runs["intercode"]
    rows = {}
    for name, r in runs.items():
        reached = time_to(r, target)
        row = {
            "seconds_per_epoch": r["seconds_per_epoch"],
            "seconds_per_epoch_without_eval": r["seconds_per_epoch"] - r["eval_seconds_per_epoch"],
            "seconds_total": r["seconds_total"],
            "final_loss": r["loss"][-1],
            "seconds_to_intercode_final_loss": reached,
            "gflops": flops_epoch / r["seconds_per_epoch"] / 1e9,
            "recovery": recovery(r["latents"], labels, r["names"], planted),
            "loss": r["loss"],
        }
        row["fraction_of_sgemm"] = row["gflops"] / gemm
        row["throughput_ratio"] = base["seconds_per_epoch"] / row["seconds_per_epoch"]
        base_reached = time_to(base, target)
        row["time_to_loss_ratio"] = base_reached / reached if reached else float("nan")
        rows[name] = row
    return rows


def print_rows(rows: dict) -> None:
    print(
        f"{'model':<15}{'s/epoch':>9}{'(no eval)':>10}{'speed-up':>9}{'final loss':>11}"
        f"{'s to target':>12}{'speed-up':>9}{'GFLOP/s':>8}{'% sgemm':>8}  planted: rank (accuracy)"
    )
    for name, row in rows.items():
        reached = row["seconds_to_intercode_final_loss"]
        ranks = ", ".join(f"{v['rank']} ({v['accuracy']:.3f})" for v in row["recovery"].values())
        print(
            f"{name:<15}{row['seconds_per_epoch']:>9.2f}{row['seconds_per_epoch_without_eval']:>10.2f}"
            f"{row['throughput_ratio']:>9.2f}{row['final_loss']:>11.3f}"
            f"{reached if reached is not None else float('nan'):>12.1f}"
            f"{row['time_to_loss_ratio']:>9.2f}{row['gflops']:>8.1f}"
            f"{100 * row['fraction_of_sgemm']:>8.1f}  {ranks}"
        )


def main() -> None:
    global DEVICE
    args = parse_args()
    DEVICE = args.device
    torch.set_num_threads(args.threads)
    adata, gene_sets = simulate_counts(args.cells, args.genes, args.sets, seed=args.seed)
    mask, terms = build_mask(adata.var_names, gene_sets)
    planted = adata.uns["simulation"]["terms"]
    labels = (adata.obs["condition"] == "stimulated").to_numpy()
    load_before, gemm_before = os.getloadavg()[0], sgemm_rate()
    flops_epoch = train_flops_per_cell(args.genes, [400, 400], len(terms)) * args.cells
    fast = {
        "batch_size": args.fast_batch,
        "lr": args.fast_lr,
        "warmup_epochs": args.fast_warmup,
        "decoder_solve": args.fast_solve,
        "precision": args.fast_precision,
    }
    jobs = jobs_of(adata, mask, terms, args, fast)
    results: dict[str, list[dict]] = {name: [] for name in jobs}
    for _ in range(args.repeats):  # round robin: changes in machine load hit every model
        for name, job in jobs.items():
            results[name].append(job())
    runs = {name: combine(name, rs) for name, rs in results.items()}
    load_after, gemm_after = os.getloadavg()[0], sgemm_rate()
    gemm = (gemm_before + gemm_after) / 2
    print(
        f"data: {args.cells} cells x {args.genes} genes x {len(terms)} gene sets; "
        f"{args.epochs} epochs x {args.repeats} repeats (medians); {args.threads} torch "
        f"thread(s); sgemm {gemm_before:.1f} / "
        f"{gemm_after:.1f} GFLOP/s before / after; 1-min load {load_before:.2f} / "
        f"{load_after:.2f}; ours_fast = {fast}; bfloat16 hardware: {bf16_hardware()}"
    )
    target = runs["intercode"]["loss"][-1] * (1 + args.tolerance)
    report: dict = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "sgemm_gflops": [gemm_before, gemm_after],
        "load_average_1min": [load_before, load_after],
        "target_loss": target,
        "bf16_hardware": bf16_hardware(),
        "runs": report_rows(runs, target, flops_epoch, gemm, labels, planted),
    }
    print_rows(report["runs"])
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "bench_intercode.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
