"""The rules' code inputs: derived from each script's imports, never listed by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import LIB, ROOT
from iae_pipeline.sources import script_sources

SCRIPTS = sorted((ROOT / "workflow" / "scripts").glob("*.py"))


def names(script: str) -> set[str]:
    paths = script_sources(ROOT / "workflow" / "scripts" / f"{script}.py", LIB)
    return {str(Path(p).relative_to(LIB)) for p in paths}


def test_a_script_depends_on_what_it_imports_and_nothing_else():
    fit = names("fit_autoencoder")
    assert {"interpretable_ae/model.py", "interpretable_ae/training.py",
            "interpretable_ae/prox.py", "iae_pipeline/fit/autoencoder.py"} <= fit  # fmt: skip
    assert "iae_pipeline/fit/slalom.py" not in fit
    figure = names("figure2")
    assert "iae_pipeline/figures/plots.py" in figure
    assert not {"interpretable_ae/model.py", "interpretable_ae/training.py"} & figure


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_script_uses_the_runner_and_finds_only_library_files(script: Path):
    found = [Path(p) for p in script_sources(script, LIB)]
    assert LIB / "iae_pipeline" / "runner.py" in found
    assert all(p.is_relative_to(LIB) and p.suffix == ".py" for p in found)


def test_rules_list_no_library_file_by_hand():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        assert "lib/" not in text and "lib_sources" not in text, smk.name
        for line in text.splitlines():  # the only .py files a rule names are its scripts
            if line.strip().startswith('"') and ".py" in line:
                assert "../scripts/" in line, (smk.name, line)
