"""The figures, one module per family over one shared style.

- :mod:`.style`: palette, fonts, notes under a figure, saving via a temporary file;
- :mod:`.terms`: finding the config's terms among a model's factors;
- :mod:`.loadings`: Figure 1 (two terms' loadings by condition or cell type) and Figure 3
  (loadings per cell type and group);
- :mod:`.accuracy`: Figure 2 (accuracy per term, models side by side, every replicate);
- :mod:`.analyses`: the analyses beyond the paper (refinement, donor-level tests,
  baselines).
"""
