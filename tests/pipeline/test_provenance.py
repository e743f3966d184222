"""Provenance records: the library modules a job imported, and the outputs older code made."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from iae_pipeline import provenance as pv
from interpretable_ae import __version__


class Job:
    """The parts of Snakemake's ``snakemake`` object a record reads."""

    def __init__(self, outputs, log="logs/demo/fit_autoencoder_ae_rep0.log"):
        self.rule = "fit_autoencoder"
        self.output = [str(o) for o in outputs]
        self.log = [log] if log else []
        self.wildcards = {"dataset": "demo", "rep": "0"}


def test_only_the_library_modules_imported_are_recorded():
    sources = pv.imported_sources()
    assert "iae_pipeline/provenance.py" in sources and "interpretable_ae/__init__.py" in sources
    assert not any(p.startswith(("numpy", "torch")) for p in sources)
    assert sources["iae_pipeline/provenance.py"] == pv.file_sha256(pv.__file__)
    fake = {
        "iae_pipeline.x": types.SimpleNamespace(__file__=pv.__file__),
        "numpy": types.SimpleNamespace(__file__=json.__file__),
    }
    assert list(pv.imported_sources(fake)) == ["iae_pipeline/provenance.py"]


def test_a_record_names_the_job_its_outputs_and_its_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = Path("results/demo/ae/rep0/factors.h5ad")
    out.parent.mkdir(parents=True)
    out.write_text("x")
    path = pv.write_record(Job([out]), "results/provenance")
    assert path == Path("results/provenance/demo/fit_autoencoder_ae_rep0.json")
    record = json.loads(path.read_text())
    assert record["outputs"] == [str(out)] and record["version"] == __version__
    assert record["code_digest"] == pv.code_digest(record["sources"])
    monkeypatch.delenv(pv.ENV, raising=False)
    assert pv.write_record(Job([out])) is None  # outside the workflow: no record
    name = pv.record_name(None, "score", {"dataset": "demo", "rep": "0", "model": "a/b"})
    assert name == "score_dataset-demo_model-a_b_rep-0.json"


def test_outputs_of_changed_code_are_listed_and_only_while_they_exist(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    (lib / "iae_pipeline").mkdir(parents=True)
    module = lib / "iae_pipeline" / "m.py"
    module.write_text("A = 1\n")
    folder = tmp_path / "records"
    monkeypatch.chdir(tmp_path)
    Path("out.tsv").write_text("x")
    record = {"rule": "score", "outputs": ["out.tsv", "gone.tsv"], "version": __version__,
              "sources": {"iae_pipeline/m.py": pv.file_sha256(module)}}  # fmt: skip
    folder.mkdir()
    (folder / "score.json").write_text(json.dumps(record))
    assert pv.stale_records(folder, lib) == []
    module.write_text("A = 2\n")
    (stale,) = pv.stale_records(folder, lib)
    assert stale.outputs == ("out.tsv",) and stale.changed == ("iae_pipeline/m.py",)
    rows = pv.provenance_table(folder, lib)
    assert rows[0]["made_by_current_code"] == "no: iae_pipeline/m.py"
    Path("out.tsv").unlink()
    assert pv.stale_records(folder, lib) == []  # nothing left to rerun
    (folder / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json: not a provenance record"):
        pv.read_records(folder)


def test_the_command_prints_outputs_for_forcerun(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert pv.main(["nowhere"]) == 0
    assert "no provenance records" in capsys.readouterr().err
    folder = tmp_path / "records"
    folder.mkdir()
    Path("f.h5ad").write_text("x")
    record = {"rule": "fit", "outputs": ["f.h5ad"], "version": "0.0.0", "sources": {}}
    (folder / "fit.json").write_text(json.dumps(record))
    assert pv.main([str(folder), "--outputs"]) == 0
    assert capsys.readouterr().out.split() == ["f.h5ad"]  # an older version made it
