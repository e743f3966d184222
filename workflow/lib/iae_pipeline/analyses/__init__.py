"""The analyses beyond the paper, each on the prepared data and the factor files: term
claims calibrated against random masks and permuted labels, the paper's claims judged,
gene-set refinement, donor-level tests and classical baselines."""
