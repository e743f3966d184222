"""Helpers of the tests: running workflow scripts, copying the workflow, a SLURM cluster,
and the real test files."""
