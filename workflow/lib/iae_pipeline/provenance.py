"""The code every output was made with, and the outputs that older code made.

Library modules are not inputs of the rules: editing one, or a ``git pull`` that changes
one, never reruns a fit by itself (an f-scLVM fit takes days). Fits rerun when
Snakemake's own triggers say so: their inputs, params or script. Instead, every job
records what made its outputs: when a script finishes, :func:`write_record` (called by
:func:`iae_pipeline.runner.run_script`) writes one JSON record per job with the project's
version, the library modules the job imported (each with its sha256) and one digest over
them. The workflow keeps the records under ``results/provenance/`` (the environment
variable ``IAE_PROVENANCE_DIR``, set by the Snakefile; unset: no record).

:func:`stale_records` compares the records with the library as it is now;
``python -m iae_pipeline.provenance`` lists the outputs made by older code, and
``--outputs`` prints only their paths, for ``snakemake --forcerun``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iae_pipeline.files import staged
from interpretable_ae import __version__

ENV = "IAE_PROVENANCE_DIR"
LIB = Path(__file__).resolve().parents[1]  # workflow/lib: the two packages
PACKAGES = ("interpretable_ae", "iae_pipeline")


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    str
        The hex digest.
    """
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def imported_sources(modules: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The library modules imported so far, ``{path relative to workflow/lib: sha256}``.

    Parameters
    ----------
    modules
        A module table (default: :data:`sys.modules`). Only modules of the two packages
        are kept, so that the record does not change with third-party versions (the
        pinned environments record those).

    Returns
    -------
    dict
        Sorted by path.
    """
    modules = sys.modules if modules is None else modules
    found = {}
    for name, module in list(modules.items()):
        file = getattr(module, "__file__", None)
        if name.split(".")[0] not in PACKAGES or not file:
            continue
        path = Path(file).resolve()
        if path.is_relative_to(LIB) and path.suffix == ".py":
            found[path.relative_to(LIB).as_posix()] = file_sha256(path)
    return dict(sorted(found.items()))


def code_digest(sources: Mapping[str, str]) -> str:
    """One sha256 over the sources' paths and hashes: equal digests, equal code.

    Parameters
    ----------
    sources
        ``{path relative to the library: sha256}`` (:func:`imported_sources`).

    Returns
    -------
    str
        The hex digest, independent of the mapping's order.

    Examples
    --------
    >>> code_digest({"a.py": "00"}) == code_digest({"a.py": "00"})
    True
    >>> code_digest({"a.py": "00"}) == code_digest({"a.py": "01"})
    False
    """
    text = "\n".join(f"{path} {sha}" for path, sha in sorted(sources.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def record_name(log: str | None, rule: str, wildcards: Mapping[str, Any]) -> str:
    """Where a job's record goes, relative to the records' folder.

    Parameters
    ----------
    log
        The job's log path (every rule has one), or ``None``.
    rule
        The rule's name.
    wildcards
        The job's wildcards.

    Returns
    -------
    str
        The log path under ``logs/`` with ``.json``, else the rule and wildcards.

    Examples
    --------
    >>> record_name("logs/demo/fit_autoencoder_ae_rep0.log", "fit_autoencoder", {})
    'demo/fit_autoencoder_ae_rep0.json'
    """
    if log:
        parts = Path(log).with_suffix(".json").parts
        return Path(*parts[1:] if parts[0] == "logs" and len(parts) > 1 else parts).as_posix()
    tail = "_".join(f"{k}-{v}" for k, v in sorted(wildcards.items()))
    return re.sub(r"[^\w.-]+", "_", f"{rule}_{tail}".strip("_")) + ".json"


def write_record(smk: Any, folder: str | Path | None = None) -> Path | None:
    """Write the record of a finished job (a Snakemake ``snakemake`` object).

    Parameters
    ----------
    smk
        The job: its ``rule``, ``output``, ``log`` and ``wildcards``.
    folder
        The records' folder (default: the environment variable ``IAE_PROVENANCE_DIR``;
        neither: nothing is written).

    Returns
    -------
    pathlib.Path or None
        The record written.
    """
    folder = folder if folder is not None else os.environ.get(ENV)
    if not folder:
        return None
    sources = imported_sources()
    wildcards = dict(getattr(smk, "wildcards", {}) or {})
    rule = str(getattr(smk, "rule", "") or "script")
    log = smk.log[0] if len(getattr(smk, "log", [])) else None
    record = {
        "rule": rule,
        "wildcards": {k: str(v) for k, v in wildcards.items()},
        "outputs": [str(o) for o in smk.output],
        "version": __version__,
        "code_digest": code_digest(sources),
        "sources": sources,
    }
    path = Path(folder) / record_name(log, rule, wildcards)
    path.parent.mkdir(parents=True, exist_ok=True)
    with staged(path) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1) + "\n")
    return path


@dataclass(frozen=True)
class Stale:
    """A job whose outputs older code made: the modules changed since, and its outputs."""

    record: Path
    rule: str
    outputs: tuple[str, ...]
    changed: tuple[str, ...]
    version: str


def read_records(folder: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every record under a folder.

    Parameters
    ----------
    folder
        The records' folder (``results/provenance``).

    Returns
    -------
    list of tuple of (pathlib.Path, dict)
        Each record's path and content, sorted by path.

    Raises
    ------
    ValueError
        An unreadable record, naming it.
    """
    out = []
    for path in sorted(Path(folder).rglob("*.json")):
        try:
            out.append((path, json.loads(path.read_text())))
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: not a provenance record ({err}); delete it") from None
    return out


def changed_sources(sources: Mapping[str, str], lib: str | Path = LIB) -> list[str]:
    """The recorded modules whose file differs now, or is gone.

    Parameters
    ----------
    sources
        A record's ``{path relative to the library: sha256}``.
    lib
        The library as it is now.

    Returns
    -------
    list of str
        The changed paths.
    """
    lib = Path(lib)
    return [
        path
        for path, sha in sources.items()
        if not (lib / path).is_file() or file_sha256(lib / path) != sha
    ]


def stale_records(folder: str | Path, lib: str | Path = LIB) -> list[Stale]:
    """The jobs whose existing outputs were made by code that has changed since.

    Parameters
    ----------
    folder
        The records' folder (``results/provenance``).
    lib
        The library as it is now (``workflow/lib``).

    Returns
    -------
    list of Stale
        One per job with at least one existing output; jobs whose outputs are all gone
        are left out.
    """
    stale = []
    for path, record in read_records(folder):
        outputs = tuple(o for o in record.get("outputs", []) if Path(o).exists())
        changed = changed_sources(record.get("sources", {}), lib)
        if record.get("version") != __version__:
            changed.insert(0, f"version {record.get('version')} -> {__version__}")
        if outputs and changed:
            stale.append(
                Stale(path, str(record.get("rule")), outputs, tuple(changed), record["version"])
            )
    return stale


def provenance_table(folder: str | Path, lib: str | Path = LIB) -> list[dict[str, str]]:
    """One row per job for the report.

    Parameters
    ----------
    folder
        The records' folder.
    lib
        The library as it is now.

    Returns
    -------
    list of dict of str to str
        Rule, outputs, version, digest, and whether the code is current.
    """
    rows = []
    for path, record in read_records(folder):
        changed = changed_sources(record.get("sources", {}), lib)
        current = not changed and record.get("version") == __version__
        rows.append(
            {
                "job": path.relative_to(folder).with_suffix("").as_posix(),
                "rule": str(record.get("rule", "")),
                "version": str(record.get("version", "")),
                "code_digest": str(record.get("code_digest", ""))[:12],
                "made_by_current_code": "yes" if current else "no: " + ", ".join(changed),
                "outputs": ", ".join(record.get("outputs", [])),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """List the outputs made by older code: ``python -m iae_pipeline.provenance``.

    Parameters
    ----------
    argv
        The command line (default: ``sys.argv[1:]``): the records' folder.

    Returns
    -------
    int
        The exit status, 0 either way.
    """
    parser = argparse.ArgumentParser(
        prog="python -m iae_pipeline.provenance",
        description="List the workflow's outputs made by library code that has changed since.",
    )
    parser.add_argument(
        "records", nargs="?", default="results/provenance", help="the records' folder"
    )
    parser.add_argument(
        "--outputs", action="store_true", help="print only the outputs' paths (for --forcerun)"
    )
    args = parser.parse_args(argv)
    if not Path(args.records).is_dir():
        print(f"{args.records}: no provenance records (run the workflow first)", file=sys.stderr)
        return 0
    stale = stale_records(args.records)
    if args.outputs:
        print("\n".join(o for s in stale for o in s.outputs))
        return 0
    for s in stale:
        print(f"{s.rule}: {', '.join(s.outputs)}\n  made by older code: {', '.join(s.changed)}")
    print(f"{len(stale)} job(s) made by older code", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
