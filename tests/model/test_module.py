"""The torch network: shapes, the decoder without bias, dropout and the objective."""

from __future__ import annotations

import pytest
import torch

from interpretable_ae.module import Dropout, LinearDecoderAE, objective


def test_dropout_drops_a_fraction_p_and_keeps_the_expectation():
    drop = Dropout(0.2)
    x = torch.ones(400, 500)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        y = drop(x)
    assert abs(float((y == 0).float().mean()) - 0.2) < 0.01
    assert set(torch.unique(y).tolist()) == {0.0, 1.25}
    assert torch.equal(drop.eval()(x), x)


def test_the_decoder_is_linear_without_bias_and_covariates_add_a_linear_term():
    torch.manual_seed(0)
    net = LinearDecoderAE(30, 5, hidden=(8,), n_covariates=2).eval()
    z = torch.randn(4, 5)
    cov = torch.randn(4, 2)
    torch.testing.assert_close(net.decode(2 * z, 0 * cov), 2 * net.decode(z, 0 * cov))
    assert net.decode(torch.zeros(4, 5), torch.zeros(4, 2)).abs().max() == 0
    with pytest.raises(ValueError, match="built with covariates"):
        net.decode(z)
    latent, recon = net(torch.randn(4, 30), cov)
    assert latent.shape == (4, 5) and recon.shape == (4, 30)


def test_objective_sums_genes_and_averages_cells():
    x = torch.ones(2, 3)
    z = torch.full((2, 4), 0.5)
    loss, rec = objective(x, z, torch.zeros(2, 3), lambda0=0.1)
    assert float(rec) == pytest.approx(3.0)  # ||1||² over 3 genes, mean over 2 cells
    assert float(loss) == pytest.approx(3.0 + 0.1 * 4 * 0.25)
    with pytest.raises(ValueError, match="at least one factor"):
        LinearDecoderAE(3, 0)
