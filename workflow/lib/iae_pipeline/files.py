"""Writing outputs so that a failure never leaves a file that looks finished."""

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def remove(path: str | Path) -> None:
    """Delete a file or a directory tree, if it exists.

    Parameters
    ----------
    path
        The file or directory.
    """
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def staged(dest: str | Path, suffix: str = ".part") -> Iterator[Path]:
    """A temporary path next to ``dest``, renamed to ``dest`` only when the block succeeds.

    The temporary name keeps ``suffix`` last, so writers that pick the format from the file
    name (``savefig``, ``write_h5ad``) see the right one. The writer may make a file or a
    directory there; a directory replaces an old ``dest``. Temporary paths of ``dest`` left
    by a killed writer (SIGKILL, a node lost) are removed first (Snakemake runs one job per
    output at a time).

    Parameters
    ----------
    dest
        The final path.
    suffix
        The temporary name's ending, e.g. ``".part.pdf"``.

    Yields
    ------
    pathlib.Path
        Where to write.

    Examples
    --------
    >>> with staged("results/demo/prepared.h5ad", suffix=".part.h5ad") as tmp:  # doctest: +SKIP
    ...     adata.write_h5ad(tmp)
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
