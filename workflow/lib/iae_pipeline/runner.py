"""Run a Snakemake script's ``main(snakemake)`` the same way for every rule.

Logging goes to the rule's log file and to stderr; warnings are captured. An expected
failure (``ValueError`` or ``OSError``: bad input, with a message that names the file and
the fix) is logged as one ERROR line, every declared output is removed, and the job exits
with status 1, so the user sees one clear line instead of a library traceback:

- a full disk (or a quota or file-size limit) while writing is said in those words, naming
  the output and its folder, instead of HDF5's multi-line message; the job then ends
  without the interpreter's clean-up, where h5py would print hundreds of "Exception
  ignored" tracebacks about the file it could not close;
- errors raised inside libraries' finalizers during the run (and tracebacks that C
  extensions print for them) go to the log file only (INFO);
- SIGTERM (Ctrl-C in Snakemake, a cluster's pre-emption) unwinds like an exception, so no
  temporary file is left behind.

A job that succeeds records the code that made its outputs
(:func:`iae_pipeline.provenance.write_record`). An unexpected exception (a bug) keeps its
traceback, in the log and on the terminal.
:func:`failed_job_errors` collects the failed jobs' ERROR lines for the workflow's
``onerror`` handler, which repeats them at the end of Snakemake's output.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from iae_pipeline.files import remove
from iae_pipeline.provenance import write_record

QUIET_LOGGERS = ("fontTools", "matplotlib.font_manager", "PIL", "numba", "h5py")
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# HDF5 reports the C library's errno inside its message, not as OSError.errno
_DISK_FULL_TEXT = re.compile(
    r"No space left on device|Disk quota exceeded|File too large|errno = (?:%s)\b"
    % "|".join(str(e) for e in DISK_FULL_ERRNOS)
)
# the log format of setup_logging: "<date> <time>,<ms> ERROR <logger>: <message>"
_ERROR_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ERROR [^:]+: (.*)$")


class Terminated(SystemExit):
    """The job received SIGTERM; unwinds so that temporary files are removed."""


def setup_logging(log_file: str | Path | None, name: str) -> logging.Logger:
    """Log to a job's log file (overwritten) and problems to stderr.

    Parameters
    ----------
    log_file
        The job's log (``None``: stderr only).
    name
        The logger's name.

    Returns
    -------
    logging.Logger
        ``name``'s logger.
    """
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


def one_line(err: BaseException) -> str:
    """An error's message on one line (library messages may span several).

    Parameters
    ----------
    err
        The error.

    Returns
    -------
    str
    """
    parts = [part.strip() for part in str(err).splitlines() if part.strip()]
    return "; ".join(parts) or type(err).__name__


def is_disk_full(err: BaseException) -> bool:
    """Whether an error (or what caused it) is a full disk, a quota or a file-size limit.

    Parameters
    ----------
    err
        The error.

    Returns
    -------
    bool
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        if _DISK_FULL_TEXT.search(str(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full_message(outputs: Iterable[Any]) -> str:
    """One line naming the output being written, its folder and the fix.

    Parameters
    ----------
    outputs
        The job's outputs.

    Returns
    -------
    str
    """
    target = next(iter(outputs), None)
    folder = Path(str(target)).parent if target is not None else Path(".")
    what = f"{target}: " if target is not None else ""
    return (
        f"{what}no space left on the device (or a disk quota or file-size limit reached) while "
        f"writing; free space where {folder}/ lives (df -h {folder}) and rerun"
    )


def _log_unraisable(unraisable: Any) -> None:
    """Errors in finalizers (h5py closing a file it could not write) go to the log only."""
    logging.getLogger("finalizer").info(
        "ignored in %r: %s", unraisable.object, one_line(unraisable.exc_value)
    )


def _log_printed(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    """What C extensions print through ``sys.excepthook`` while the job runs (h5py's
    deallocators print each failed close so) goes to the log only; the job's own errors
    are handled by :func:`run_script`."""
    logging.getLogger("finalizer").info("ignored: %s: %s", kind.__name__, one_line(value))


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated(128 + signum)


def _remove_outputs(smk: Any) -> None:
    for output in smk.output:
        remove(output)


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB, as the kernel counts it (``ru_maxrss``:
    exact, where Snakemake's benchmark files sample every 0.5 s, then every 30 s)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def run_script(
    main: Callable[[Any], None],
    smk: Any,
    expected: tuple[type[BaseException], ...] = (ValueError, OSError),
) -> None:
    """Run a rule's script; when it fails, remove its outputs and exit with status 1.

    The job's record (:func:`iae_pipeline.provenance.write_record`) is written after a
    success.

    Parameters
    ----------
    main
        The script's work, called as ``main(snakemake)``.
    smk
        Snakemake's ``snakemake`` object.
    expected
        Errors that are the user's (bad input), logged as one line; anything else is a
        bug, logged with its traceback. A full disk exits at once, naming the output.

    Raises
    ------
    SystemExit
        Status 1, after any error.
    Terminated
        On SIGTERM (a ``SystemExit`` too), the outputs removed.

    Examples
    --------
    >>> run_script(main, snakemake)  # doctest: +SKIP
    """
    name = getattr(smk, "rule", None) or "script"
    log = setup_logging(smk.log[0] if len(smk.log) else None, name)
    previous_hooks = sys.unraisablehook, sys.excepthook
    previous_term = signal.signal(signal.SIGTERM, _terminate)
    sys.unraisablehook, sys.excepthook = _log_unraisable, _log_printed
    try:
        main(smk)
        write_record(smk)  # the code that made the outputs (iae_pipeline.provenance)
        log.info("%s: peak memory %.0f MB (the job's process, getrusage)", name, peak_rss_mb())
    except Terminated:
        log.error("%s: stopped by SIGTERM; outputs removed, rerun to start again", name)
        _remove_outputs(smk)
        raise
    except Exception as err:
        if is_disk_full(err):  # h5py may report it as a RuntimeError while closing the file
            log.error("%s", disk_full_message(smk.output))
            log.info("the error: %s", one_line(err))
            _remove_outputs(smk)
            # HDF5 would try again to flush the file it could not write while the
            # interpreter shuts down: hundreds of tracebacks, at times a crash
            logging.shutdown()
            os._exit(1)
        if isinstance(err, expected):
            log.error("%s", one_line(err))
        else:  # a bug: the traceback goes to the log and the terminal
            log.exception("%s failed unexpectedly: %s: %s", name, type(err).__name__, one_line(err))
        _remove_outputs(smk)
        sys.exit(1)
    finally:
        sys.unraisablehook, sys.excepthook = previous_hooks
        signal.signal(signal.SIGTERM, previous_term)


# ---- the workflow's onerror handler --------------------------------------------------------


def _failed_jobs(snakemake_log: str | Path) -> list[tuple[str, list[str]]]:
    """``(rule, log files)`` of each 'Error in rule' block of Snakemake's own log."""
    jobs: list[tuple[str, list[str]]] = []
    rule = None
    for line in Path(snakemake_log).read_text(errors="replace").splitlines():
        start = re.match(r"^Error in rule (\S+):\s*$", line)
        if start:
            rule = start.group(1)
            jobs.append((rule, []))
        elif rule is not None and line.startswith(" "):
            logs = re.match(r"^\s+log: (.*?)(?: \(check log file\(s\) for error details\))?$", line)
            if logs:
                jobs[-1][1].extend(p.strip() for p in logs.group(1).split(","))
        else:
            rule = None
    return jobs


def last_error(log_file: str | Path) -> str | None:
    """The last ERROR record of a job's log file (its first line).

    Parameters
    ----------
    log_file
        The log.

    Returns
    -------
    str or None
        ``None`` when there is none.
    """
    try:
        lines = Path(log_file).read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        match = _ERROR_RECORD.match(line)
        if match:
            return match.group(1)
    return None


def failed_job_errors(snakemake_logs: Iterable[str | Path]) -> list[str]:
    """One line per failed job, for the end of Snakemake's output.

    Parameters
    ----------
    snakemake_logs
        Snakemake's own log files.

    Returns
    -------
    list of str
        The rule and the ERROR line of its log, or where to look.
    """
    out: list[str] = []
    for snakemake_log in snakemake_logs:
        if not Path(snakemake_log).is_file():
            continue
        for rule, logs in _failed_jobs(snakemake_log):
            errors = [e for e in (last_error(f) for f in logs) if e]
            if errors:
                out += [f"error in {rule}: {e}" for e in errors]
            else:
                where = ", ".join(logs) if logs else "Snakemake's output above"
                out.append(f"error in {rule}: no one-line message; see {where}")
    return list(dict.fromkeys(out))
