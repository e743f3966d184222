"""Run a Snakemake script's ``main(snakemake)`` the same way for every rule.

Logging goes to the rule's log file and to stderr; warnings are captured. An expected
failure (``ValueError`` or ``OSError``: bad input, with a message that names the file and
the fix) is logged as one ERROR line, every declared output is removed, and the job exits
with status 1, so the user sees one clear line instead of a library traceback.
"""

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .files import remove

QUIET_LOGGERS = ("fontTools", "matplotlib.font_manager", "PIL", "numba", "h5py")


def setup_logging(log_file: str | Path | None, name: str) -> logging.Logger:
    """Log to ``log_file`` (overwritten) and problems to stderr; return ``name``'s logger."""
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setLevel(logging.WARNING)  # the terminal gets problems; the log file gets all
    handlers: list[logging.Handler] = [terminal]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.insert(0, logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(name)


def run_script(
    main: Callable[[Any], None],
    smk: Any,
    expected: tuple[type[BaseException], ...] = (ValueError, OSError),
) -> None:
    """Call ``main(smk)``; on an ``expected`` error log one line, remove outputs, exit 1."""
    name = getattr(smk, "rule", None) or "script"
    log = setup_logging(smk.log[0] if len(smk.log) else None, name)
    try:
        main(smk)
    except expected as err:
        log.error("%s", err)
        for output in smk.output:
            remove(output)
        sys.exit(1)
