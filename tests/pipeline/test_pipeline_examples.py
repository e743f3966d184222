"""The Examples sections of the pipeline's docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import iae_pipeline

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(iae_pipeline.__path__, "iae_pipeline.") if not m.ispkg
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def run_examples(name: str) -> doctest.TestResults:
    module = importlib.import_module(name)
    tests = doctest.DocTestFinder().find(module, name, globs=vars(module).copy())
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in tests:
        runner.run(test)
    return runner.summarize(verbose=False)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str):
    failed, _ = run_examples(name)
    assert failed == 0, f"{failed} docstring example(s) of {name} failed (output above)"


def test_examples_are_checked():
    """The runner sees the examples (a docstring example that fails is reported)."""
    assert run_examples("iae_pipeline.config").attempted >= 2
    assert "iae_pipeline.prepare.datasets" in MODULES
