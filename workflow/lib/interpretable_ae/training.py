"""Stochastic proximal gradient training of :class:`~.module.LinearDecoderAE`.

Fast by construction: the whole data set sits on the model's device once, batches are
index-shuffled rows of it gathered into one preallocated buffer (no DataLoader, no
per-batch numpy), the prox step is one reusable in-place operator with thresholds
precomputed (:class:`.prox.DecoderProx`), and the full data are only
evaluated when a validation split is requested (and once at the end).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from tqdm.auto import tqdm

from .head_solve import adam_penalty_weights, solve_head_
from .module import LinearDecoderAE, objective
from .prox import DecoderProx

log = logging.getLogger(__name__)


LR_DECAYS = ("none", "cosine")
DECODER_SOLVES = ("none", "epoch", "doubling")
SOLVE_CELLS = 2048  # a head solve uses at most this many training cells


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    Penalty steps are ``lr * lambda`` (see :mod:`.prox`): lambda1..3 are in the
    convention of ``intercode.Intercode.train`` and the paper's notebooks.
    ``warmup_epochs`` and ``lr_decay`` schedule the learning rate (and with it the prox
    steps, see :func:`learning_rate`); the defaults keep it constant, as the paper.
    ``decoder_solve="epoch"`` ends every epoch with an exact solve of the linear head
    (the encoder's last layer and the decoder, alternately, for fixed hidden features;
    :func:`.head_solve.solve_head_`): the same model and objective, fewer epochs to
    a given loss; ``"doubling"`` also solves after steps 1, 2, 4, 8, ... (:func:`solve_steps`;
    most of them in the first epoch, while the features change fastest): fewer epochs
    still. Each solve uses the first ``SOLVE_CELLS`` (2048) training cells of the epoch's
    shuffled order (all of them if fewer), so it costs about as much as 2048 / batch_size
    training steps whatever the data size. Off by default (the paper's algorithm).
    """

    epochs: int = 50
    batch_size: int = 62
    lr: float = 1e-3
    lambda0: float = 0.1
    lambda1: float = 0.93
    lambda2: float = 0.0
    lambda3: float = 0.57
    val_fraction: float = 0.0
    patience: int = 5
    seed: int = 0
    warmup_epochs: float = 0.0
    lr_decay: str = "none"
    decoder_solve: str = "none"

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 2,
            "lr": self.lr > 0,
            "val_fraction": 0 <= self.val_fraction < 1,
            "patience": self.patience >= 1,
            "warmup_epochs": 0 <= self.warmup_epochs <= self.epochs,
            "lr_decay": self.lr_decay in LR_DECAYS,
            "decoder_solve": self.decoder_solve in DECODER_SOLVES,
        }
        checks |= {f"lambda{i}": getattr(self, f"lambda{i}") >= 0 for i in range(4)}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise ValueError(
                f"invalid training option(s) {values}: need epochs >= 1, batch_size >= 2, "
                "lr > 0, lambdas >= 0, 0 <= val_fraction < 1, patience >= 1, "
                f"0 <= warmup_epochs <= epochs, lr_decay in {LR_DECAYS}, "
                f"decoder_solve in {DECODER_SOLVES}"
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The names of the training options, in declaration order."""
        return tuple(f.name for f in fields(cls))


@dataclass
class TrainHistory:
    """Per-epoch record: training loss (batch mean, dropout on), validation loss
    (eval mode; empty without validation), seconds and number of active factors."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    n_active: list[int] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def learning_rate(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based): linear warm-up from
    ``lr / warm-up steps`` to ``lr`` over ``warmup_epochs``, then constant
    (``lr_decay="none"``) or a cosine decay towards 0 at the last step of ``epochs``."""
    warm = config.warmup_epochs * steps_per_epoch
    if step < warm:
        return config.lr * (step + 1) / warm
    if config.lr_decay == "cosine":
        progress = (step - warm) / (config.epochs * steps_per_epoch - warm)
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.lr


def solve_steps(config: TrainConfig, steps_per_epoch: int) -> set[int]:
    """Step counts after which training solves the head: the end of every epoch for
    ``decoder_solve`` "epoch" and "doubling", plus for "doubling" every power of two."""
    if config.decoder_solve == "none":
        return set()
    total = config.epochs * steps_per_epoch
    steps = {steps_per_epoch * (e + 1) for e in range(config.epochs)}
    if config.decoder_solve == "doubling":
        steps |= {2**j for j in range(total.bit_length())}
    return steps


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Slices of ``range(n)`` of ``batch_size``; a 1-cell tail (BatchNorm cannot use it)
    is merged into the batch before it."""
    bounds = [(a, min(a + batch_size, n)) for a in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2] = (bounds[-2][0], n)
        bounds.pop()
    return bounds


def split_cells(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (train, validation) cell indices; validation is empty for fraction 0."""
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and not 2 <= n_val <= n - 2:
        raise ValueError(
            f"val_fraction={val_fraction} of {n} cells leaves {n_val} validation cells; "
            "use a fraction that keeps at least 2 cells on each side, or 0"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


@torch.no_grad()
def evaluate(
    model: LinearDecoderAE,
    x: torch.Tensor,
    lambda0: float,
    covariates: torch.Tensor | None = None,
    chunk: int = 4096,
) -> tuple[float, float]:
    """Eval-mode ``(loss, reconstruction)`` of :func:`.module.objective` on all of ``x``."""
    was_training = model.training
    model.eval()
    loss = rec = 0.0
    for a in range(0, x.shape[0], chunk):
        xb = x[a : a + chunk]
        cb = None if covariates is None else covariates[a : a + chunk]
        z, out = model(xb, cb)
        lo, re = objective(xb, z, out, lambda0)
        loss += float(lo) * xb.shape[0]
        rec += float(re) * xb.shape[0]
    model.train(was_training)
    return loss / x.shape[0], rec / x.shape[0]


def n_active_factors(weight: torch.Tensor) -> int:
    """Factors whose decoder column is not exactly zero."""
    return int((weight != 0).any(dim=0).sum())


def train_model(
    model: LinearDecoderAE,
    x: torch.Tensor,
    l1_weights: torch.Tensor,
    config: TrainConfig,
    covariates: torch.Tensor | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
) -> TrainHistory:
    """Train ``model`` in place on ``x`` (cells x genes, already on the model's device).

    ``l1_weights`` are the elementwise L1 weights of :func:`.prox.l1_weights`. Adam on
    the smooth loss, then after every step the prox of ``lr * R``. Dropout and batch
    order come from ``config.seed`` only (the global RNG state is restored afterwards).
    With ``config.val_fraction`` > 0, training stops after ``patience`` epochs without
    a better validation loss and the best weights are restored. ``on_epoch_end(epoch)``
    runs after each epoch, outside the timed part (e.g. to monitor a loss).
    """
    device = x.device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(config.seed)
        return _train(model, x, l1_weights, config, covariates, progress, on_epoch_end)


def _train(
    model: LinearDecoderAE,
    x: torch.Tensor,
    l1_weights: torch.Tensor,
    config: TrainConfig,
    covariates: torch.Tensor | None,
    progress: bool,
    on_epoch_end: Callable[[int], None] | None,
) -> TrainHistory:
    device = x.device
    train_idx, val_idx = split_cells(x.shape[0], config.val_fraction, config.seed)
    if train_idx.numel() < 2:
        raise ValueError(f"training needs at least 2 cells, got {train_idx.numel()}")
    train_idx, val_idx = train_idx.to(device), val_idx.to(device)
    x_val = x.index_select(0, val_idx) if val_idx.numel() else None
    c_val = None if covariates is None or x_val is None else covariates.index_select(0, val_idx)
    bounds = batch_bounds(train_idx.numel(), config.batch_size)
    gen = torch.Generator().manual_seed(config.seed)

    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, **fused)
    w = model.decoder_weight
    prox = DecoderProx(l1_weights.to(device=device, dtype=w.dtype), config.lambda3, config.lr)
    # one preallocated batch buffer: index_select writes into it, nothing is allocated per step
    width = max(b - a for a, b in bounds)
    x_buf = x.new_empty((width, x.shape[1]))
    c_buf = None if covariates is None else covariates.new_empty((width, covariates.shape[1]))

    hist = TrainHistory()
    best_loss, best_state, stale = math.inf, None, 0
    every = max(1, config.epochs // 10)
    bar = tqdm(
        range(config.epochs),
        desc="training",
        unit="epoch",
        disable=not progress,
        file=sys.stderr,
        mininterval=5.0,
    )
    solve_at = solve_steps(config, len(bounds))
    model.train()
    step = 0
    for epoch in bar:
        t0 = time.perf_counter()
        perm = train_idx[torch.randperm(train_idx.numel(), generator=gen).to(device)]
        total = torch.zeros((), device=device)
        for a, b in bounds:
            lr = learning_rate(config, step, len(bounds))
            if lr != prox.lr:
                opt.param_groups[0]["lr"] = lr
                prox.set_lr(lr)
            idx = perm[a:b]
            xb = torch.index_select(x, 0, idx, out=x_buf[: b - a])
            cb = (
                None
                if c_buf is None
                else torch.index_select(covariates, 0, idx, out=c_buf[: b - a])
            )
            z, out = model(xb, cb)
            loss, _ = objective(xb, z, out, config.lambda0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            prox(w.data)
            total.add_(loss.detach(), alpha=b - a)
            step += 1
            if step in solve_at:  # on the epoch's first cells: seeded, no extra draws
                _solve_head(model, opt, x, perm[:SOLVE_CELLS], covariates, l1_weights, config)
        hist.train_loss.append(float(total) / train_idx.numel())
        with torch.no_grad():
            hist.n_active.append(n_active_factors(w))
        if x_val is not None:
            val, _ = evaluate(model, x_val, config.lambda0, c_val)
            hist.val_loss.append(val)
            if val < best_loss:
                best_loss, stale, hist.best_epoch = val, 0, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
        else:
            hist.best_epoch = epoch
        hist.seconds.append(time.perf_counter() - t0)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
        bar.set_postfix(loss=f"{hist.train_loss[-1]:.4g}", active=hist.n_active[-1], refresh=False)
        if epoch % every == 0 or epoch == config.epochs - 1:
            val_txt = f", validation loss {hist.val_loss[-1]:.5g}" if hist.val_loss else ""
            log.info(
                "epoch %d/%d: train loss %.5g%s, %d active factors, %.2f s",
                epoch + 1,
                config.epochs,
                hist.train_loss[-1],
                val_txt,
                hist.n_active[-1],
                hist.seconds[-1],
            )
        if x_val is not None and stale >= config.patience:
            hist.stopped_early = True
            log.info("early stop after epoch %d (best %d)", epoch + 1, hist.best_epoch + 1)
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return hist


def _solve_head(
    model: LinearDecoderAE,
    opt: torch.optim.Adam,
    x: torch.Tensor,
    cells: torch.Tensor,
    covariates: torch.Tensor | None,
    l1_weights: torch.Tensor,
    config: TrainConfig,
) -> None:
    """The head solve of ``decoder_solve`` on the training ``cells``, with the penalty
    weights of the objective Adam + prox minimise (:func:`.head_solve.adam_penalty_weights`).
    Adam's state is kept: its second moments set those weights, and its first moments
    decay within a few dozen steps."""
    w = model.decoder_weight
    state = opt.state[w]
    beta2 = opt.param_groups[0]["betas"][1]
    eps = opt.param_groups[0]["eps"]
    l1, group = adam_penalty_weights(
        w.data,
        l1_weights.to(w),
        config.lambda3,
        state["exp_avg_sq"],
        int(state["step"]),
        beta2,
        eps,
    )
    cs = None if covariates is None else covariates.index_select(0, cells)
    solve_head_(model, x.index_select(0, cells), l1, group, config.lambda0, cs)
