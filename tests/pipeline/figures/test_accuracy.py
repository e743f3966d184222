"""Figure 2: a bar per model at the mean over replicates, every replicate a point."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers.figures import (  # noqa: E402
    IFN,
    assert_image,
    assert_pdf,
    has_colour,
)
from iae_pipeline.figures.accuracy import plot_accuracy_bars  # noqa: E402
from iae_pipeline.figures.style import category_colors, save_figure  # noqa: E402


def test_scores_put_the_planted_term_on_top(scores):
    top = scores[scores["replicate"] == 0].sort_values("rank").groupby("model").head(1)
    top = top.set_index("model")["term"]
    assert top["ae"] == IFN and top["slalom"] == IFN
    assert top["slalom_dense"] == "dense_0"  # the dense factor took the signal
    assert scores["accuracy_train"].between(0, 1).all() and scores["auroc"].between(0, 1).all()


def test_figure2_bars(tmp_path, scores):
    models = ["ae", "slalom", "slalom_dense"]
    labels = {"ae": "Autoencoder", "slalom": "f-scLVM", "slalom_dense": "f-scLVM, 3 dense"}
    fig, notes = plot_accuracy_bars(scores, "INTERFERON", models, labels, title="demo")
    assert notes == []
    save_figure(fig, tmp_path / "f2.png", tmp_path / "f2.pdf")
    pixels = assert_image(tmp_path / "f2.png")
    for colour in category_colors(models).values():
        assert has_colour(pixels, colour)
    assert_pdf(tmp_path / "f2.pdf")
    fig, notes = plot_accuracy_bars(scores, [IFN, "NOPE"], [*models, "gone"], labels)
    assert any("NOPE" in n for n in notes) and any("gone" in n for n in notes)
    fig, notes = plot_accuracy_bars(scores, [IFN], models[:1], extra_notes=["left out: x."])
    assert notes == ["left out: x."]
    fig, notes = plot_accuracy_bars(scores, "NO_SUCH_TERM", models, include_unannotated=False)
    assert any("nothing to draw" in n for n in notes)


def test_figure2_draws_every_replicate(scores):
    """A bar per model at the mean over replicates, one point per replicate on it."""
    fig, _ = plot_accuracy_bars(scores, [IFN], ["ae", "slalom"], include_unannotated=False)
    ax = fig.axes[0]
    bars = sorted(ax.patches, key=lambda b: b.get_y())[:2]
    points = [c.get_offsets() for c in ax.collections if len(c.get_offsets())]
    ifn = scores[(scores["term"] == IFN) & scores["model"].isin(["ae", "slalom"])]
    expected = ifn.groupby("model", sort=False)["accuracy_train"].mean()
    assert [b.get_width() for b in bars] == pytest.approx(list(expected))
    drawn = np.concatenate([p[:, 0] for p in points])
    assert sorted(drawn) == pytest.approx(sorted(ifn["accuracy_train"])) and len(drawn) == 4
    single = plot_accuracy_bars(scores[scores["replicate"] == 0], [IFN], ["ae"])[0]
    assert not any(len(c.get_offsets()) for c in single.axes[0].collections)
