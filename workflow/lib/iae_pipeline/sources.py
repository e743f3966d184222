"""Which library files a rule's script runs, so that editing one re-runs its jobs.

Derived from the script's imports with the standard library's :mod:`modulefinder`,
searching only ``workflow/lib`` (third-party imports are not followed), so the rules never
list library files by hand.
"""

from __future__ import annotations

import functools
import modulefinder
from pathlib import Path


@functools.cache
def script_sources(script: str | Path, lib: str | Path) -> tuple[str, ...]:
    """The ``lib`` modules that ``script`` imports, directly or not (sorted paths)."""
    lib = Path(lib).resolve()
    finder = modulefinder.ModuleFinder(path=[str(lib)])
    finder.run_script(str(script))
    found = {
        Path(module.__file__).resolve()
        for module in finder.modules.values()
        if module.__file__ and Path(module.__file__).resolve().is_relative_to(lib)
    }
    return tuple(sorted(str(p) for p in found))
