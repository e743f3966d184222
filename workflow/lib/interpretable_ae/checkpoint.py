"""Resumable training: the whole training state, written atomically every few epochs.

A checkpoint is a directory ``epoch-NNNNNN/`` holding ``state.safetensors`` (the
network, Adam's moments, the random-number generators' states and, with early stopping,
the best weights so far) and ``state.json`` (epoch, step, history, Adam's settings and the
run's fingerprint). It is written under a temporary name and renamed into place, so a
killed process leaves either the previous checkpoint or the new one, never half of one.
A rerun with the same fingerprint (training options, initial weights, data statistics,
genes, terms and device) continues from the newest checkpoint and ends bit-identical to a
run that was never interrupted (given the same number of torch threads, which the matrix
products' results depend on); a checkpoint with another fingerprint is ignored (and
replaced).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .schedule import SaveSchedule

log = logging.getLogger(__name__)

STATE, META = "state.safetensors", "state.json"
FORMAT = 1


def fingerprint(identity: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> str:
    """The sha256 of a JSON-able identity and the bytes of tensors: what a checkpoint belongs to.

    Parameters
    ----------
    identity
        Options, shapes and data statistics, JSON-able.
    tensors
        E.g. the initial weights.

    Returns
    -------
    str
        The hex digest.
    """
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def array_digest(values: np.ndarray | None) -> str:
    """The sha256 of an array's bytes, for data statistics in an identity.

    Parameters
    ----------
    values
        The array, or ``None``.

    Returns
    -------
    str
        The hex digest; ``""`` for ``None``.
    """
    return (
        "" if values is None else hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()
    )


@dataclass
class Checkpointer(SaveSchedule):
    """Writes and finds checkpoints in ``directory``: after every ``every`` epochs, or
    after the first epoch that ends ``seconds`` or more after the last checkpoint (either
    may be None)."""

    directory: Path
    every: int | None = 1
    seconds: float | None = None
    last: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if self.every is not None and self.every < 1:
            raise ValueError(f"checkpoint_every must be >= 1 or None, got {self.every}")
        if self.seconds is not None and not self.seconds >= 0:
            raise ValueError(f"checkpoint_seconds must be >= 0 or None, got {self.seconds}")
        if self.every is None and self.seconds is None:
            raise ValueError("give checkpoint_every or checkpoint_seconds (or no checkpoint_dir)")

    def _saved(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(
            p
            for p in self.directory.glob("epoch-*")
            if (p / META).is_file() and (p / STATE).is_file()
        )

    def load(self, run: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
        """The newest checkpoint of a run.

        Parameters
        ----------
        run
            The run's :func:`fingerprint`.

        Returns
        -------
        tuple of (dict, dict of str to torch.Tensor) or None
            ``(meta, tensors)``; ``None`` when there is none. A checkpoint of another run is
            ignored, with one log line.
        """
        saved = self._saved()
        if not saved:
            return None
        try:
            meta = json.loads((saved[-1] / META).read_text())
            tensors = load_file(str(saved[-1] / STATE))
        except (OSError, ValueError, RuntimeError, SafetensorError) as err:  # e.g. a power cut
            log.warning("ignoring the unreadable checkpoint %s (%s); starting over", saved[-1], err)
            return None
        if meta.get("format") != FORMAT or meta.get("run") != run:
            log.info(
                "ignoring the checkpoint in %s: it is of another run (other options, data or "
                "initial weights); starting from the beginning",
                saved[-1],
            )
            return None
        log.info("resuming from %s (epoch %d)", saved[-1], meta["epoch"])
        return meta, tensors

    def save(
        self, run: str, epoch: int, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
    ) -> Path:
        """Write the checkpoint after an epoch, atomically; older ones are removed.

        Parameters
        ----------
        run
            The run's :func:`fingerprint`.
        epoch
            Epochs done.
        meta
            The JSON-able rest of the state.
        tensors
            The weights, the optimiser's state, the random generators'.

        Returns
        -------
        pathlib.Path
            The checkpoint's directory.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"epoch-{epoch:06d}"
        tmp = Path(tempfile.mkdtemp(prefix=".part-", dir=self.directory))
        try:
            state = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            save_file(state, str(tmp / STATE))
            text = json.dumps({"format": FORMAT, "run": run, "epoch": epoch, **meta}, indent=1)
            (tmp / META).write_text(text)
            for name in (STATE, META):
                with open(tmp / name, "rb") as fh:
                    os.fsync(fh.fileno())
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in self.directory.iterdir():
            if old != final and (old.name.startswith("epoch-") or old.name.startswith(".part-")):
                shutil.rmtree(old, ignore_errors=True)
        return final

    def clear(self) -> None:
        """Remove every checkpoint, and the directory when nothing else is in it."""
        if not self.directory.is_dir():
            return
        for old in self.directory.iterdir():
            if old.name.startswith("epoch-") or old.name.startswith(".part-"):
                shutil.rmtree(old, ignore_errors=True)
        if not any(self.directory.iterdir()):
            self.directory.rmdir()


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Adam's state as flat tensors plus its JSON-able rest.

    Parameters
    ----------
    opt
        The optimiser.

    Returns
    -------
    tensors : dict of str to torch.Tensor
        ``opt.<param>.<key>``.
    meta : dict
        Everything else (step counts, hyper-parameters).
    """
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def restore_optimizer(
    opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> None:
    """Restore an optimiser's state written by :func:`optimizer_tensors`.

    Parameters
    ----------
    opt
        The optimiser, built for the same parameters.
    tensors, meta
        :func:`optimizer_tensors`' two parts.
    """
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
