"""What a figure shows, read back from its artists: tests compare it with the data drawn."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle


def record_saved_figures(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Figures saved from now on (any ``Figure.savefig``), each once, in saving order: a
    workflow script's figure, to compare with the tables it wrote."""
    saved: list[Figure] = []
    original = Figure.savefig

    def savefig(self: Figure, *args, **kwargs):
        if not any(self is f for f in saved):
            saved.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved


def bars(ax: Axes) -> list[Rectangle]:
    """The bars of a bar chart (not the axes' background), in drawing order."""
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def points(ax: Axes) -> np.ndarray:
    """Every scatter point of ``ax`` (n x 2, data coordinates)."""
    offsets = [np.asarray(c.get_offsets()) for c in ax.collections if len(c.get_offsets())]
    return np.concatenate(offsets) if offsets else np.empty((0, 2))


def same_points(a: np.ndarray, b: np.ndarray, rtol: float = 1e-6) -> bool:
    """Whether two point sets are equal up to order (rows sorted lexicographically)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    return bool(np.allclose(a[np.lexsort(a.T[::-1])], b[np.lexsort(b.T[::-1])], rtol=rtol))
