"""The pipeline package's layout holds: stages import only downwards, functions stay
short, and the names both packages share come from one torch-free module."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import LIB, ROOT

PIPELINE = LIB / "iae_pipeline"
STAGES = ("prepare", "fit", "score", "figures", "analyses")
# what a stage may import besides the root modules: stages lower in the data flow
MAY_IMPORT = {
    "prepare": set(),
    "fit": set(),
    "score": set(),
    "figures": set(),
    "analyses": {"score"},
}
MAX_LINES = 80


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("iae_pipeline")}


def _stage(path: Path) -> str:
    rel = path.relative_to(PIPELINE)
    return rel.parts[0] if len(rel.parts) > 1 else "root"


@pytest.mark.parametrize("path", sorted(PIPELINE.rglob("*.py")), ids=lambda p: p.stem)
def test_stages_import_only_the_root_and_lower_stages(path):
    stage = _stage(path)
    for module in _imports(path):
        parts = module.split(".")
        target = parts[1] if len(parts) > 1 and parts[1] in STAGES else "root"
        if stage == "root":
            assert target == "root", f"{path.name}: the root imports the stage '{target}'"
        elif target != "root" and target != stage:
            assert target in MAY_IMPORT[stage], f"{path}: {stage} imports {target}"


def _functions(paths):
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield path, node


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """A function's lines without its docstring (numpydoc sections are documentation)."""
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
        if isinstance(first.value.value, str):
            lines -= first.end_lineno - first.lineno + 1
    return lines


def test_no_function_runs_over_80_lines():
    paths = [*LIB.rglob("*.py"), *(ROOT / "workflow" / "scripts").glob("*.py")]
    paths += (ROOT / "benchmarks").glob("*.py")
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines of code)"
        for path, node in _functions(paths)
        if (n := _code_lines(node)) > MAX_LINES
    ]
    assert not long, "split these functions (a data step and a drawing step, ...): " + str(long)


def test_the_shared_names_are_defined_once_and_import_without_torch():
    code = (
        "import sys; import interpretable_ae.conventions as c, iae_pipeline.contract; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(LIB), "PATH": ""},
    )  # fmt: skip
    assert out.stdout.strip() == "[]"
    for name in ("KINDS", "MASK_KEY", "TERMS_KEY", "UNANNOTATED", "CENTRED_TOLERANCE"):
        defined = [
            str(p.relative_to(LIB))
            for p in LIB.rglob("*.py")
            for node in ast.parse(p.read_text()).body
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        ]
        assert defined == ["interpretable_ae/conventions.py"], (name, defined)


@pytest.mark.parametrize(
    "script", sorted((ROOT / "workflow" / "scripts").glob("*.py")), ids=lambda p: p.stem
)
def test_every_script_runs_through_the_runner(script: Path):
    """The runner gives every rule one-line errors, no partial outputs and a provenance
    record; a script that bypasses it would lose all three."""
    text = script.read_text()
    assert re.search(r"^from iae_pipeline\.runner import .*\brun_script\b", text, re.M)
    assert "    run_script(main, snakemake" in text


def test_rules_name_no_library_file():
    """Library modules are not rule inputs: editing one never reruns a fit by itself."""
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        code = [line for line in smk.read_text().splitlines() if not line.strip().startswith("#")]
        for line in code:  # the only .py files a rule names are its scripts
            assert "lib/" not in line, (smk.name, line)
            for path in re.findall(r'"([^"*]+\.py)"', line):
                assert path.startswith("../scripts/"), (smk.name, line)


def test_one_version_number():
    """pyproject.toml reads the version from the model package; nothing else states one."""
    import tomllib

    import interpretable_ae

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "interpretable_ae.__version__" and interpretable_ae.__version__
    assert "__version__" not in (LIB / "iae_pipeline" / "__init__.py").read_text()
