"""Run a workflow script the way Snakemake does, with Snakemake's own Namedlist sections."""

import importlib.util
import logging
import runpy
from pathlib import Path
from types import SimpleNamespace

from snakemake.iocontainers import Namedlist

SCRIPTS = Path(__file__).resolve().parents[2] / "workflow" / "scripts"


def snakemake_object(rule: str, **sections) -> SimpleNamespace:
    """A stand-in for the ``snakemake`` object: dict sections become Namedlists."""
    return SimpleNamespace(
        rule=rule,
        scriptdir=str(SCRIPTS),
        **{k: Namedlist(fromdict=v) if isinstance(v, dict) else v for k, v in sections.items()},
    )


def call_main(name: str, **sections) -> None:
    """Import ``workflow/scripts/<name>.py`` and call its ``main`` (errors propagate)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(snakemake_object(name, **sections))


def run_as_snakemake(name: str, **sections) -> int:
    """Run ``workflow/scripts/<name>.py`` as ``__main__``; return its exit status.

    The script's logging set-up (root handlers to its log file, captured warnings) is
    undone afterwards, so one run's log file never receives the next test's records.
    """
    smk = snakemake_object(name, **sections)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        runpy.run_path(str(SCRIPTS / f"{name}.py"), init_globals={"snakemake": smk},
                       run_name="__main__")  # fmt: skip
    except SystemExit as exit_:
        return int(exit_.code or 0)
    finally:
        logging.captureWarnings(False)
        for handler in root.handlers[:]:
            root.removeHandler(handler)
            handler.close()
        root.handlers[:], root.level = saved
    return 0
