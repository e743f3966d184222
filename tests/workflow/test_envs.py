"""The conda envs pin exactly what requirements.txt pins (conda is not run here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from helpers import ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")


def _requirements() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = PIN.match(line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))


def test_there_are_envs():
    assert len(ENV_FILES) >= 3


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_match_requirements(env_file: Path):
    env = yaml.safe_load(env_file.read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps, f"{env_file.name}: python must be pinned to 3.11"
    pip_deps = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    reqs = _requirements()
    assert pip_deps, f"{env_file.name}: no pip dependencies"
    for dep in pip_deps:
        m = PIN.match(dep)
        assert m, f"{env_file.name}: '{dep}' is not pinned with =="
        name, version = m.group(1).lower(), m.group(2)
        assert name in reqs, f"{env_file.name}: {name} is not in requirements.txt"
        assert reqs[name] == version, (
            f"{env_file.name}: {name}=={version} but requirements.txt pins {reqs[name]}"
        )
    conda_only = [d for d in deps if isinstance(d, str) and not d.startswith(("python=", "pip="))]
    assert not conda_only, f"{env_file.name}: unpinned-by-requirements conda packages {conda_only}"


def test_every_rule_env_exists():
    rules = (ROOT / "workflow" / "rules").glob("*.smk")
    used = set()
    for smk in rules:
        for m in re.finditer(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            path = (smk.parent / m.group(1)).resolve()
            assert path.is_file(), f"{smk.name}: conda env {m.group(1)} does not exist"
            used.add(path)
    assert used == {p.resolve() for p in ENV_FILES}, "an env is unused or a rule has none"


def test_requirements_pin_torch_cpu_build_version():
    assert _requirements()["torch"] == "2.13.0"
