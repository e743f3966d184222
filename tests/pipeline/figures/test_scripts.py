"""The figure rules' scripts write every figure as PNG and PDF, via temporary files."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")


from helpers.figures import (  # noqa: E402
    CELL_TYPES,
    GAMMA,
    IFN,
    assert_image,
    assert_pdf,
    fake_factors,
)
from helpers.script_runner import call_main  # noqa: E402


def test_figure_scripts(tmp_path, scores):
    factors = tmp_path / "ae.h5ad"
    fake_factors("ae", 2.5).write_h5ad(factors)
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
    for pdf in ("1a.pdf", "1b.pdf", "2.pdf", "3.pdf"):
        assert_pdf(tmp_path / pdf)
    assert not list(tmp_path.glob(".*tmp*"))  # temporary files were renamed away
