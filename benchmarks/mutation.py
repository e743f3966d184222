"""Mutation testing of the core modules with mutmut, on this repository's layout.

Run from the repository root (one torch thread; the real test files as for the tests)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mutation.py run --max-children 2
    .venv/bin/python benchmarks/mutation.py summary     # killed / total per module
    .venv/bin/python benchmarks/mutation.py results     # the surviving mutants
    .venv/bin/python benchmarks/mutation.py show NAME   # one mutant's diff

Everything after the script's name but ``summary`` is passed to mutmut's command line; the
modules and the tests are configured in ``[tool.mutmut]`` of pyproject.toml. mutmut names a module by
its path under the repository (less a ``src/`` prefix), while ours live under
``workflow/lib/``: this wrapper drops that prefix too, so the names it records match the
modules the tests import (``interpretable_ae.prox``). Nothing else of mutmut is changed.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB_PREFIX = "workflow.lib."


def summary(mutants: Path = ROOT / "mutants") -> str:
    """A Markdown table: per mutated module, killed (a timeout, the CPU-time limit's SIGXCPU,
    counts as killed, as mutmut counts it; how many of them in brackets) / mutants, the
    survivors, the mutants no test reaches, those not run yet and the share killed."""
    from mutmut.stats import status_by_exit_code  # its exit codes of a mutant's test run

    rows = [
        "| module | killed (timeouts) | survived | no tests | not checked | mutants | killed % |",
        "|---|---|---|---|---|---|---|",
    ]
    for meta in sorted(mutants.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if not codes:
            continue
        count = Counter(status_by_exit_code[code] for code in codes.values())
        killed = count["killed"] + count["timeout"]
        module = meta.relative_to(mutants / "workflow" / "lib").with_suffix("").with_suffix("")
        rows.append(
            f"| {'.'.join(module.parts)} | {killed} ({count['timeout']}) | {count['survived']} "
            f"| {count['no tests']} | {count['not checked']} | {len(codes)} "
            f"| {100 * killed / len(codes):.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    os.chdir(ROOT)
    if sys.argv[1:] == ["summary"]:
        print(summary())
        return
    from mutmut import __main__ as cli_module
    from mutmut.mutation import file_mutation
    from mutmut.utils import format_utils

    path_name = format_utils.get_mutant_name

    def get_mutant_name(relative_source_path: Path, mutant_method_name: str) -> str:
        name = path_name(relative_source_path, mutant_method_name)
        return name[len(LIB_PREFIX) :] if name.startswith(LIB_PREFIX) else name

    for module in (format_utils, file_mutation, cli_module):
        module.get_mutant_name = get_mutant_name
    sys.argv[0] = "mutmut"
    cli_module.cli()


if __name__ == "__main__":
    main()
