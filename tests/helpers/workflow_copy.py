"""A copy of the repository's workflow in a scratch directory, for tests that run it."""

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_ITEMS = ("Snakefile", "workflow", "config", "envs")


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow's files (not results or resources) into ``dest``; return it."""
    for item in WORKFLOW_ITEMS:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / item)
    return dest
