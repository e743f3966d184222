"""The proximal operators against numerical minimisation of their prox objectives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from interpretable_ae.prox import (
    DecoderProx,
    decoder_penalty,
    group_soft_threshold_,
    l1_weights,
    prox_decoder_,
    soft_threshold_,
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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_scalar_threshold_is_taken_in_the_weights_dtype(dtype):
    w = torch.tensor([-0.35, -0.1, 0.05, 0.1, 0.7], dtype=dtype)
    expected = torch.sign(w) * torch.clamp(w.abs() - torch.tensor(0.1, dtype=dtype), min=0)
    out = soft_threshold_(w.clone(), 0.1)
    assert out.dtype == dtype and torch.equal(out, expected)


def test_group_prox_with_one_threshold_per_column():
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    norms = torch.linalg.vector_norm(w, dim=0)
    thresholds = torch.stack([norms[0] / 2, norms[1] * 2, torch.tensor(0.0, dtype=w.dtype)])
    out = group_soft_threshold_(w.clone(), thresholds)
    torch.testing.assert_close(out[:, 0], w[:, 0] / 2)  # shrunk by half its norm
    assert (out[:, 1] == 0).all()  # threshold above its norm
    assert torch.equal(out[:, 2], w[:, 2])  # threshold 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_l1_weights_in_the_asked_dtype_exactly(dtype):
    mask = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    weights = l1_weights(mask, n_sparse=1, n_dense=1, lambda1=0.93, lambda2=0.3, dtype=dtype)
    assert weights.dtype == dtype  # every block in it: a float32 one would promote bfloat16
    expected = torch.tensor([[0.0, 0.93, 0.3, 0.0], [0.93, 0.93, 0.3, 0.0]], dtype=dtype)
    assert torch.equal(weights, expected)  # 0.93 and 0.3 as float64, not rounded to float32


def test_l1_weights_are_built_on_the_masks_device():
    """Every block on the mask's device (torch's meta device stands in for a GPU here)."""
    mask = torch.tensor([[1.0, 0.0], [0.0, 0.0]], device="meta")
    weights = l1_weights(mask, n_sparse=2, n_dense=1, lambda1=0.93, lambda2=0.3)
    assert weights.device.type == "meta" and weights.shape == (2, 5)
