"""slalom's runtime shims: each one needed, together sufficient, and covering every name.

The shim tests start fresh interpreters (a shim, once applied, stays for the process).
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from helpers import LIB
from iae_pipeline.fit.slalom_compat import (
    SCIPY_EMATH_NAMES,
    SCIPY_NUMPY_NAMES,
    SCIPY_RANDOM_NAMES,
    SHIMS,
    apply_shims,
)

SLALOM_DIR = Path(importlib.util.find_spec("slalom").origin).parent
SLALOM_FILES = sorted(p for p in SLALOM_DIR.rglob("*.py") if "_bak" not in p.name)


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=LIB,
        timeout=120,
    )


@pytest.mark.parametrize("missing", sorted(SHIMS))
def test_each_shim_is_needed(missing: str) -> None:
    others = sorted(set(SHIMS) - {missing})
    result = _python(
        f"""
        from iae_pipeline.fit.slalom_compat import apply_shims
        apply_shims({others!r})
        import slalom
        """
    )
    assert result.returncode != 0, f"slalom imported without the '{missing}' shim"
    expected = {
        "pkg_resources": "No module named 'pkg_resources'",
        "RandomizedPCA": "cannot import name 'RandomizedPCA'",
        "scipy_numpy_aliases": "'scipy' has no attribute",
    }[missing]
    assert expected in result.stderr


def test_shims_suffice_in_a_fresh_interpreter() -> None:
    result = _python(
        """
        from iae_pipeline.fit.slalom_compat import apply_shims, import_slalom
        print(sorted(apply_shims()), apply_shims())
        slalom = import_slalom()
        import brewer2mpl
        print(slalom.__version__, brewer2mpl.get_map("Paired", "Qualitative", 3).hex_colors[0])
        """
    )
    assert result.returncode == 0, result.stderr
    applied, version = result.stdout.splitlines()
    assert applied == f"{sorted(SHIMS)} []"  # all were needed; the second call is a no-op
    assert version.startswith("1.0.0.dev11 #")


def test_unknown_shim_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown slalom shim"):
        apply_shims(["scipy"])


class _ScipyAttributes(ast.NodeVisitor):
    """Collect ``SP.x`` / ``S.x`` where the name means scipy (not a local rebinding)."""

    def __init__(self, aliases: set[str]) -> None:
        self.aliases, self.found = aliases, set()
        self.shadowed: list[set[str]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        stores = {
            n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        self.shadowed.append(stores)
        self.generic_visit(node)
        self.shadowed.pop()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = node.value.id if isinstance(node.value, ast.Name) else None
        if name in self.aliases and not any(name in s for s in self.shadowed):
            self.found.add(node.attr)
        self.generic_visit(node)


def _parse(path: Path) -> ast.Module:
    with warnings.catch_warnings():  # slalom's regular expressions have invalid escapes
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        return ast.parse(path.read_text())


def _scipy_attributes(path: Path) -> set[str]:
    tree = _parse(path)
    aliases = {
        a.asname or a.name
        for node in tree.body
        if isinstance(node, ast.Import)
        for a in node.names
        if a.name == "scipy"
    }
    if any(isinstance(n, ast.ImportFrom) and n.module == "bayesnet.vbfa" for n in tree.body):
        aliases.add("S")  # ``from .bayesnet.vbfa import *`` brings vbfa's ``S`` (scipy)
    visitor = _ScipyAttributes(aliases)
    visitor.visit(tree)
    return visitor.found


def test_scipy_aliases_cover_every_name_slalom_uses() -> None:
    import scipy

    apply_shims(["scipy_numpy_aliases"])
    used = set().union(*(_scipy_attributes(p) for p in SLALOM_FILES))
    assert {"zeros", "dot", "randn", "log", "random"} <= used  # the scan finds them
    assert sorted(n for n in used if not hasattr(scipy, n)) == []  # sufficient
    shimmed = {*SCIPY_NUMPY_NAMES, *SCIPY_EMATH_NAMES, *SCIPY_RANDOM_NAMES}
    assert sorted(shimmed - used) == []  # minimal


def test_slalom_uses_no_name_removed_in_numpy2() -> None:
    # NEP 52 / numpy 2.0 release notes: names removed from the main namespace
    removed = set(
        "alltrue asfarray byte_bounds cast cfloat clongfloat compat complex_ deprecate "
        "disp fastCopyAndTranspose find_common_type float_ geterrobj Inf Infinity infty "
        "issctype issubclass_ issubsctype longcomplex longfloat lookfor mat maximum_sctype "
        "NaN NINF NZERO obj2sctype PINF PZERO recfromcsv recfromtxt round_ safe_eval "
        "sctype2char sctypes seterrobj set_numeric_ops set_string_function singlecomplex "
        "string_ unicode_ who cumproduct product sometrue".split()
    )
    used = {
        getattr(node, "id", None) or getattr(node, "attr", None)
        for path in SLALOM_FILES
        for node in ast.walk(_parse(path))
        if isinstance(node, ast.Name | ast.Attribute)
    }
    assert sorted(used & removed) == []
