"""Helpers of the tests: running workflow scripts, copying the workflow, a SLURM cluster,
and the real test files."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
LIB = ROOT / "workflow" / "lib"
