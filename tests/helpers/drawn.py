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


def assert_boxes_show(
    ax: Axes, adata, term: str, cell_types: list[str], groups: list[str], colours: dict
) -> None:
    """Figure 3's panel of ``term``: a box per cell type and group (obs 'cell_type' and
    'condition'), whose quartiles are those of the group's cells, in the group's colour,
    with those cells' loadings as points."""
    from matplotlib.colors import to_rgb
    from matplotlib.patches import PathPatch

    cell_type, condition = adata.obs["cell_type"].to_numpy(), adata.obs["condition"].to_numpy()
    x = adata[:, term].X.ravel()
    boxes = sorted(
        (p for p in ax.patches if isinstance(p, PathPatch)),
        key=lambda p: p.get_path().vertices[:, 0].mean(),
    )
    clouds = sorted(
        (np.asarray(c.get_offsets()) for c in ax.collections if len(c.get_offsets())),
        key=lambda o: o[:, 0].mean(),
    )
    assert len(boxes) == len(clouds) == len(cell_types) * len(groups)
    for k, (box, cloud) in enumerate(zip(boxes, clouds, strict=True)):
        kind, group = cell_types[k // len(groups)], groups[k % len(groups)]
        values = x[(cell_type == kind) & (condition == group)]
        heights = box.get_path().vertices[:, 1]
        assert [heights.min(), heights.max()] == pytest.approx(np.percentile(values, [25, 75]))
        assert box.get_facecolor()[:3] == pytest.approx(to_rgb(colours[group]))
        assert sorted(cloud[:, 1]) == pytest.approx(sorted(values))
