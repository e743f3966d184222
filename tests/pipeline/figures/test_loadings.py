"""Figures 1 and 3: loadings per cell, absent and switched-off terms reported, large data
subsampled and read lazily."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers.drawn import assert_boxes_show  # noqa: E402
from helpers.figures import (  # noqa: E402
    BCR,
    CELL_TYPES,
    GAMMA,
    IFN,
    assert_image,
    assert_pdf,
    fake_factors,
    has_colour,
)
from iae_pipeline.contract import factor_columns, read_factors  # noqa: E402
from iae_pipeline.figures.loadings import (  # noqa: E402
    plot_group_loadings,
    plot_term_scatter,
    subsample_cells,
)
from iae_pipeline.figures.style import category_colors, save_figure  # noqa: E402


def test_figure1_both_terms(tmp_path):
    adata = fake_factors("ae", 2.5)
    fig, notes = plot_term_scatter(adata, ["INTERFERON SIGNALING", BCR], "condition", title="t")
    assert notes == []
    save_figure(fig, tmp_path / "f.png", tmp_path / "f.pdf")
    pixels = assert_image(tmp_path / "f.png")
    colours = category_colors(["control", "stimulated"])
    assert has_colour(pixels, colours["control"]) and has_colour(pixels, colours["stimulated"])
    assert_pdf(tmp_path / "f.pdf")


def test_figure1_absent_and_switched_off_terms_are_reported(tmp_path):
    adata = fake_factors("ae", 2.5)
    fig, notes = plot_term_scatter(adata, ["NOPE", GAMMA], "cell_type")
    assert any("absent" in n for n in notes) and any("switched off" in n for n in notes)
    save_figure(fig, tmp_path / "one.png")
    assert_image(tmp_path / "one.png")
    fig, notes = plot_term_scatter(adata, ["NOPE", "NADA"], "condition")
    assert len(notes) == 2
    save_figure(fig, tmp_path / "none.png")
    assert_image(tmp_path / "none.png", min_ink=0.001)
    with pytest.raises(ValueError, match="exactly two"):
        plot_term_scatter(adata, [IFN], "condition")
    with pytest.raises(ValueError, match="obs\\['group'\\]"):
        plot_term_scatter(adata, [IFN, BCR], "group")


def test_figure1_subsamples_large_data_and_reads_lazily(tmp_path):
    adata = fake_factors("ae", 2.5)
    fig, notes = plot_term_scatter(adata, [IFN, BCR], "condition", max_cells=50, seed=3)
    assert notes == ["50 of 160 cells drawn (a random subsample, seed 3)."]
    drawn = [c for c in fig.axes[0].collections if len(c.get_offsets())][0].get_offsets()
    assert len(drawn) == 50
    keep = subsample_cells(160, 50, 3)
    assert set(map(tuple, drawn.data)) == set(map(tuple, adata[keep, [IFN, BCR]].X))
    assert plot_term_scatter(adata, [IFN, BCR], "condition", max_cells=None)[1] == []
    path = tmp_path / "f.h5ad"
    adata.write_h5ad(path)
    lazy = read_factors(path, backed=True)
    assert lazy.isbacked
    assert np.array_equal(factor_columns(lazy, [BCR, IFN]), adata[:, [BCR, IFN]].X)
    assert np.array_equal(factor_columns(adata, [BCR, IFN]), adata[:, [BCR, IFN]].X)
    fig, notes = plot_group_loadings(lazy, [IFN, BCR], CELL_TYPES, "condition")
    assert notes == []
    (tmp_path / "bad.h5ad").write_text("no")
    with pytest.raises(ValueError, match="bad.h5ad"):
        read_factors(tmp_path / "bad.h5ad", backed=True)


def test_figure3_groups(tmp_path):
    adata = fake_factors("ae", 2.5)
    groups = ["control", "stimulated"]
    fig, notes = plot_group_loadings(
        adata, [IFN, BCR], CELL_TYPES, "condition", groups, title="demo"
    )
    assert notes == []
    colours = category_colors(groups)
    for ax, term in zip(fig.axes, [IFN, BCR], strict=True):
        assert_boxes_show(ax, adata, term, CELL_TYPES, groups, colours)
    save_figure(fig, tmp_path / "f3.png", tmp_path / "f3.pdf")
    assert_image(tmp_path / "f3.png")
    assert_pdf(tmp_path / "f3.pdf")
    fig, notes = plot_group_loadings(
        adata, ["NOPE", IFN], ["cd19+ b", "Platelet"], "condition", ["control", "severe"]
    )
    assert len(notes) == 3  # absent term, absent cell type, absent group
    with pytest.raises(ValueError, match="group_key"):
        plot_group_loadings(adata, [IFN, BCR], CELL_TYPES, "group")
