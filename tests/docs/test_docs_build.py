"""The documentation builds with warnings as errors, the tutorial executed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

sys.path.insert(0, str(ROOT / "docs" / "_ext"))

from config_schema import load_schema, schema_entries  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(ROOT / "docs"), str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return out


def test_config_reference_lists_every_key(html: Path):
    page = (html / "config.html").read_text()
    for entry in schema_entries(load_schema(ROOT / "workflow/schemas/config.schema.yaml")):
        assert f">{entry.path.replace('<', '&lt;').replace('>', '&gt;')}<" in page, entry.path


def test_api_reference(html: Path):
    page = (html / "generated" / "interpretable_ae.model.html").read_text()
    assert 'id="interpretable_ae.model.InterpretableAutoencoder"' in page
    assert "Parameters" in page
    assert (html / "generated" / "iae_pipeline.contract.html").is_file()


def test_tutorial_was_executed(html: Path):
    page = (html / "tutorial.html").read_text()
    assert "Traceback" not in page
    assert len(re.findall(r"<img [^>]*src=\"_images/", page)) >= 3  # the figures drawn
    assert "HALLMARK_INTERFERON_GAMMA_RESPONSE" in page and "accuracy_cv" in page


def test_markdown_pages(html: Path):
    for name in ("fidelity", "analyses", "config", "api", "tutorial"):
        assert (html / f"{name}.html").is_file()
