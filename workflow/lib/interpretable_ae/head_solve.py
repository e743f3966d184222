"""Exact solves of the linear head: the decoder for fixed latents (accelerated proximal
gradient, :func:`solve_decoder_`) and, alternately, the encoder's last layer
(:func:`solve_head_`), used by training with ``decoder_solve`` "epoch" and "doubling".

For fixed latents ``Z`` (cells x factors) and covariates ``C`` the decoder sub-problem of
the training objective is convex::

    min_{W, Φ}  (1/n) ||Y - Z Wᵀ - C Φᵀ||²  +  sum_gk l1[g, k] |W[g, k]|
                                          +  sum_k group[k] ||W[:, k]||_2

(``Φ`` not penalised). With ``l1 = l1_weights`` and ``group = lambda3`` this is the
objective of plain stochastic proximal gradient (:mod:`.prox`); for the weights that match
Adam see :func:`adam_penalty_weights`.
Everything the solver needs is in the Gram matrix ``AᵀA / n`` and ``AᵀY / n`` of
``A = [Z | C]`` (one pass over the data), after which each FISTA iteration costs
``genes x (factors + covariates)²``: milliseconds for a Kang-sized model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .module import LinearDecoderAE
from .prox import DecoderProx


@dataclass
class DecoderStats:
    """Sufficient statistics of the decoder sub-problem: ``gram = AᵀA / n``,
    ``cross = YᵀA / n`` (genes x features) and ``sq = ||Y||² / n``."""

    gram: torch.Tensor
    cross: torch.Tensor
    sq: float

    def smooth(self, b: torch.Tensor) -> float:
        """The smooth part of the decoder sub-problem, ``(1/n) ||Y - A Bᵀ||²``.

        Parameters
        ----------
        b
            The stacked decoder ``B = [W | Φ]``, genes x features.

        Returns
        -------
        float
        """
        return float(self.sq - 2 * (b * self.cross).sum() + ((b @ self.gram) * b).sum())


@torch.no_grad()
def decoder_stats(
    latents: torch.Tensor, y: torch.Tensor, covariates: torch.Tensor | None = None
) -> DecoderStats:
    """The :class:`DecoderStats` of latents, data and covariates (the features are ``[Z | C]``).

    Parameters
    ----------
    latents
        ``Z``, cells x factors.
    y
        ``Y``, cells x genes.
    covariates
        ``C``, cells x columns, or ``None``.

    Returns
    -------
    DecoderStats
    """
    a = latents if covariates is None else torch.cat([latents, covariates], dim=1)
    n = y.shape[0]
    return DecoderStats(
        gram=(a.T @ a).div_(n),
        cross=(y.T @ a).div_(n),
        sq=float(y.square().sum()) / n,
    )


@torch.no_grad()
def solve_decoder_(
    w: torch.Tensor,
    stats: DecoderStats,
    l1_weights: torch.Tensor,
    group_weights: torch.Tensor | float,
    covariate_weight: torch.Tensor | None = None,
    max_iter: int = 100,
    tol: float = 1e-5,
) -> int:
    """In place: minimise the decoder sub-problem (module docstring) over ``W`` (and ``Φ``) by
    FISTA with step ``1/Lip`` and restarts, warm-started at the current weights.

    Every iterate is a prox output, so genes inside a gene set are never soft-thresholded
    and columns below the group threshold are exactly zero, as in training.

    Parameters
    ----------
    w
        The decoder ``W``, genes x factors, changed in place.
    stats
        :func:`decoder_stats`.
    l1_weights
        Elementwise L1 weights of ``W``.
    group_weights
        Group weight, one number or one per factor.
    covariate_weight
        ``Φ`` when the model has covariates (not penalised), solved with ``W``, in place.
    max_iter
        Iterations at most.
    tol
        Stop when an iteration moves the weights by less than this, relative to their norm.

    Returns
    -------
    int
        The iterations run.
    """
    k = w.shape[1]
    b = w if covariate_weight is None else torch.cat([w, covariate_weight], dim=1)
    # Lipschitz constant of the gradient 2 (B G - cross): twice G's largest eigenvalue
    lip = 2.0 * float(torch.linalg.eigvalsh(stats.gram.double())[-1])
    if not lip > 0:
        return 0
    step = 1.0 / lip
    weights = l1_weights
    if covariate_weight is not None:  # covariate columns: no L1 and no group penalty
        weights = torch.cat([l1_weights, l1_weights.new_zeros(covariate_weight.shape)], dim=1)
    prox = DecoderProx(weights, 0.0, step)
    group = step * torch.as_tensor(group_weights, dtype=w.dtype, device=w.device)
    has_group = bool((group > 0).any())
    norms = b.new_empty((1, k))

    def prox_(v: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
        prox(v)
        if has_group:  # group_soft_threshold_ on the factor columns, into scratch buffers
            vk = v[:, :k]
            torch.sum(torch.mul(vk, vk, out=scratch[:, :k]), dim=0, keepdim=True, out=norms)
            norms.sqrt_()
            scale = norms.clamp_(min=torch.finfo(v.dtype).tiny).reciprocal_().mul_(group)
            vk.mul_(scale.neg_().add_(1.0).clamp_(min=0.0))
        return v

    # every iterate in preallocated buffers: the loop allocates nothing of W's size
    x_prev, x, y = b.clone(), torch.empty_like(b), b.clone()
    delta, scratch = torch.empty_like(b), torch.empty_like(b)
    t = 1.0
    it = 0
    for it in range(1, max_iter + 1):
        # gradient step at the extrapolated point: y - step * 2 (y G - cross)
        torch.addmm(y, y, stats.gram, alpha=-2.0 * step, out=x).add_(stats.cross, alpha=2.0 * step)
        prox_(x, scratch)
        torch.sub(x, x_prev, out=delta)
        moved = float(torch.linalg.vector_norm(delta))
        # restart the momentum when it points uphill (O'Donoghue & Candès 2015)
        uphill = torch.sub(y, x, out=scratch).view(-1).dot(delta.view(-1))
        if float(uphill) > 0:
            t = 1.0
        t_next = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        torch.add(x, delta, alpha=(t - 1.0) / t_next, out=y)
        x_prev, x, t = x, x_prev, t_next  # x_prev holds the new iterate; x's buffer is free
        if moved <= tol * max(float(torch.linalg.vector_norm(x_prev)), 1e-12):
            break
    w.copy_(x_prev[:, :k])
    if covariate_weight is not None:
        covariate_weight.copy_(x_prev[:, k:])
    return it


@torch.no_grad()
def adam_penalty_weights(
    w: torch.Tensor,
    l1_weights: torch.Tensor,
    lambda3: float,
    exp_avg_sq: torch.Tensor,
    step: int,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The penalty weights ``(l1, group)`` of the objective that Adam + prox actually minimise.

    The training step is ``W <- prox_{lr R}(W - lr m̂ / d)`` with ``d = sqrt(v̂) + eps``
    (Adam's bias-corrected moments), so its fixed points satisfy ``∇f + d ⊙ ∂R ∋ 0``: per
    unit of the averaged loss the L1 weights are ``l1_weights ⊙ d`` (exactly) and the group
    weight of column ``k`` is ``lambda3 ⊙ d[:, k]``, which is not a norm; we use its
    ``W[:, k]²``-weighted mean over genes (the plain mean for a zero column), which is exact
    along ``W[:, k]``. ``d`` is Adam's current state: the effective penalty moves as the
    gradient noise ``v`` does.

    Parameters
    ----------
    w
        The decoder, genes x factors.
    l1_weights
        The training's elementwise L1 weights.
    lambda3
        The training's group weight.
    exp_avg_sq
        Adam's second moment of ``W``.
    step
        Adam's step count (for the bias correction).
    beta2, eps
        Adam's settings.

    Returns
    -------
    l1, group : torch.Tensor
        Genes x factors, and one weight per factor.
    """
    d = (exp_avg_sq / (1.0 - beta2**step)).sqrt_().add_(eps)
    w2 = w.square()
    mass = w2.sum(dim=0)
    group = torch.where(mass > 0, (d * w2).sum(dim=0) / mass.clamp(min=1e-30), d.mean(dim=0))
    return l1_weights * d, float(lambda3) * group


@torch.no_grad()
def hidden_features_(layers: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The encoder's hidden features of all cells, computed as training computes a batch's,
    without dropout.

    Every BatchNorm normalises with the mean and variance of these cells, which its batch
    statistics estimate, and stores them as its running statistics (the variance it
    normalised with, not torch's unbiased one: they differ by 1/n), so that eval mode then
    computes the same features. The running statistics alone lag ~10-30 steps behind at the
    start of training (momentum 0.1), when a head fitted to them misfits what training sees.

    Parameters
    ----------
    layers
        The encoder without its last layer; their BatchNorm statistics are set in place.
    x
        The cells (training passes at most ``training.SOLVE_CELLS``), held at once.

    Returns
    -------
    torch.Tensor
        Cells x the last hidden width.
    """
    h = x
    for layer in layers:
        if isinstance(layer, nn.Dropout):
            continue
        if isinstance(layer, nn.BatchNorm1d):
            if layer.running_mean is not None:
                var, mean = torch.var_mean(h, dim=0, correction=0)
                layer.running_mean.copy_(mean)
                layer.running_var.copy_(var)
            h = nn.functional.batch_norm(
                h, None, None, layer.weight, layer.bias, training=True, eps=layer.eps
            )
        else:
            h = layer(h)
    return h


@torch.no_grad()
def solve_head_(
    model: LinearDecoderAE,
    x: torch.Tensor,
    l1_weights: torch.Tensor,
    group_weights: torch.Tensor | float,
    lambda0: float,
    covariates: torch.Tensor | None = None,
    rounds: int = 1,
    max_iter: int = 30,
) -> None:
    """In place: alternately minimise the training objective over the encoder's last (linear)
    layer and over the decoder, with the hidden features held fixed.

    The hidden features ``H`` (:func:`hidden_features_`) are computed once; the loss is then
    quadratic in the last layer ``B = [A | a]`` and convex in ``[W | Φ]``, and both depend on
    the data only through ``[H 1 C]ᵀ[H 1 C] / n`` and ``Yᵀ[H 1 C] / n``. The objective is
    the one training minimises *on average over the dropout in front of the last layer*
    (rate ``p``): that dropout adds the ridge ``p/(1-p) * diag(HᵀH/n)`` to the features'
    Gram matrix, which keeps the solved layer in the basin the stochastic steps explore.
    Each round solves ``B`` exactly (the normal equations ``(WᵀW + lambda0 I) B S = Wᵀ P``)
    and then ``W`` by :func:`solve_decoder_`.

    Parameters
    ----------
    model
        The network, changed in place.
    x
        The cells the solve uses, cells x genes.
    l1_weights, group_weights
        The decoder's penalty weights (e.g. :func:`adam_penalty_weights`).
    lambda0
        Weight of the latent penalty.
    covariates
        The covariate design of ``x``'s cells.
    rounds
        Alternations of the two solves.
    max_iter
        FISTA iterations of each decoder solve at most.
    """
    *hidden, last = model.encoder
    if not isinstance(last, nn.Linear):
        raise ValueError(
            f"the head solve needs an encoder ending in nn.Linear, got {type(last).__name__}; "
            "use decoder_solve='none' for other encoders"
        )
    p = next((float(m.p) for m in reversed(hidden) if isinstance(m, nn.Dropout)), 0.0)
    n, n_h = x.shape[0], last.in_features
    stats = decoder_stats(
        torch.cat([hidden_features_(hidden, x), x.new_ones((n, 1))], dim=1), x, covariates
    )
    gram, cross, sq = stats.gram, stats.cross, stats.sq
    # expected Gram under the last dropout (a ridge on the hidden units), plus a tiny
    # ridge so that the normal equations stay solvable with dead units
    s_h = gram[: n_h + 1, : n_h + 1].clone()
    ridge = p / (1.0 - p) * gram.diagonal()[:n_h] + 1e-6 * float(gram.diagonal()[:n_h].mean())
    s_h.diagonal()[:n_h].add_(ridge)
    s_hc = gram[: n_h + 1, n_h + 1 :]
    p_h, p_c = cross[:, : n_h + 1], cross[:, n_h + 1 :]
    s_h_inv = torch.linalg.inv(s_h.double()).to(gram.dtype)
    w = model.decoder_weight.data
    phi = None if model.covariate_weight is None else model.covariate_weight.data
    eye = torch.eye(w.shape[1], dtype=w.dtype, device=w.device)

    def last_layer() -> torch.Tensor:
        """``B`` minimising the loss for the current ``W`` and ``Φ``."""
        target = p_h if phi is None else p_h - phi @ s_hc.T
        return torch.linalg.solve(w.T @ w + max(lambda0, 1e-6) * eye, w.T @ target @ s_h_inv)

    for _ in range(rounds):
        b = last_layer()
        z_gram, z_cross = b @ s_h @ b.T, p_h @ b.T
        if phi is not None:
            zc = b @ s_hc
            z_gram = torch.cat(
                [torch.cat([z_gram, zc], 1), torch.cat([zc.T, gram[n_h + 1 :, n_h + 1 :]], 1)]
            )
            z_cross = torch.cat([z_cross, p_c], 1)
        solve_decoder_(
            w, DecoderStats(z_gram, z_cross, sq), l1_weights, group_weights, phi, max_iter
        )
    b = last_layer()  # for the final decoder
    last.weight.data.copy_(b[:, :n_h])
    last.bias.data.copy_(b[:, n_h])
