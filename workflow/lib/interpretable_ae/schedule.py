"""When a long loop saves its state (no torch: f-scLVM's loop uses it too)."""

from __future__ import annotations

import time


class SaveSchedule:
    """When a loop saves its state: every ``every`` steps, or at the first step ``seconds``
    or more after the last save (either may be None). For dataclasses with the fields
    ``every``, ``seconds`` and ``last`` (a ``time.monotonic()`` value)."""

    every: int | None
    seconds: float | None
    last: float

    def due(self, count: int) -> bool:
        """Whether to save after ``count`` steps; if so, the clock restarts.

        Parameters
        ----------
        count
            Steps (epochs, iterations) done.

        Returns
        -------
        bool
        """
        now = time.monotonic()
        if (self.every and count % self.every == 0) or (
            self.seconds is not None and now - self.last >= self.seconds
        ):
            self.last = now
            return True
        return False
