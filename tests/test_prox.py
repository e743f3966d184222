"""The proximal operators against numerical minimisation of their prox objectives, and the
exact decoder / head solve against its optimality conditions."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from interpretable_ae import train as train_module
from interpretable_ae.decoder_solve import (
    adam_penalty_weights,
    decoder_stats,
    hidden_features_,
    solve_decoder_,
    solve_head_,
)
from interpretable_ae.genesets import build_mask
from interpretable_ae.model import LinearDecoderAE, objective
from interpretable_ae.prox import (
    DecoderProx,
    decoder_penalty,
    group_soft_threshold_,
    l1_weights,
    prox_decoder_,
    soft_threshold_,
)
from interpretable_ae.simulate import simulate_counts
from interpretable_ae.train import (
    TrainConfig,
    batch_bounds,
    evaluate,
    learning_rate,
    solve_steps,
    train_model,
)


def numerical_prox(v: np.ndarray, penalty) -> np.ndarray:
    """argmin_x 0.5 ||x - v||² + penalty(x), by Powell (derivative-free, handles kinks)."""
    res = minimize(
        lambda x: 0.5 * np.sum((x - v.ravel()) ** 2) + penalty(x.reshape(v.shape)),
        v.ravel(),
        method="Powell",
        options={"xtol": 1e-10, "ftol": 1e-14, "maxiter": 200_000},
    )
    return res.x.reshape(v.shape)


@pytest.mark.parametrize("seed", range(3))
def test_soft_threshold_matches_numerical_prox(seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=8)
    t = rng.uniform(0, 1, size=8)
    expected = numerical_prox(v, lambda x: np.sum(t * np.abs(x)))
    got = soft_threshold_(torch.tensor(v), torch.tensor(t)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_group_prox_matches_numerical_prox(seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(5, 3)) * np.array([0.1, 1.0, 2.0])  # one small column
    t = 0.6
    expected = numerical_prox(v, lambda x: t * np.linalg.norm(x, axis=0).sum())
    got = group_soft_threshold_(torch.tensor(v), t).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_composed_decoder_prox_is_the_prox_of_the_sum(seed):
    """L1 (weighted, zero inside gene sets) then group shrinkage = prox of the sum."""
    rng = np.random.default_rng(seed)
    mask = torch.tensor(rng.random((5, 2)) < 0.5, dtype=torch.float64)
    weights = l1_weights(mask, n_sparse=1, n_dense=1, lambda1=0.4, lambda2=0.3, dtype=torch.float64)
    v = rng.normal(size=(5, 4))
    lam3 = 0.5
    expected = numerical_prox(v, lambda x: float(decoder_penalty(torch.tensor(x), weights, lam3)))
    got = prox_decoder_(torch.tensor(v), weights, lam3).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_group_lasso_zeroes_exactly_the_small_columns():
    rng = np.random.default_rng(0)
    norms = np.array([0.2, 0.49, 0.51, 3.0, 0.0, 0.5])
    directions = rng.normal(size=(7, norms.size))
    w = torch.tensor(directions / np.linalg.norm(directions, axis=0) * norms, dtype=torch.float32)
    out = group_soft_threshold_(w.clone(), 0.5)
    zero = (out == 0).all(dim=0).numpy()
    np.testing.assert_array_equal(zero, norms <= 0.5)
    kept = ~zero
    np.testing.assert_allclose(
        np.linalg.norm(out.numpy(), axis=0)[kept], norms[kept] - 0.5, rtol=1e-5
    )


def test_annotated_l1_never_changes_genes_inside_the_set():
    gen = torch.Generator().manual_seed(0)
    mask = (torch.rand(50, 6, generator=gen) < 0.3).float()
    w = torch.randn(50, 6 + 2 + 1, generator=gen) * 1e-3  # tiny: L1 would zero them all
    before = w.clone()
    weights = l1_weights(mask, n_sparse=2, n_dense=1, lambda1=1.0, lambda2=1.0)
    soft_threshold_(w, weights)
    inside = torch.zeros_like(w, dtype=torch.bool)
    inside[:, :6] = mask.bool()
    assert torch.equal(w[inside], before[inside])  # bit-for-bit
    assert torch.equal(w[:, -1], before[:, -1])  # dense factors carry no L1
    assert (w[weights > 0] == 0).all()  # everything penalised was below its threshold


def test_l1_weights_layout():
    mask = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    weights = l1_weights(mask, n_sparse=1, n_dense=2, lambda1=0.9, lambda2=0.2)
    assert weights.shape == (3, 5)
    np.testing.assert_allclose(weights[:, :2].numpy(), 0.9 * (1 - mask.numpy()))
    np.testing.assert_allclose(weights[:, 2].numpy(), 0.2)
    assert (weights[:, 3:] == 0).all()


@pytest.mark.parametrize(
    ("n", "size", "expected_last"),
    [(125, 62, (62, 125)), (124, 62, (62, 124)), (130, 62, (124, 130)), (10, 62, (0, 10))],
)
def test_batch_bounds_never_leave_a_one_cell_batch(n, size, expected_last):
    bounds = batch_bounds(n, size)
    assert bounds[-1] == expected_last
    assert all(b - a >= 2 for a, b in bounds)
    assert sum(b - a for a, b in bounds) == n


@pytest.mark.parametrize("lr", [1e-3, 0.37])
def test_reusable_decoder_prox_equals_the_functional_one_bit_for_bit(lr):
    gen = torch.Generator().manual_seed(1)
    mask = (torch.rand(40, 5, generator=gen) < 0.3).float()
    weights = l1_weights(mask, n_sparse=2, n_dense=1, lambda1=0.9, lambda2=0.3)
    prox = DecoderProx(weights, lambda3=0.6, lr=0.5)
    prox.set_lr(lr)  # thresholds follow the learning rate
    for _ in range(3):  # repeated calls reuse the buffers
        w = torch.randn(40, 8, generator=gen) * 0.2
        expected = prox_decoder_(w.clone(), lr * weights, lr * 0.6)
        assert torch.equal(prox(w), expected)
    assert 0 < (expected == 0).float().mean() < 1  # the prox did something, not everything


def test_learning_rate_warm_up_and_cosine_decay():
    steps = 10  # per epoch
    flat = TrainConfig(epochs=3, lr=0.1)
    assert {learning_rate(flat, s, steps) for s in range(30)} == {0.1}
    warm = TrainConfig(epochs=3, lr=0.1, warmup_epochs=0.5)
    np.testing.assert_allclose(
        [learning_rate(warm, s, steps) for s in range(6)], [0.02, 0.04, 0.06, 0.08, 0.1, 0.1]
    )
    cos = TrainConfig(epochs=3, lr=0.1, warmup_epochs=1, lr_decay="cosine")
    lrs = np.array([learning_rate(cos, s, steps) for s in range(30)])
    assert lrs[9] == 0.1 and lrs[10] == 0.1  # end of warm-up, start of the decay
    assert (np.diff(lrs[10:]) < 0).all() and 0 < lrs[-1] < 0.002


def test_bad_schedule_options_are_refused():
    with pytest.raises(ValueError, match="lr_decay='step'.*lr_decay in"):
        TrainConfig(lr_decay="step")
    with pytest.raises(ValueError, match="warmup_epochs=5"):
        TrainConfig(epochs=3, warmup_epochs=5)


# ---------------------------------------------------------------- decoder / head solve
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


@pytest.fixture(scope="module")
def solve_data() -> tuple[torch.Tensor, torch.Tensor]:
    """(x, L1 weights) of a small simulation with 8 gene sets, for training with solves."""
    adata, gene_sets = simulate_counts(n_cells=161, n_genes=120, n_sets=8, set_size=(5, 15))
    mask, _ = build_mask(adata.var_names, gene_sets)
    x = torch.from_numpy(np.asarray(adata.X, dtype=np.float32))
    weights = l1_weights(torch.from_numpy(mask.toarray()).float(), 0, 0, 0.93, 0.0)
    return x, weights


def test_training_with_the_head_solve_is_seeded_and_lowers_the_loss(solve_data):
    x, weights = solve_data
    losses, decoders = {}, []
    for solve in ("doubling", "doubling", "epoch", "none"):
        torch.manual_seed(0)
        model = LinearDecoderAE(120, 8, hidden=(32, 32))
        config = TrainConfig(epochs=3, batch_size=16, lr=2e-3, decoder_solve=solve)
        train_model(model, x, weights, config, progress=False)
        losses[solve] = evaluate(model, x, 0.1)[0]
        decoders.append(model.decoder_weight.detach().clone())
    assert torch.equal(decoders[0], decoders[1])  # bit-identical run to run
    assert not torch.equal(decoders[0], decoders[2])  # the early solves change the fit
    assert losses["doubling"] < losses["none"]
    assert losses["epoch"] < losses["none"]
    with pytest.raises(ValueError, match="decoder_solve"):
        TrainConfig(decoder_solve="always")


@pytest.mark.parametrize(
    ("solve", "expected"),
    [("none", set()), ("epoch", {40, 80}), ("doubling", {1, 2, 4, 8, 16, 32, 40, 64, 80})],
)
def test_head_solves_follow_the_schedule(solve, expected):
    assert solve_steps(TrainConfig(epochs=2, decoder_solve=solve), 40) == expected


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


def test_head_solves_use_a_seeded_subset_of_the_cells(monkeypatch, solve_data):
    x, weights = solve_data
    config = TrainConfig(epochs=2, batch_size=16, lr=2e-3, decoder_solve="doubling")

    def fit(solve_cells: int, solve: str = "doubling") -> tuple[torch.Tensor, float]:
        monkeypatch.setattr(train_module, "SOLVE_CELLS", solve_cells)
        torch.manual_seed(0)
        model = LinearDecoderAE(120, 8, hidden=(32, 32))
        train_model(model, x, weights, replace(config, decoder_solve=solve), progress=False)
        return model.decoder_weight.detach().clone(), evaluate(model, x, 0.1)[0]

    subset, subset_loss = fit(60)
    again, _ = fit(60)
    everyone, _ = fit(10**6)
    assert torch.equal(subset, again)  # the subset comes from the seeded batch order
    assert not torch.equal(subset, everyone)  # and is not all cells
    assert torch.equal(everyone, fit(161)[0])  # a limit >= the cells means all of them
    assert subset_loss < fit(60, "none")[1]  # solving on the subset still helps
