"""The figure rules' scripts write every figure as PNG and PDF, via temporary files."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from helpers.drawn import assert_boxes_show, bars, points, record_saved_figures  # noqa: E402
from helpers.figures import (  # noqa: E402
    CELL_TYPES,
    GAMMA,
    IFN,
    assert_image,
    assert_pdf,
    fake_factors,
)
from helpers.script_runner import call_main  # noqa: E402
from iae_pipeline.figures.style import category_colors  # noqa: E402


def test_figure_scripts(tmp_path, scores, monkeypatch):
    factors = tmp_path / "ae.h5ad"
    adata = fake_factors("ae", 2.5)
    adata.write_h5ad(factors)
    saved = record_saved_figures(monkeypatch)
    out1 = {
        "by_condition": tmp_path / "1a.png",
        "by_cell_type": tmp_path / "1b.png",
        "by_condition_pdf": tmp_path / "1a.pdf",
        "by_cell_type_pdf": tmp_path / "1b.pdf",
    }
    call_main(
        "figure1",
        input={"factors": str(factors)},
        params={
            "terms": ["INTERFERON SIGNALING", "NOPE"],
            "dataset": "demo",
            "seed": 0,
            "max_cells": 100,
        },
        output={k: str(v) for k, v in out1.items()},
    )
    score_file = tmp_path / "scores.tsv"
    scores.to_csv(score_file, sep="\t", index=False)
    call_main(
        "figure2",
        input={"scores": str(score_file)},
        params={
            "terms": "INTERFERON",
            "models": ["ae", "slalom", "slalom_dense"],
            "left_out": ["other"],
        },
        output={"png": str(tmp_path / "2.png"), "pdf": str(tmp_path / "2.pdf")},
    )
    call_main(
        "figure3",
        input={"factors": str(factors)},
        params={
            "terms": [IFN, GAMMA],
            "cell_types": CELL_TYPES,
            "group_key": "condition",
            "groups": ["control", "stimulated"],
        },
        output={"png": str(tmp_path / "3.png"), "pdf": str(tmp_path / "3.pdf")},
    )
    for png in ("1a.png", "1b.png", "2.png", "3.png"):
        assert_image(tmp_path / png)
    # what the scripts drew: figure 1's cells at their IFN loadings (its other term is absent:
    # one axis), figure 2's bars at the mean accuracies, figure 3's boxes of the groups'
    # loadings (all 0 for the switched-off term)
    fig1a, _, fig2, fig3 = saved
    shown = points(fig1a.axes[0])[:, 0]
    assert len(shown) == 100 and set(shown) <= set(adata[:, IFN].X.ravel().astype(float))
    ifn = scores[(scores["term"] == IFN)].groupby("model")["accuracy_train"].mean()
    widths = sorted(b.get_width() for b in bars(fig2.axes[0]) if b.get_width() > 0)
    assert set(ifn.round(9)) <= set(np.round(widths, 9))
    groups = ["control", "stimulated"]
    for ax, term in zip(fig3.axes, [IFN, GAMMA], strict=True):
        assert_boxes_show(ax, adata, term, CELL_TYPES, groups, category_colors(groups))
    for pdf in ("1a.pdf", "1b.pdf", "2.pdf", "3.pdf"):
        assert_pdf(tmp_path / pdf)
    assert not list(tmp_path.glob(".*tmp*"))  # temporary files were renamed away
