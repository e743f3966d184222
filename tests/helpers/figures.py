"""Helpers of the figure tests: factor files with a known signal, and checks of images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from PIL import Image

from iae_pipeline.contract import make_factor_anndata

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
