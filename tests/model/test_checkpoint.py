"""Resumable training: a fit killed mid-way and rerun ends bit-identical to one never stopped."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import LIB
from interpretable_ae import InterpretableAutoencoder
from interpretable_ae.checkpoint import (
    Checkpointer,
    array_digest,
    fingerprint,
    optimizer_tensors,
    restore_optimizer,
)

OPTIONS = {"epochs": 6, "batch_size": 32, "progress": False}


class Crash(RuntimeError):
    pass


def fit(
    adata, gene_sets, crash_at: int | None = None, ran: list[int] | None = None, **options
) -> InterpretableAutoencoder:
    """Train on the small data; ``ran`` collects the epochs this call trained."""

    def hook(epoch: int) -> None:
        if ran is not None:
            ran.append(epoch)
        if epoch == crash_at:
            raise Crash(f"crash after epoch {epoch}")

    ae = InterpretableAutoencoder(adata, gene_sets, n_dense=1, hidden=(32, 32), seed=0)
    return ae.train(**(OPTIONS | options), on_epoch_end=hook)


def assert_same_fit(a: InterpretableAutoencoder, b: InterpretableAutoencoder) -> None:
    for (name, x), (_, y) in zip(
        a.module.state_dict().items(), b.module.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name
    assert a.history.drop(columns="seconds").equals(b.history.drop(columns="seconds"))
    assert a.history.attrs == b.history.attrs
    assert a.final_loss == b.final_loss


# The group lasso switches most factors off after epoch 4 and the validation loss never gets
# back to its best: the weights kept are epoch 4's, which only the checkpoint holds.
BEST_BEFORE_THE_CHECKPOINT = {
    "val_fraction": 0.2, "patience": 10, "epochs": 8, "lr": 5e-3, "lambda3": 20.0,
}  # fmt: skip


@pytest.mark.parametrize(
    ("options", "every", "crash_at"),
    [
        ({}, 2, 3),
        ({"decoder_solve": "doubling", "warmup_epochs": 1.5, "lr_decay": "cosine"}, 2, 3),
        (BEST_BEFORE_THE_CHECKPOINT, 5, 6),
        (BEST_BEFORE_THE_CHECKPOINT | {"patience": 2}, 6, 6),
    ],
    ids=[
        "constant",
        "warm-up, cosine, solves",
        "best weights in the checkpoint",
        "epochs without improvement in the checkpoint",
    ],
)
def test_a_crashed_fit_resumes_to_the_same_result(small_data, tmp_path, options, every, crash_at):
    adata, gene_sets = small_data
    ckpt = tmp_path / "checkpoint"
    uninterrupted = fit(adata, gene_sets, **options)
    with pytest.raises(Crash):
        fit(
            adata,
            gene_sets,
            crash_at=crash_at,
            checkpoint_dir=ckpt,
            checkpoint_every=every,
            **options,
        )
    assert [p.name for p in ckpt.iterdir()] == [f"epoch-{every:06d}"]  # the newest only
    ran: list[int] = []
    resumed = fit(adata, gene_sets, ran=ran, checkpoint_dir=ckpt, checkpoint_every=every, **options)
    epochs_run = len(uninterrupted.history)
    assert ran == list(range(every, epochs_run))  # it went on from the checkpoint, not the start
    assert_same_fit(resumed, uninterrupted)
    assert not ckpt.exists()  # removed once training ended
    if options is BEST_BEFORE_THE_CHECKPOINT:
        history = uninterrupted.history
        assert history.attrs["best_epoch"] < every and not history.attrs["stopped_early"]
        assert history["n_active"].iloc[-1] < uninterrupted.active.sum()
    if options.get("patience") == 2:  # counting on from the checkpoint's count, it stops early
        history = uninterrupted.history
        assert history.attrs["stopped_early"] and history.attrs["best_epoch"] < every - 1
        assert epochs_run < options["epochs"]


def test_checkpoints_by_time(small_data, tmp_path):
    adata, gene_sets = small_data
    ckpt = tmp_path / "checkpoint"
    with pytest.raises(Crash):  # seconds=0: a checkpoint at the end of every epoch
        fit(
            adata,
            gene_sets,
            crash_at=3,
            checkpoint_dir=ckpt,
            checkpoint_every=None,
            checkpoint_seconds=0,
        )
    assert [p.name for p in ckpt.iterdir()] == ["epoch-000003"]
    with pytest.raises(Crash):  # an hour: none yet (the first run's checkpoint stays)
        fit(
            adata,
            gene_sets,
            crash_at=5,
            checkpoint_dir=ckpt,
            checkpoint_every=None,
            checkpoint_seconds=3600,
        )
    assert [p.name for p in ckpt.iterdir()] == ["epoch-000003"]
    with pytest.raises(ValueError, match="give checkpoint_every or checkpoint_seconds"):
        fit(adata, gene_sets, checkpoint_dir=ckpt, checkpoint_every=None)


def test_a_checkpoint_of_another_run_is_ignored(small_data, tmp_path, caplog):
    adata, gene_sets = small_data
    ckpt = tmp_path / "checkpoint"
    with pytest.raises(Crash):
        fit(adata, gene_sets, crash_at=2, checkpoint_dir=ckpt)
    with caplog.at_level(logging.INFO, logger="interpretable_ae.checkpoint"):
        other = fit(adata, gene_sets, lr=2e-3, checkpoint_dir=ckpt)
    assert "ignoring the checkpoint" in caplog.text
    assert_same_fit(other, fit(adata, gene_sets, lr=2e-3))
    with pytest.raises(Crash):
        fit(adata, gene_sets, crash_at=2, checkpoint_dir=ckpt)
    (next(ckpt.glob("epoch-*")) / "state.safetensors").write_bytes(b"torn")
    with caplog.at_level(logging.INFO, logger="interpretable_ae.checkpoint"):
        assert_same_fit(fit(adata, gene_sets, checkpoint_dir=ckpt), fit(adata, gene_sets))
    assert "ignoring the unreadable checkpoint" in caplog.text
    with pytest.raises(Crash):
        fit(adata, gene_sets, crash_at=2, checkpoint_dir=ckpt)
    changed = adata.copy()
    changed.X[0, 0] += 1.0  # other data: another run, too
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="interpretable_ae.checkpoint"):
        fit(changed, gene_sets, checkpoint_dir=ckpt)
    assert "ignoring the checkpoint" in caplog.text


CHILD = textwrap.dedent(
    """
    import logging, os, sys, time
    from interpretable_ae import InterpretableAutoencoder
    from interpretable_ae.simulate import simulate_counts

    logging.basicConfig(level=logging.INFO)
    adata, gene_sets = simulate_counts(n_cells=300, n_genes=120, n_sets=8, set_size=(5, 15))

    def hook(epoch):
        if epoch == 3 and os.environ.get("HANG"):
            print("hanging", flush=True)
            time.sleep(600)

    ae = InterpretableAutoencoder(adata, gene_sets, hidden=(32, 32), seed=0)
    ae.train(epochs=6, batch_size=32, decoder_solve="doubling", progress=False,
             on_epoch_end=hook, checkpoint_dir=sys.argv[1] or None, checkpoint_every=1)
    ae.save(sys.argv[2])
    """
)


@pytest.mark.slow  # three processes, ~7 s: the in-process resume tests above are the quick ones
def test_a_fit_killed_with_sigkill_resumes_bit_identical(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {"PYTHONPATH": str(LIB), "PATH": os.environ.get("PATH", ""), "OMP_NUM_THREADS": "1"}
    ckpt = tmp_path / "checkpoint"

    def run(checkpoint: str, out: str, **extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(script), checkpoint, out],
            env=env | extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    doomed = run(str(ckpt), str(tmp_path / "never"), HANG="1")
    deadline = time.monotonic() + 300
    while not (ckpt / "epoch-000003").is_dir():
        assert doomed.poll() is None, doomed.communicate()
        assert time.monotonic() < deadline, "no checkpoint after 300 s"
        time.sleep(0.2)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    assert doomed.returncode == -signal.SIGKILL
    logs = []
    for proc in (run(str(ckpt), str(tmp_path / "resumed")), run("", str(tmp_path / "straight"))):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        logs.append(err)
    assert "resuming from" in logs[0] and "(epoch 3)" in logs[0]
    assert "resuming from" not in logs[1]
    for name in ("model.safetensors", "config.json"):
        resumed = (tmp_path / "resumed" / name).read_bytes()
        assert resumed == (tmp_path / "straight" / name).read_bytes(), name
    assert not ckpt.exists()


# ---- the checkpoint files themselves -----------------------------------------------------


def _tensors() -> dict[str, torch.Tensor]:
    return {"w": torch.arange(6.0).reshape(2, 3), "empty": torch.zeros(0)}


def test_save_writes_atomically_and_keeps_only_the_newest(tmp_path):
    ckpt = Checkpointer(tmp_path / "a" / "b" / "checkpoint", every=1)  # parents created
    first = ckpt.save("run", 1, {"step": 4}, _tensors())
    stale = ckpt.directory / ".part-left-by-a-crash"
    stale.mkdir()
    (ckpt.directory / "notes.txt").write_text("not ours")
    second = ckpt.save("run", 2, {"step": 8}, _tensors())
    assert sorted(p.name for p in ckpt.directory.iterdir()) == ["epoch-000002", "notes.txt"]
    assert not first.exists() and second.name == "epoch-000002"
    meta, tensors = ckpt.load("run")
    assert meta["epoch"] == 2 and meta["step"] == 8 and meta["run"] == "run"
    assert all(torch.equal(tensors[k], v) for k, v in _tensors().items())
    assert ckpt.save("run", 2, {"step": 9}, _tensors()) == second  # the same epoch again
    assert ckpt.load("run")[0]["step"] == 9
    ckpt.clear()
    assert [p.name for p in ckpt.directory.iterdir()] == ["notes.txt"]  # not ours: kept
    (ckpt.directory / "notes.txt").unlink()
    ckpt.save("run", 3, {}, _tensors())
    (ckpt.directory / ".part-x").mkdir()
    ckpt.clear()
    assert not ckpt.directory.exists()  # nothing else in it: removed


def test_a_failed_save_leaves_the_previous_checkpoint_and_no_partial_one(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt", every=1)
    ckpt.save("run", 1, {}, _tensors())
    with pytest.raises(TypeError):
        ckpt.save("run", 2, {"bad": object()}, _tensors())  # not JSON: fails after the tensors
    assert [p.name for p in ckpt.directory.iterdir()] == ["epoch-000001"]
    assert ckpt.load("run")[0]["epoch"] == 1


def test_a_directory_without_both_files_is_not_a_checkpoint(tmp_path, caplog):
    ckpt = Checkpointer(tmp_path, every=1)
    ckpt.save("run", 1, {}, _tensors())
    newer = tmp_path / "epoch-000002"
    newer.mkdir()
    (newer / "state.json").write_text("{}")  # the tensors never arrived
    assert ckpt.load("run")[0]["epoch"] == 1
    assert ckpt.load("other run") is None
    with caplog.at_level(logging.INFO, logger="interpretable_ae.checkpoint"):
        assert Checkpointer(tmp_path / "none", every=1).load("run") is None
    assert caplog.text == ""


def test_fingerprints_see_values_not_key_order_and_digests_see_bytes():
    t = {"a": torch.ones(3), "b": torch.zeros(0)}
    same = fingerprint({"x": 1, "y": [1, 2]}, t)
    assert same == fingerprint({"y": [1, 2], "x": 1}, dict(reversed(t.items())))
    assert same != fingerprint({"x": 1, "y": [2, 1]}, t)
    assert same != fingerprint({"x": 1, "y": [1, 2]}, {"a": torch.ones(3) * 2, "b": t["b"]})
    assert fingerprint({"p": Path("a")}, {}) == fingerprint({"p": "a"}, {})  # str() of others
    assert array_digest(None) == ""
    assert array_digest(np.arange(3.0)) != array_digest(np.arange(3.0)[::-1])
    assert array_digest(np.arange(6.0).reshape(2, 3).T) == array_digest(
        np.ascontiguousarray(np.arange(6.0).reshape(2, 3).T)
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"every": 0}, r"^checkpoint_every must be >= 1 or None, got 0$"),
        ({"seconds": -1.0}, r"^checkpoint_seconds must be >= 0 or None, got -1.0$"),
        (
            {"every": None, "seconds": None},
            r"^give checkpoint_every or checkpoint_seconds \(or no checkpoint_dir\)$",
        ),
    ],
)
def test_bad_schedules_are_refused(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        Checkpointer(tmp_path, **options)


def test_optimizer_state_round_trips_tensors_and_numbers():
    """Adam keeps only tensors; an optimiser with numbers in its state (L-BFGS counts its
    iterations) round-trips as well."""
    model = torch.nn.Linear(3, 2)
    for make in (lambda p: torch.optim.Adam(p, lr=0.01), lambda p: torch.optim.LBFGS(p)):
        opt = make(model.parameters())

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = model(torch.ones(4, 3)).square().sum()
            loss.backward()
            return loss

        opt.step(closure)
        tensors, meta = optimizer_tensors(opt)
        fresh = make(model.parameters())
        restore_optimizer(fresh, tensors, meta)
        before, after = opt.state_dict(), fresh.state_dict()
        assert before["param_groups"] == after["param_groups"]
        assert before["state"].keys() == after["state"].keys()
        for pid, state in before["state"].items():
            assert state.keys() == after["state"][pid].keys()
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    assert torch.equal(value, after["state"][pid][key]), key
                elif not isinstance(value, list):
                    assert value == after["state"][pid][key], key
    assert any(not isinstance(v, torch.Tensor) for v in before["state"][0].values())


def test_a_checkpoint_is_written_beside_its_place_and_renamed(tmp_path, monkeypatch):
    """The temporary directory is in the checkpoint directory (a rename within one file
    system is atomic) and named .part-* (what a later save or clear removes)."""
    renamed = []
    rename = os.rename

    def recording(src, dst):
        renamed.append((Path(src), Path(dst)))
        rename(src, dst)

    monkeypatch.setattr(os, "rename", recording)
    ckpt = Checkpointer(tmp_path / "ckpt", every=1)
    final = ckpt.save("run", 1, {}, _tensors())
    ((src, dst),) = renamed
    assert src.parent == ckpt.directory and src.name.startswith(".part-") and dst == final
