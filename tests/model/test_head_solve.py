"""The exact decoder / head solve against its optimality conditions, from the data."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from interpretable_ae.head_solve import (
    adam_penalty_weights,
    decoder_stats,
    hidden_features_,
    solve_decoder_,
    solve_head_,
)
from interpretable_ae.module import LinearDecoderAE, objective
from interpretable_ae.prox import decoder_penalty, l1_weights


def decoder_problem(seed: int = 0, n: int = 400, genes: int = 30, k: int = 6):
    """Latents, data, L1 weights (annotated: 0 inside a random set) and a start W."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=gen, dtype=torch.float64)
    truth = torch.randn(genes, k, generator=gen, dtype=torch.float64)
    truth[:, -1] *= 0.01  # one nearly empty factor: the group lasso should switch it off
    y = z @ truth.T + torch.randn(n, genes, generator=gen, dtype=torch.float64)
    mask = (torch.rand(genes, k, generator=gen) < 0.4).double()
    weights = l1_weights(mask, 0, 0, lambda1=0.3, lambda2=0.0, dtype=torch.float64)
    return z, y, weights, torch.randn(genes, k, generator=gen, dtype=torch.float64)


def full_objective(z, y, w, weights, lam3):
    """(1/n) ||Y - Z Wᵀ||² + R(W), straight from the data."""
    return float(((y - z @ w.T) ** 2).sum() / y.shape[0] + decoder_penalty(w, weights, lam3))


def test_decoder_solve_minimises_the_full_data_objective_exactly():
    z, y, weights, w = decoder_problem()
    lam3 = 0.5
    stats = decoder_stats(z, y)
    before = full_objective(z, y, w, weights, lam3)
    assert stats.smooth(w) == pytest.approx(float(((y - z @ w.T) ** 2).sum()) / y.shape[0])
    solve_decoder_(w, stats, weights, lam3, max_iter=5000, tol=1e-13)
    assert full_objective(z, y, w, weights, lam3) < before
    # optimality (KKT) of the result, checked from the data, not from the solver
    grad = 2 * (w @ (z.T @ z) - y.T @ z) / y.shape[0]
    active = (w != 0).any(dim=0)
    assert 0 < int(active.sum()) < w.shape[1]  # the near-empty factor is switched off
    assert not active[-1]
    for k in range(w.shape[1]):
        g, wk, lk = grad[:, k], w[:, k], weights[:, k]
        if not active[k]:  # zero column: the soft-thresholded gradient is within lam3
            assert float((g.abs() - lk).clamp(min=0).norm()) <= lam3 + 1e-6
            continue
        nz = wk != 0
        res = g + lam3 * wk / wk.norm()
        # non-zero entries: stationary; zeros: gradient within their L1 weight
        np.testing.assert_allclose((res + lk * wk.sign())[nz].numpy(), 0, atol=1e-6)
        assert bool((res[~nz].abs() <= lk[~nz] + 1e-6).all())
        # genes inside the set carry no L1: none of them is thresholded to zero
        assert bool(nz[lk == 0].all())


def test_decoder_solve_with_covariates_leaves_them_unpenalised():
    z, y, weights, w = decoder_problem(seed=1)
    gen = torch.Generator().manual_seed(5)
    c = torch.randn(z.shape[0], 2, generator=gen, dtype=torch.float64)
    phi_true = torch.randn(y.shape[1], 2, generator=gen, dtype=torch.float64)
    y = y + c @ phi_true.T
    phi = torch.zeros(y.shape[1], 2, dtype=torch.float64)
    solve_decoder_(w, decoder_stats(z, y, c), weights, 0.5, phi, max_iter=5000, tol=1e-13)
    # for the solved W, Φ is the unpenalised least-squares fit of the residual
    expected = torch.linalg.lstsq(c, y - z @ w.T).solution.T
    np.testing.assert_allclose(phi.numpy(), expected.numpy(), atol=1e-6)


def test_adam_penalty_weights_scale_by_adams_step_denominator():
    w = torch.tensor([[1.0, 0.0], [0.0, 0.0], [2.0, 0.0]])
    weights = torch.tensor([[0.5, 1.0], [0.0, 1.0], [1.0, 0.0]])
    v = torch.tensor([[4.0, 1.0], [9.0, 1.0], [1.0, 16.0]]) * (1 - 0.999**10)
    l1, group = adam_penalty_weights(w, weights, 0.3, v, step=10, eps=0.0)
    d = torch.tensor([[2.0, 1.0], [3.0, 1.0], [1.0, 4.0]])
    torch.testing.assert_close(l1, weights * d)
    # column 0: W²-weighted mean of d (1·2 + 4·1) / 5; column 1 (zero): plain mean
    torch.testing.assert_close(group, torch.tensor([0.3 * 6 / 5, 0.3 * 2.0]))


@pytest.mark.parametrize("n_cov", [0, 2])
def test_head_solve_lowers_the_objective_and_solves_the_last_layer(n_cov):
    torch.manual_seed(0)
    model = LinearDecoderAE(20, 5, hidden=(16, 12), dropout=0.0, n_covariates=n_cov).double()
    x = torch.randn(300, 20, dtype=torch.float64).abs()
    cov = torch.randn(300, n_cov, dtype=torch.float64) if n_cov else None
    if n_cov:  # data with a covariate effect, and a non-zero start for Φ
        x = x + cov @ torch.randn(20, n_cov, dtype=torch.float64).T
        torch.nn.init.normal_(model.covariate_weight)
    mask = (torch.rand(20, 5) < 0.4).double()
    weights = l1_weights(mask, 0, 0, lambda1=0.3, lambda2=0.0, dtype=torch.float64)
    lam0, lam3 = 0.1, 0.2

    def total():
        model.eval()
        z, out = model(x, cov)
        loss, _ = objective(x, z, out, lam0)
        return loss + decoder_penalty(model.decoder_weight, weights, lam3)

    last = model.encoder[-1]
    before = total()
    grad_before = torch.autograd.grad(before, [last.weight, last.bias])
    w_before = model.decoder_weight.detach().clone()
    solve_head_(model, x, weights, lam3, lam0, cov, rounds=3, max_iter=500)
    after = total()
    assert float(after.detach()) < float(before.detach())
    w = model.decoder_weight.detach()
    assert not torch.equal(w, w_before)
    # prox structure: penalised entries may be exactly 0, genes inside a set are not
    inside = mask.bool() & (w != 0).any(dim=0)
    assert bool((w[inside] != 0).all())
    # without dropout the last layer is the exact minimiser (up to the solver's 1e-6
    # ridge): its gradient vanishes
    grads = torch.autograd.grad(after, [last.weight, last.bias])
    for g, g0 in zip(grads, grad_before, strict=True):
        assert float(g.abs().max()) < 1e-4 * float(g0.abs().max())


def test_hidden_features_normalise_with_the_cells_statistics_and_store_them():
    torch.manual_seed(0)
    model = LinearDecoderAE(20, 5, hidden=(16, 12), dropout=0.5).double()
    x = torch.randn(300, 20, dtype=torch.float64).abs()
    # expected: the training forward of a dropout-free copy on all cells as one batch
    ref = copy.deepcopy(model)
    for m in ref.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    ref.train()
    expected = ref.encoder[:-1](x)
    hidden = list(model.encoder)[:-1]
    model.train()
    got = hidden_features_(hidden, x)
    torch.testing.assert_close(got, expected)  # dropout skipped, batch statistics used
    # the running statistics now hold them: eval mode computes the same features
    model.eval()
    torch.testing.assert_close(model.encoder[:-1](x), expected)
    bn = model.encoder[1]
    pre = model.encoder[0](x)
    torch.testing.assert_close(bn.running_mean, pre.mean(dim=0))
    torch.testing.assert_close(bn.running_var, pre.var(dim=0, correction=0))
