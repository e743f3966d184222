"""The training loop: batches, learning-rate schedule, head-solve schedule and seeding."""

from __future__ import annotations

import copy
import re
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from interpretable_ae import training as train_module
from interpretable_ae.genesets import build_mask
from interpretable_ae.module import LinearDecoderAE, objective
from interpretable_ae.prox import l1_weights, prox_decoder_
from interpretable_ae.training import (
    TrainConfig,
    batch_bounds,
    evaluate,
    learning_rate,
    n_active_factors,
    solve_steps,
    split_cells,
    train_model,
)


@pytest.mark.parametrize(
    ("n", "size", "expected_last"),
    [(125, 62, (62, 125)), (124, 62, (62, 124)), (130, 62, (124, 130)), (10, 62, (0, 10))],
)
def test_batch_bounds_never_leave_a_one_cell_batch(n, size, expected_last):
    bounds = batch_bounds(n, size)
    assert bounds[-1] == expected_last
    assert all(b - a >= 2 for a, b in bounds)
    assert sum(b - a for a, b in bounds) == n


def test_batch_bounds_merge_a_one_cell_tail_only_into_a_batch_before_it():
    assert batch_bounds(63, 62) == [(0, 63)]  # two batches, the second of one cell
    assert batch_bounds(1, 62) == [(0, 1)]  # no batch before it: left alone


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"epochs": 0}, "epochs=0"),
        ({"batch_size": 1}, "batch_size=1"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"val_fraction": 1.0}, "val_fraction=1.0"),
        ({"patience": 0}, "patience=0"),
        ({"epochs": 2, "warmup_epochs": 2.5}, "warmup_epochs=2.5"),
        ({"lambda1": -0.1}, "lambda1=-0.1"),
    ],
)
def test_each_option_out_of_range_is_named_at_its_bound(options, named):
    with pytest.raises(
        ValueError, match=rf"^invalid training option\(s\) {re.escape(named)}: need"
    ):
        TrainConfig(**options)


def test_options_at_their_bounds_are_accepted_and_all_bad_ones_named_at_once():
    TrainConfig(epochs=1, batch_size=2, lr=1e-12, val_fraction=0.0, patience=1, warmup_epochs=1)
    message = (
        "invalid training option(s) epochs=0, lr=0: need epochs >= 1, batch_size >= 2, lr > 0, "
        "lambdas >= 0, 0 <= val_fraction < 1, patience >= 1, 0 <= warmup_epochs <= epochs, "
        "lr_decay in ('none', 'cosine'), decoder_solve in ('none', 'epoch', 'doubling'), "
        "precision in ('float32', 'bfloat16')"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        TrainConfig(epochs=0, lr=0)


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


@pytest.fixture
def solve_data(small_data) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, L1 weights) of the small simulation, for training with solves."""
    adata, gene_sets = small_data
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


def test_bfloat16_autocast_keeps_float32_weights_and_is_seeded(solve_data):
    x, weights = solve_data

    def fit(precision: str) -> tuple[LinearDecoderAE, float]:
        torch.manual_seed(0)
        model = LinearDecoderAE(120, 8, hidden=(32, 32))
        config = TrainConfig(epochs=4, batch_size=16, lr=2e-3, precision=precision)
        train_model(model, x, weights, config, progress=False)
        return model, evaluate(model, x, 0.1)[0]

    low, low_loss = fit("bfloat16")
    again, _ = fit("bfloat16")
    full, full_loss = fit("float32")
    assert all(p.dtype == torch.float32 for p in low.parameters())
    assert torch.equal(low.decoder_weight, again.decoder_weight)
    assert not torch.equal(low.decoder_weight, full.decoder_weight)  # the products are bf16
    assert low_loss == pytest.approx(full_loss, rel=0.05)
    with pytest.raises(ValueError, match="precision='half'"):
        TrainConfig(precision="half")


def test_training_is_adam_then_the_prox_on_seeded_batches(solve_data):
    """Two epochs of two batches, written out by hand: each epoch shuffles the cells with a
    generator seeded by the config's seed (dropout draws from torch's generator, seeded
    the same), each step is Adam on the smooth objective at the scheduled learning rate,
    then the decoder prox with that learning rate's thresholds."""
    x, weights = solve_data
    x = x[:32]
    config = TrainConfig(
        epochs=2, batch_size=16, lr=3e-3, lambda0=0.2, lambda3=0.7, seed=5,
        warmup_epochs=0.5, lr_decay="cosine",
    )  # fmt: skip
    torch.manual_seed(0)
    model = LinearDecoderAE(120, 8, hidden=(16,))
    by_hand = copy.deepcopy(model)
    hist = train_model(model, x, weights, config, progress=False)

    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(by_hand.parameters(), lr=config.lr, fused=True)
    by_hand.train()
    step, losses = 0, []
    for _ in range(config.epochs):
        perm = torch.randperm(32, generator=gen)
        total = 0.0
        for start in (0, 16):
            lr = learning_rate(config, step, 2)
            opt.param_groups[0]["lr"] = lr
            xb = x[perm[start : start + 16]]
            z, out = by_hand(xb)
            loss, _ = objective(xb, z, out, config.lambda0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                prox_decoder_(by_hand.decoder_weight.data, lr * weights, lr * config.lambda3)
            total += float(loss.detach()) * 16
            step += 1
        losses.append(total / 32)
    for (name, a), (_, b) in zip(model.state_dict().items(), by_hand.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert hist.train_loss == pytest.approx(losses, rel=1e-6)
    assert len(hist.n_active) == 2 and hist.n_active[-1] == n_active_factors(model.decoder_weight)
    assert hist.best_epoch == 1 and not hist.stopped_early and hist.val_loss == []


def test_small_splits_and_the_active_count():
    train, val = split_cells(10, 0.2, seed=1)
    assert len(val) == 2 and len(train) == 8 and not set(train.tolist()) & set(val.tolist())
    assert torch.equal(train, train.sort().values) and torch.equal(val, val.sort().values)
    assert torch.equal(split_cells(10, 0.2, seed=1)[1], val)
    assert not torch.equal(split_cells(10, 0.2, seed=2)[1], val)
    assert split_cells(5, 0.0, seed=0)[1].numel() == 0 and split_cells(5, 0.0, 0)[0].numel() == 5
    message = (
        r"^val_fraction=0.1 of 10 cells leaves 1 validation cells; use a fraction that keeps "
        r"at least 2 cells on each side, or 0$"
    )
    with pytest.raises(ValueError, match=message):
        split_cells(10, 0.1, seed=0)
    with pytest.raises(ValueError, match="leaves 9 validation cells"):
        split_cells(10, 0.9, seed=0)
    assert [len(part) for part in split_cells(10, 0.8, seed=0)] == [2, 8]  # 2 on each side: ok
    w = torch.zeros(4, 3)
    w[1, 0], w[3, 2] = 0.5, -1e-30
    assert n_active_factors(w) == 2


def test_two_cells_train_and_one_is_refused(solve_data):
    x, weights = solve_data
    torch.manual_seed(0)
    model = LinearDecoderAE(120, 8, hidden=(4,))
    train_model(model, x[:2], weights, TrainConfig(epochs=1, batch_size=2), progress=False)
    with pytest.raises(ValueError, match=r"^training needs at least 2 cells, got 1$"):
        train_model(model, x[:1], weights, TrainConfig(epochs=1, batch_size=2), progress=False)


def test_data_as_an_array_or_a_tensor_that_requires_grad_are_the_same_cells(solve_data):
    x, _ = solve_data
    torch.manual_seed(0)
    model = LinearDecoderAE(120, 8, hidden=(16,))
    expected = evaluate(model, x, 0.1)
    assert evaluate(model, x.numpy(), 0.1) == expected
    assert evaluate(model, x.clone().requires_grad_(True), 0.1) == expected


def test_covariates_enter_every_step_and_the_validation_loss(solve_data):
    """Two epochs with covariates and a validation split, by hand: every step's forward pass
    and the validation loss take the batch's covariates; the best epoch's weights are kept;
    each epoch's seconds are recorded."""
    x, weights = solve_data
    x = x[:40]
    covariates = torch.randn(40, 2, generator=torch.Generator().manual_seed(1))
    config = TrainConfig(epochs=2, batch_size=16, lr=3e-3, lambda3=0.7, seed=5, val_fraction=0.2)
    torch.manual_seed(0)
    model = LinearDecoderAE(120, 8, hidden=(16,), n_covariates=2)
    by_hand = copy.deepcopy(model)
    started = time.perf_counter()
    hist = train_model(model, x, weights, config, covariates=covariates, progress=False)
    elapsed = time.perf_counter() - started

    train_idx, val_idx = split_cells(40, config.val_fraction, config.seed)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(by_hand.parameters(), lr=config.lr, fused=True)
    val_losses, states = [], []
    for _ in range(config.epochs):
        by_hand.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=gen)]
        for start in (0, 16):
            rows = perm[start : start + 16]
            z, out = by_hand(x[rows], covariates[rows])
            loss, _ = objective(x[rows], z, out, config.lambda0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                prox_decoder_(by_hand.decoder_weight.data, config.lr * weights, config.lr * 0.7)
        val_losses.append(evaluate(by_hand, x, config.lambda0, covariates, val_idx.numpy())[0])
        states.append(copy.deepcopy(by_hand.state_dict()))
    assert hist.val_loss == pytest.approx(val_losses, rel=1e-6)
    best = int(np.argmin(val_losses))
    assert hist.best_epoch == best
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, states[best][name], rtol=1e-5, atol=1e-6, msg=name)
    assert model.covariate_weight.abs().sum() > 0
    assert len(hist.seconds) == 2 and all(0 < s for s in hist.seconds)
    assert sum(hist.seconds) <= elapsed


def test_head_solves_get_adams_state_and_the_solve_cells_covariates(monkeypatch, solve_data):
    """Each head solve weighs the penalties by Adam's state at that step (its step count, beta2
    and eps) and sees the covariates of the cells it solves on."""
    x, weights = solve_data
    covariates = torch.randn(len(x), 1, generator=torch.Generator().manual_seed(2))
    seen: list[tuple] = []
    penalty_weights, solve_head = train_module.adam_penalty_weights, train_module.solve_head_

    def spy_weights(w, l1, lambda3, exp_avg_sq, step, beta2=None, eps=None):
        seen.append(("weights", step, beta2, eps))
        return penalty_weights(w, l1, lambda3, exp_avg_sq, step, beta2, eps)

    def spy_solve(model, cells, l1, group, lambda0, cell_covariates=None, **kw):
        seen.append(("solve", cells.shape[0], cell_covariates))
        return solve_head(model, cells, l1, group, lambda0, cell_covariates, **kw)

    monkeypatch.setattr(train_module, "adam_penalty_weights", spy_weights)
    monkeypatch.setattr(train_module, "solve_head_", spy_solve)
    monkeypatch.setattr(train_module, "SOLVE_CELLS", 50)
    torch.manual_seed(0)
    model = LinearDecoderAE(120, 8, hidden=(16,), n_covariates=1)
    config = TrainConfig(epochs=1, batch_size=16, lr=2e-3, seed=3, decoder_solve="doubling")
    train_model(model, x, weights, config, covariates=covariates, progress=False)
    steps = sorted(solve_steps(config, len(batch_bounds(len(x), 16))))
    assert [e[1] for e in seen if e[0] == "weights"] == steps  # Adam's step count at each
    assert {(e[2], e[3]) for e in seen if e[0] == "weights"} == {(0.999, 1e-8)}
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(config.seed))
    for _, n_cells, cell_covariates in (e for e in seen if e[0] == "solve"):
        assert n_cells == 50 and torch.equal(cell_covariates, covariates[perm[:50]])
