"""Figures 1-3: term lookup, valid image files with content, absent terms reported."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402
from PIL import Image  # noqa: E402

from helpers.figures import bars, points, record_saved_figures  # noqa: E402
from helpers.script_runner import call_main  # noqa: E402
from iae_pipeline.contract import (
    factor_columns,
    make_factor_anndata,  # noqa: E402
    read_factors,
)
from iae_pipeline.figures.plots import (
    category_colors,
    lookup_terms,
    plot_accuracy_bars,
    plot_group_loadings,
    plot_term_scatter,
    resolve_term,
    save_figure,
    select_terms,
    subsample_cells,
)
from iae_pipeline.score.scoring import combine_replicates, score_runs  # noqa: E402

IFN = "REACTOME_INTERFERON_SIGNALING"
BCR = "REACTOME_SIGNALING_BY_THE_B_CELL_RECEPTOR_BCR"
GAMMA = "HALLMARK_INTERFERON_GAMMA_RESPONSE"
CELL_TYPES = ["CD14+ Monocyte", "CD19+ B", "CD8+ Cytotoxic T", "Dendritic"]


def fake_factors(model: str, ifn_signal: float, seed: int = 0, n_dense: int = 0):
    """Loadings where IFN separates the condition (by ``ifn_signal``), BCR marks B cells and
    the gamma response is switched off."""
    rng = np.random.default_rng(seed)
    n = 160
    stim = np.arange(n) % 2 == 1
    cell_type = np.array(CELL_TYPES)[np.arange(n) // 2 % 4]
    obs = pd.DataFrame(
        {
            "condition": pd.Categorical(np.where(stim, "stimulated", "control")),
            "cell_type": pd.Categorical(cell_type),
        },
        index=[f"cell{i}" for i in range(n)],
    )
    names = [IFN, BCR, GAMMA, "REACTOME_OTHER"] + [f"dense_{k}" for k in range(n_dense)]
    loadings = rng.normal(size=(n, len(names)))
    loadings[:, 0] += ifn_signal * stim
    loadings[:, 1] += 2.0 * (cell_type == "CD19+ B")
    loadings[:, 2] = 0.0
    if n_dense:
        loadings[:, 4] += 3.0 * stim
    weights = rng.normal(size=(20, len(names)))
    weights[:, 2] = 0.0
    return make_factor_anndata(
        loadings,
        obs,
        names,
        ["annotated"] * 4 + ["dense"] * n_dense,
        weights,
        [f"g{i}" for i in range(20)],
        [True, True, False, True] + [True] * n_dense,
        {"model": model, "setup": "test", "seed": seed, "seconds": 1.0},
    )


def assert_image(path: Path, min_ink: float = 0.01) -> np.ndarray:
    """A readable 300-dpi PNG with drawn content; returns its RGB pixels."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert round(im.info["dpi"][0]) == 300
        pixels = np.asarray(im.convert("RGB"), dtype=float) / 255
    assert min(pixels.shape[:2]) > 300
    ink = (pixels.min(axis=2) < 0.9).mean()
    assert ink > min_ink, f"{path} is almost blank ({ink:.3%} ink)"
    return pixels


def has_colour(pixels: np.ndarray, colour: str, tol: float = 0.06) -> bool:
    return bool((np.abs(pixels - np.array(to_rgb(colour))).max(axis=2) < tol).any())


def assert_pdf(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 2000


def test_term_lookup_by_display_name():
    names = [IFN, BCR, "Interferon Signaling", "Signaling by the B Cell Receptor (BCR)"]
    assert resolve_term(names, IFN) == (IFN, ())
    assert resolve_term(names, "INTERFERON SIGNALING") == (IFN, ("Interferon Signaling",))
    assert resolve_term(names[2:], "INTERFERON SIGNALING")[0] == "Interferon Signaling"
    assert resolve_term(names[2:], BCR)[0] == "Signaling by the B Cell Receptor (BCR)"
    assert resolve_term(names[:2], "SIGNALING BY THE B CELL RECEPTOR (BCR)")[0] == BCR
    assert resolve_term(names, "INTERFERON") == (None, ())
    found = lookup_terms(fake_factors("ae", 2.0), ["interferon signaling", GAMMA, "NOPE"])
    assert [f.term for f in found] == [IFN, GAMMA, None]
    assert [f.usable for f in found] == [True, True, False]
    assert found[0].note == "" and "switched off" in found[1].note and "absent" in found[2].note


def test_select_terms_regex_or_list():
    names = [IFN, BCR, GAMMA, "Interferon alpha/beta signaling"]
    assert select_terms(names, "interferon") == ([IFN, GAMMA, names[3]], [])
    assert select_terms(names, [BCR, "NOPE", "interferon signaling"]) == ([BCR, IFN], ["NOPE"])
    with pytest.raises(ValueError, match="regular expression"):
        select_terms(names, "INTERFERON(")


def test_category_colours_are_stable_and_honour_uns():
    a = category_colors(["control", "stimulated"])
    assert a == category_colors(["control", "stimulated"]) and len(set(a.values())) == 2
    uns = {"condition_colors": ["#111111", "#222222"]}
    assert category_colors(["control", "stimulated"], uns, "condition")["control"] == "#111111"
    assert len(set(category_colors([f"t{i}" for i in range(15)]).values())) == 15


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


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    """Two replicates (seeds) of each model, scored as the workflow does."""
    tables = []
    for rep in (0, 1):
        runs = {
            "ae": fake_factors("ae", 3.0, seed=1 + 10 * rep),
            "slalom": fake_factors("slalom", 2.0, seed=2 + 10 * rep),
            "slalom_dense": fake_factors("slalom_dense", 0.3, seed=3 + 10 * rep, n_dense=2),
        }
        tables.append(score_runs(runs, "demo", cv_folds=3, seed=0).assign(replicate=rep))
    return combine_replicates(tables)


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


def assert_boxes_show(ax, adata, term: str, groups: list[str]) -> None:
    """Figure 3's panel of ``term``: a box per cell type and group, whose quartiles are those
    of the group's cells, in the group's colour, with those cells' loadings as points."""
    colours = category_colors(groups)
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
    assert len(boxes) == len(clouds) == len(CELL_TYPES) * len(groups)
    for k, (box, cloud) in enumerate(zip(boxes, clouds, strict=True)):
        kind, group = CELL_TYPES[k // len(groups)], groups[k % len(groups)]
        values = x[(cell_type == kind) & (condition == group)]
        heights = box.get_path().vertices[:, 1]
        assert [heights.min(), heights.max()] == pytest.approx(np.percentile(values, [25, 75]))
        assert box.get_facecolor()[:3] == pytest.approx(to_rgb(colours[group]))
        assert sorted(cloud[:, 1]) == pytest.approx(sorted(values))


def test_figure3_groups(tmp_path):
    adata = fake_factors("ae", 2.5)
    groups = ["control", "stimulated"]
    fig, notes = plot_group_loadings(
        adata, [IFN, BCR], CELL_TYPES, "condition", groups, title="demo"
    )
    assert notes == []
    for ax, term in zip(fig.axes, [IFN, BCR], strict=True):
        assert_boxes_show(ax, adata, term, groups)
    save_figure(fig, tmp_path / "f3.png", tmp_path / "f3.pdf")
    assert_image(tmp_path / "f3.png")
    assert_pdf(tmp_path / "f3.pdf")
    fig, notes = plot_group_loadings(
        adata, ["NOPE", IFN], ["cd19+ b", "Platelet"], "condition", ["control", "severe"]
    )
    assert len(notes) == 3  # absent term, absent cell type, absent group
    with pytest.raises(ValueError, match="group_key"):
        plot_group_loadings(adata, [IFN, BCR], CELL_TYPES, "group")


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
    for ax, term in zip(fig3.axes, [IFN, GAMMA], strict=True):
        assert_boxes_show(ax, adata, term, ["control", "stimulated"])
    for pdf in ("1a.pdf", "1b.pdf", "2.pdf", "3.pdf"):
        assert_pdf(tmp_path / pdf)
    assert not list(tmp_path.glob(".*tmp*"))  # temporary files were renamed away
