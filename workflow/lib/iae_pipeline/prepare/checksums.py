"""Trust on first download: the lock file of the sha256 of every source the config does
not pin.

The first download of such a source records its sha256 in the lock file (a YAML mapping,
source -> sha256, beside the config: ``config/paper.yaml`` -> ``config/paper.lock.yaml``,
:func:`iae_pipeline.config.lock_path_for`);
every later download of it, on this machine or on any machine that has the committed lock
file, must give the same bytes, or it is refused with one line naming the file, both
hashes and the fix. A source is named by its URL, ``<package>==<version>#<member>`` for a
member of a PyPI wheel whose sha256 the config leaves empty, or ``local:<path>`` for a
local file copied by the download rule.

Download jobs of one run can finish at once: the file is read and rewritten under an
exclusive ``flock`` on itself (the download rules run on the submitting machine, never as
cluster jobs, so a local lock suffices). Written by hand: pooch's registry files hold
pinned hashes but have no record-on-first-use step and no lock for concurrent writers.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import yaml

from iae_pipeline.prepare.download import ChecksumError, DownloadError

SHA256 = re.compile(r"^[0-9a-f]{64}$")
HEADER = """\
# sha256 of every source that {config} does not pin, recorded on its first download
# (trust on first download) and checked on every later one: commit this file. A source
# whose bytes change is refused. If the change is intended, delete the source's line here
# (or pin the new sha256 in the config) and run again. Written by the download rules.
"""


class LockFileError(DownloadError):
    """A lock file that cannot be read as ``source: sha256`` lines."""


class ChecksumLock:
    """The lock file at ``path`` (created on the first record).

    Parameters
    ----------
    path
        The lock file.
    config_name
        The config it belongs to, named in the file's header (default: from the name,
        ``paper.lock.yaml`` -> ``paper.yaml``).
    """

    def __init__(self, path: str | Path, config_name: str | None = None) -> None:
        self.path = Path(path)
        if config_name is None:
            stem = self.path.name.removesuffix(".lock.yaml")
            config_name = f"{stem}.yaml" if stem != self.path.name else "the config"
        self.config_name = config_name

    def entries(self) -> dict[str, str]:
        """The recorded ``source -> sha256`` pairs (empty when there is no file yet)."""
        if not self.path.exists():
            return {}
        return self._parse(self.path.read_text(encoding="utf-8"))

    def check(self, source: str, digest: str, name: str) -> str:
        """Compare ``digest`` of the file ``name`` (from ``source``) with its recorded
        value; record it when there is none.

        Parameters
        ----------
        source
            The source's key in the lock file (a URL, ``pkg==1.0#member``, ``local:path``).
        digest
            The sha256 of the file just downloaded.
        name
            The file's name, for messages.

        Returns
        -------
        str
            ``"verified"`` or ``"recorded"``.

        Raises
        ------
        ChecksumError
            The recorded sha256 differs: one line naming the file, both hashes and the fix.
        """
        with self._locked() as handle:
            entries = self._parse(handle.read())
            recorded = entries.get(source)
            if recorded == digest:
                return "verified"
            if recorded is not None:
                raise ChecksumError(
                    f"{name}: sha256 {digest} differs from {recorded}, recorded in "
                    f"{self.path} on its first download from {source}; the source changed or "
                    "the download is corrupt: check the source; if the new file is intended, "
                    f"delete its line from {self.path.name} (or pin the new sha256 in the "
                    "config) and run again"
                )
            entries[source] = digest
            handle.seek(0)
            handle.truncate()
            handle.write(self._render(entries))
            handle.flush()
            os.fsync(handle.fileno())
        return "recorded"

    @contextmanager
    def _locked(self) -> Iterator[IO[str]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise OSError(
                f"{self.path}: cannot open the sha256 lock file ({err.strerror}); make its "
                "folder writable, or set sha256_lock in the config to a writable path"
            ) from None
        with os.fdopen(fd, "r+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _parse(self, text: str) -> dict[str, str]:
        fix = f"fix or delete {self.path} (it is rewritten on the next download)"
        try:
            data = yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise LockFileError(f"{self.path}: not valid YAML{where}; {fix}") from None
        if not isinstance(data, dict):
            raise LockFileError(f"{self.path}: not a mapping of source: sha256 lines; {fix}")
        for source, digest in data.items():
            if not isinstance(digest, str) or not SHA256.match(digest):
                raise LockFileError(
                    f"{self.path}: the sha256 of {source} is {digest!r}, not 64 lower-case hex "
                    f"digits; {fix}"
                )
        return {str(k): v for k, v in data.items()}

    def _render(self, entries: dict[str, str]) -> str:
        body = yaml.safe_dump(dict(sorted(entries.items())), default_flow_style=False, width=1000)
        return HEADER.format(config=self.config_name) + body
