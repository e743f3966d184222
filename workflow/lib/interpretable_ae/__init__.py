"""Interpretable autoencoder with annotations of gene sets (Rybakov et al. 2020), and
the helpers of the workflow that reproduces the paper: gene sets, data readers,
preprocessing, the f-scLVM (slalom) adapter, scoring and plots.

Submodules are imported on demand, so that e.g. reading a GMT does not load torch.
"""

__version__ = "0.1.0"
