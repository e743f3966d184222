"""Writing outputs so that a failure never leaves a file that looks finished."""

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def remove(path: str | Path) -> None:
    """Delete a file or a directory tree, if it exists."""
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def staged(dest: str | Path, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; rename it to ``dest`` only on success.

    The temporary name keeps ``suffix`` last, so writers that pick the format from the
    file name (``savefig``, ``write_h5ad``) see the right one: pass e.g. ``".part.pdf"``.
    The writer may make a file or a directory there; a directory replaces an old ``dest``.
    Temporary paths of ``dest`` left by a killed writer (SIGKILL, a node lost) are removed
    first (Snakemake runs one job per output at a time).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    leftover = re.compile(rf"^\.{re.escape(dest.name)}\.[0-9a-f]{{12}}\.part")
    for old in dest.parent.iterdir():
        if leftover.match(old.name):
            remove(old)
    tmp_path = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}{suffix}")
    try:
        yield tmp_path
        if tmp_path.is_dir():
            remove(dest)  # os.replace cannot replace a non-empty directory
        os.replace(tmp_path, dest)
    finally:
        remove(tmp_path)
