"""Each model's adapter: fit on prepared data, write the factor file
(:mod:`iae_pipeline.contract`), checkpoint and resume."""
