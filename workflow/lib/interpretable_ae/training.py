"""Stochastic proximal gradient training of :class:`~.module.LinearDecoderAE`.

Batches are seeded random rows of the data, densified one at a time into a reusable
buffer by :class:`.data.CellData` (dense, sparse or on-disk data alike; nothing holds the
whole data densely), the prox step is one reusable in-place operator with thresholds
precomputed (:class:`.prox.DecoderProx`), and the full data are only evaluated (streamed)
when a validation split is requested. :mod:`.checkpoint` makes long runs resumable.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .checkpoint import Checkpointer, fingerprint, optimizer_tensors, restore_optimizer
from .data import EVAL_ROWS, CellData
from .head_solve import adam_penalty_weights, solve_head_
from .module import LinearDecoderAE, objective
from .prox import DecoderProx

log = logging.getLogger(__name__)


LR_DECAYS = ("none", "cosine")
DECODER_SOLVES = ("none", "epoch", "doubling")
PRECISIONS = ("float32", "bfloat16")
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
    ``precision="bfloat16"`` runs the network's matrix products in bfloat16 (autocast;
    the weights, Adam, the prox, the loss and every evaluation stay float32).

    Parameters
    ----------
    epochs
        Passes over the training cells.
    batch_size
        Cells per optimiser step (the paper's 62).
    lr
        Adam's learning rate; also the step of the penalties' proximal operators.
    lambda0
        Weight of the latent penalty, the mean of ``||f(y)||²``.
    lambda1
        L1 on the decoder weights of annotated factors outside their gene set.
    lambda2
        L1 on the decoder weights of sparse factors.
    lambda3
        Group lasso on each factor's decoder column (switches factors off).
    val_fraction
        Fraction of the cells held out for validation and early stopping (0: none).
    patience
        Epochs without a better validation loss before training stops early.
    seed
        Seeds the batch order, dropout and the validation split.
    warmup_epochs
        Epochs of linear learning-rate warm-up (0: none).
    lr_decay
        ``"none"`` (constant, the paper's) or ``"cosine"`` after the warm-up.
    decoder_solve
        ``"none"`` (the paper's algorithm), ``"epoch"`` or ``"doubling"``: exact solves of
        the linear head, as above.
    precision
        ``"float32"`` or ``"bfloat16"`` for the network's matrix products.

    Raises
    ------
    ValueError
        An option out of its range, all of them named in one message.

    Examples
    --------
    >>> TrainConfig(epochs=80, lr=1e-3).lambda1
    0.93
    >>> TrainConfig(epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: invalid training option(s) epochs=0: need epochs >= 1, ...
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
    precision: str = "float32"

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
            "precision": self.precision in PRECISIONS,
        }
        checks |= {f"lambda{i}": getattr(self, f"lambda{i}") >= 0 for i in range(4)}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise ValueError(
                f"invalid training option(s) {values}: need epochs >= 1, batch_size >= 2, "
                "lr > 0, lambdas >= 0, 0 <= val_fraction < 1, patience >= 1, "
                f"0 <= warmup_epochs <= epochs, lr_decay in {LR_DECAYS}, "
                f"decoder_solve in {DECODER_SOLVES}, precision in {PRECISIONS}"
            )

    def as_dict(self) -> dict[str, Any]:
        """The options as a plain dictionary (for JSON and the factor file)."""
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
        """The record as a plain dictionary (for JSON)."""
        return asdict(self)


def learning_rate(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate of one optimiser step.

    Linear warm-up from ``lr / warm-up steps`` to ``lr`` over ``warmup_epochs``, then
    constant (``lr_decay="none"``) or a cosine decay towards 0 at the last step of
    ``epochs``.

    Parameters
    ----------
    config
        The training options.
    step
        The step, from 0.
    steps_per_epoch
        Steps in one epoch.

    Returns
    -------
    float

    Examples
    --------
    >>> config = TrainConfig(epochs=2, lr=1e-3, warmup_epochs=1)
    >>> [round(learning_rate(config, s, 4), 6) for s in range(6)]
    [0.00025, 0.0005, 0.00075, 0.001, 0.001, 0.001]
    """
    warm = config.warmup_epochs * steps_per_epoch
    if step < warm:
        return config.lr * (step + 1) / warm
    if config.lr_decay == "cosine":
        progress = (step - warm) / (config.epochs * steps_per_epoch - warm)
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.lr


def solve_steps(config: TrainConfig, steps_per_epoch: int) -> set[int]:
    """The step counts after which training solves the linear head exactly.

    Parameters
    ----------
    config
        The training options (``decoder_solve``).
    steps_per_epoch
        Steps in one epoch.

    Returns
    -------
    set of int
        The end of every epoch for ``"epoch"`` and ``"doubling"``, plus every power of two
        for ``"doubling"``; empty for ``"none"``.

    Examples
    --------
    >>> sorted(solve_steps(TrainConfig(epochs=2, decoder_solve="doubling"), 5))
    [1, 2, 4, 5, 8, 10]
    """
    if config.decoder_solve == "none":
        return set()
    total = config.epochs * steps_per_epoch
    steps = {steps_per_epoch * (e + 1) for e in range(config.epochs)}
    if config.decoder_solve == "doubling":
        steps |= {2**j for j in range(total.bit_length())}
    return steps


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """The batches of one pass: slices of ``range(n)`` of ``batch_size``.

    A one-cell tail (BatchNorm cannot use it) is merged into the batch before it.

    Parameters
    ----------
    n
        Cells.
    batch_size
        Cells per batch.

    Returns
    -------
    list of tuple of (int, int)

    Examples
    --------
    >>> batch_bounds(7, 3)
    [(0, 3), (3, 7)]
    """
    bounds = [(a, min(a + batch_size, n)) for a in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2] = (bounds[-2][0], n)
        bounds.pop()
    return bounds


def split_cells(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded training and validation cell indices.

    Parameters
    ----------
    n
        Cells.
    val_fraction
        Fraction held out; 0: no validation cells.
    seed
        Seeds the split.

    Returns
    -------
    train, validation : torch.Tensor
        Indices (validation empty for a fraction of 0).
    """
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and not 2 <= n_val <= n - 2:
        raise ValueError(
            f"val_fraction={val_fraction} of {n} cells leaves {n_val} validation cells; "
            "use a fraction that keeps at least 2 cells on each side, or 0"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def as_cell_data(x: CellData | torch.Tensor | np.ndarray) -> CellData:
    """Data as :class:`.data.CellData`: a tensor or array is taken as cells x genes.

    Parameters
    ----------
    x
        The data.

    Returns
    -------
    CellData
    """
    if isinstance(x, CellData):
        return x
    mat = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return CellData(mat, np.arange(mat.shape[1]))


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a module's parameters are on.

    Parameters
    ----------
    model
        A torch module.

    Returns
    -------
    torch.device
    """
    return next(model.parameters()).device


@torch.no_grad()
def evaluate(
    model: LinearDecoderAE,
    data: CellData | torch.Tensor,
    lambda0: float,
    covariates: torch.Tensor | None = None,
    rows: torch.Tensor | np.ndarray | None = None,
    chunk: int = EVAL_ROWS,
) -> tuple[float, float]:
    """The eval-mode loss of :func:`.module.objective` over the cells, streamed in chunks.

    Parameters
    ----------
    model
        The network.
    data
        The cells (:class:`.data.CellData` or a cells x genes tensor).
    lambda0
        Weight of the latent penalty.
    covariates
        The covariate design, cells x columns.
    rows
        Only these cells (default all).
    chunk
        Cells per chunk.

    Returns
    -------
    loss, reconstruction : float
        Mean over cells of the whole loss and of its reconstruction term.
    """
    data = as_cell_data(data)
    device = model_device(model)
    rows = np.arange(data.n_obs) if rows is None else np.asarray(rows)
    was_training = model.training
    model.eval()
    loss = rec = 0.0
    for a, b, xb in data.chunks(rows, chunk, device):
        cb = None if covariates is None else covariates[torch.from_numpy(rows[a:b]).to(device)]
        z, out = model(xb, cb)
        lo, re = objective(xb, z, out, lambda0)
        loss += float(lo) * (b - a)
        rec += float(re) * (b - a)
    model.train(was_training)
    return loss / len(rows), rec / len(rows)


def n_active_factors(weight: torch.Tensor) -> int:
    """The factors whose decoder column is not exactly zero.

    Parameters
    ----------
    weight
        The decoder, genes x factors.

    Returns
    -------
    int
    """
    return int((weight != 0).any(dim=0).sum())


def train_model(
    model: LinearDecoderAE,
    data: CellData | torch.Tensor,
    l1_weights: torch.Tensor,
    config: TrainConfig,
    covariates: torch.Tensor | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[int], None] | None = None,
    checkpoint: Checkpointer | None = None,
    identity: dict[str, Any] | None = None,
) -> TrainHistory:
    """Train a network in place: Adam on the smooth loss, then after every step the prox of
    ``lr * R`` (:mod:`.prox`).

    Dropout and batch order come from ``config.seed`` only (the global random state is
    restored afterwards). With ``config.val_fraction`` > 0, training stops after
    ``patience`` epochs without a better validation loss and the best weights are restored.

    Parameters
    ----------
    model
        The network, trained in place.
    data
        :class:`.data.CellData`, streamed batch by batch onto the model's device (a cells x
        genes tensor is accepted too).
    l1_weights
        The elementwise L1 weights of :func:`.prox.l1_weights`.
    config
        The training options.
    covariates
        The covariate design, cells x columns.
    progress
        Show a progress bar.
    on_epoch_end
        Called as ``on_epoch_end(epoch)`` after each epoch, outside the timed part.
    checkpoint
        Writes the training state every few epochs and resumes from the newest one of the
        same run (``config``, the initial weights and ``identity``): the result is
        bit-identical to an uninterrupted run.
    identity
        What else a checkpoint must match (e.g. the data's statistics).

    Returns
    -------
    TrainHistory
        The loss, validation loss, seconds and active factors of every epoch.
    """
    data = as_cell_data(data)
    device = model_device(model)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(config.seed)
        run = ""
        if checkpoint is not None:
            initial = {f"model.{k}": v for k, v in model.state_dict().items()}
            run = fingerprint({"config": config.as_dict(), **(identity or {})}, initial)
        return _train(
            model, data, l1_weights, config, covariates, progress, on_epoch_end, checkpoint, run
        )


@dataclass
class _State:
    """What changes from epoch to epoch besides the model and the optimiser."""

    epoch: int = 0  # epochs done
    step: int = 0
    best_loss: float = math.inf
    stale: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    history: TrainHistory = field(default_factory=TrainHistory)


def _save(
    checkpoint: Checkpointer,
    run: str,
    model: LinearDecoderAE,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    st: _State,
) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_tensors, opt_meta = optimizer_tensors(opt)
    tensors |= opt_tensors
    tensors["rng.batches"] = gen.get_state()
    tensors["rng.cpu"] = torch.get_rng_state()
    device = model_device(model)
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    if st.best_state is not None:
        tensors |= {f"best.{k}": v for k, v in st.best_state.items()}
    meta = {
        "step": st.step,
        "best_loss": st.best_loss if math.isfinite(st.best_loss) else None,
        "stale": st.stale,
        "history": st.history.as_dict(),
        "optimizer": opt_meta,
    }
    checkpoint.save(run, st.epoch, meta, tensors)


def _restore(
    loaded: tuple[dict[str, Any], dict[str, torch.Tensor]],
    model: LinearDecoderAE,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
) -> _State:
    meta, tensors = loaded
    device = model_device(model)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    restore_optimizer(opt, tensors, meta["optimizer"])
    gen.set_state(tensors["rng.batches"])
    torch.set_rng_state(tensors["rng.cpu"])
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
    best_loss = meta["best_loss"]
    return _State(
        epoch=int(meta["epoch"]),
        step=int(meta["step"]),
        best_loss=math.inf if best_loss is None else float(best_loss),
        stale=int(meta["stale"]),
        best_state=best or None,
        history=TrainHistory(**meta["history"]),
    )


def _train(
    model: LinearDecoderAE,
    data: CellData,
    l1_weights: torch.Tensor,
    config: TrainConfig,
    covariates: torch.Tensor | None,
    progress: bool,
    on_epoch_end: Callable[[int], None] | None,
    checkpoint: Checkpointer | None,
    run: str,
) -> TrainHistory:
    device = model_device(model)
    train_idx, val_idx = split_cells(data.n_obs, config.val_fraction, config.seed)
    if train_idx.numel() < 2:
        raise ValueError(f"training needs at least 2 cells, got {train_idx.numel()}")
    bounds = batch_bounds(train_idx.numel(), config.batch_size)
    gen = torch.Generator().manual_seed(config.seed)

    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, **fused)
    w = model.decoder_weight
    prox = DecoderProx(l1_weights.to(device=device, dtype=w.dtype), config.lambda3, config.lr)
    st = _State()
    if checkpoint is not None and (loaded := checkpoint.load(run)) is not None:
        st = _restore(loaded, model, opt, gen)
    hist = st.history
    every = max(1, config.epochs // 10)
    bar = tqdm(
        range(st.epoch, config.epochs),
        desc="training",
        unit="epoch",
        disable=not progress,
        file=sys.stderr,
        mininterval=5.0,
        initial=st.epoch,
        total=config.epochs,
    )
    step = _Stepper(model, opt, prox, data, covariates, l1_weights, config, bounds)
    model.train()
    for epoch in bar:
        t0 = time.perf_counter()
        perm = train_idx[torch.randperm(train_idx.numel(), generator=gen)]
        hist.train_loss.append(step.epoch(perm, st) / train_idx.numel())
        _validate(model, data, covariates, val_idx, config, st, epoch)
        hist.seconds.append(time.perf_counter() - t0)
        st.epoch = epoch + 1
        if on_epoch_end is not None:
            on_epoch_end(epoch)
        bar.set_postfix(loss=f"{hist.train_loss[-1]:.4g}", active=hist.n_active[-1], refresh=False)
        if epoch % every == 0 or epoch == config.epochs - 1:
            _log_epoch(hist, epoch, config.epochs)
        stop = val_idx.numel() > 0 and st.stale >= config.patience
        if checkpoint is not None and st.epoch < config.epochs and not stop:
            if checkpoint.due(st.epoch):
                _save(checkpoint, run, model, opt, gen, st)
        if stop:
            hist.stopped_early = True
            log.info("early stop after epoch %d (best %d)", epoch + 1, hist.best_epoch + 1)
            break
    bar.close()
    if st.best_state is not None:
        model.load_state_dict(st.best_state)
    model.eval()
    return hist


class _Stepper:
    """One epoch of stochastic proximal gradient: an Adam step on each batch, then the
    decoder's proximal operator; the head solves at the scheduled steps."""

    def __init__(
        self, model: LinearDecoderAE, opt: torch.optim.Adam, prox: DecoderProx,
        data: CellData, covariates: torch.Tensor | None, l1_weights: torch.Tensor,
        config: TrainConfig, bounds: list[tuple[int, int]],
    ) -> None:  # fmt: skip
        self.model, self.opt, self.prox, self.data = model, opt, prox, data
        self.covariates, self.l1_weights, self.config, self.bounds = (
            covariates, l1_weights, config, bounds,
        )  # fmt: skip
        self.device = model_device(model)
        self.solve_at = solve_steps(config, len(bounds))
        low = config.precision == "bfloat16"
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=low)

    def epoch(self, perm: torch.Tensor, st: _State) -> float:
        """Run the batches of ``perm`` (the epoch's cell order); the summed loss."""
        model, opt, prox, config = self.model, self.opt, self.prox, self.config
        w = model.decoder_weight
        total = torch.zeros((), device=self.device)
        solve_cells = None  # the epoch's first cells, densified at the first solve
        batches = self.data.stream(perm, self.bounds, self.device)
        for (a, b), xb in zip(self.bounds, batches, strict=True):
            lr = learning_rate(config, st.step, len(self.bounds))
            if lr != prox.lr:
                opt.param_groups[0]["lr"] = lr
                prox.set_lr(lr)
            cb = None if self.covariates is None else self.covariates[perm[a:b].to(self.device)]
            with self.autocast:
                z, out = model(xb, cb)
            loss, _ = objective(xb, z.float(), out.float(), config.lambda0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            prox(w.data)
            total.add_(loss.detach(), alpha=b - a)
            st.step += 1
            if st.step in self.solve_at:  # on the epoch's first cells: seeded, no extra draws
                if solve_cells is None:
                    solve_cells = self._solve_cells(perm)
                _solve_head(model, opt, *solve_cells, self.l1_weights, config)
        return float(total)

    def _solve_cells(self, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        cells = perm[:SOLVE_CELLS]
        covariates = None if self.covariates is None else self.covariates[cells.to(self.device)]
        return self.data.rows(cells, self.device), covariates


def _validate(
    model: LinearDecoderAE, data: CellData, covariates: torch.Tensor | None,
    val_idx: torch.Tensor, config: TrainConfig, st: _State, epoch: int,
) -> None:  # fmt: skip
    """After an epoch: the active factors, the validation loss, and the best weights so
    far (restored when training ends)."""
    hist = st.history
    with torch.no_grad():
        hist.n_active.append(n_active_factors(model.decoder_weight))
    if not val_idx.numel():
        hist.best_epoch = epoch
        return
    val, _ = evaluate(model, data, config.lambda0, covariates, val_idx.numpy())
    hist.val_loss.append(val)
    if val < st.best_loss:
        st.best_loss, st.stale, hist.best_epoch = val, 0, epoch
        st.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    else:
        st.stale += 1


def _log_epoch(hist: TrainHistory, epoch: int, epochs: int) -> None:
    val_txt = f", validation loss {hist.val_loss[-1]:.5g}" if hist.val_loss else ""
    log.info(
        "epoch %d/%d: train loss %.5g%s, %d active factors, %.2f s",
        epoch + 1, epochs, hist.train_loss[-1], val_txt, hist.n_active[-1], hist.seconds[-1],
    )  # fmt: skip


def _solve_head(
    model: LinearDecoderAE,
    opt: torch.optim.Adam,
    x: torch.Tensor,
    covariates: torch.Tensor | None,
    l1_weights: torch.Tensor,
    config: TrainConfig,
) -> None:
    """The head solve of ``decoder_solve`` on the training cells ``x`` (dense, centred),
    with the penalty weights of the objective Adam + prox minimise
    (:func:`.head_solve.adam_penalty_weights`). Adam's state is kept: its second moments
    set those weights, and its first moments decay within a few dozen steps."""
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
    solve_head_(model, x, l1, group, config.lambda0, covariates)
