"""interpretable_ae.schedule: when the autoencoder's and f-scLVM's loops save their state."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from iae_pipeline.fit.slalom import _Checkpoint
from interpretable_ae.checkpoint import Checkpointer
from interpretable_ae.schedule import SaveSchedule


@dataclass
class Clock(SaveSchedule):
    every: int | None = None
    seconds: float | None = None
    last: float = field(default_factory=time.monotonic)


def test_every_n_steps() -> None:
    clock = Clock(every=3)
    assert [n for n in range(1, 10) if clock.due(n)] == [3, 6, 9]


def test_after_enough_seconds_and_the_clock_restarts() -> None:
    clock = Clock(seconds=60.0)
    assert not clock.due(1)
    clock.last -= 61.0  # a minute has passed
    assert clock.due(2)
    assert not clock.due(3), "a save restarts the clock"


def test_both_loops_use_it(tmp_path) -> None:
    ae = Checkpointer(tmp_path / "ae", every=2)
    slalom = _Checkpoint(tmp_path / "slalom", "key", every=None, seconds=0.0)
    assert isinstance(ae, SaveSchedule) and isinstance(slalom, SaveSchedule)
    assert [ae.due(n) for n in (1, 2)] == [False, True]
    assert slalom.due(7), "seconds=0: due at every iteration"
