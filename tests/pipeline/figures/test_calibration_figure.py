"""The calibration figure: groups and terms against their null bands, replicates as dots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from helpers.figures import assert_image, assert_pdf, has_colour  # noqa: E402
from iae_pipeline.analyses.calibration import calibrate  # noqa: E402
from iae_pipeline.analyses.null import NullSettings  # noqa: E402
from iae_pipeline.figures.calibration import SIGNIFICANT, plot_calibration  # noqa: E402
from iae_pipeline.figures.style import save_figure  # noqa: E402

TERMS = ["IFN_A", "IFN_B", *(f"OTHER_{i}" for i in range(8))]


@pytest.fixture(scope="module")
def result():
    mask = np.zeros((100, len(TERMS)))
    mask[:20, 0] = mask[:15, 1] = 1  # the two IFN terms overlap: one group
    for i in range(8):
        mask[20 + 10 * i : 30 + 10 * i, 2 + i] = 1
    rng = np.random.default_rng(0)

    def table(values, column):
        return pd.DataFrame(
            [{column: i, "term": t, "kind": "annotated", "response_share": v}
             for i, row in enumerate(values) for t, v in zip(TERMS, row, strict=True)]
        )  # fmt: skip

    real = np.abs(rng.normal(0, 0.02, (4, len(TERMS))))
    real[[0, 1, 2, 3], [0, 1, 0, 0]] += 0.6
    null = np.abs(rng.normal(0, 0.02, (150, len(TERMS))))
    return calibrate(table(real, "replicate"), table(null, "fit"), mask, TERMS,
                     settings=NullSettings(min_null=50))  # fmt: skip


def test_the_figure_draws_groups_first_with_their_bands(tmp_path, result) -> None:
    fig, notes = plot_calibration(result.groups, result.terms, result.values, top_n=5,
                                  title="demo")  # fmt: skip
    assert notes == []
    groups_ax, terms_ax = fig.axes[:2]
    assert groups_ax.get_title().startswith("Term groups (top 5 of 9)")
    labels = [t.get_text() for t in groups_ax.get_yticklabels()]
    assert labels[0] == "IFN_A (+1)"  # the first group, drawn on top
    texts = " ".join(t.get_text() for t in groups_ax.texts)
    assert "IFN_A\nleads 3/4" in texts  # the split, not one term's rank as settled
    assert "leads its group 1/4" in " ".join(t.get_text() for t in terms_ax.texts)
    dots = np.concatenate([c.get_offsets()[:, 0] for c in groups_ax.collections])
    assert len(dots) == 5 * 4 + 5  # every replicate of every group, and the means
    save_figure(fig, tmp_path / "c.png", tmp_path / "c.pdf")
    assert has_colour(assert_image(tmp_path / "c.png"), SIGNIFICANT)  # the group passed
    assert_pdf(tmp_path / "c.pdf")


def test_nothing_to_calibrate_is_said(result) -> None:
    fig, notes = plot_calibration(result.groups.iloc[:0], result.terms, result.values)
    assert notes and "no annotated factor" in notes[0]
