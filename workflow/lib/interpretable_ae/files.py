"""Writing outputs so that a failure never leaves a file that looks finished."""

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged(dest: str | Path, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; rename it to ``dest`` only on success.

    The temporary name keeps ``suffix`` last, so writers that pick the format from the
    file name (``savefig``, ``write_h5ad``) see the right one: pass e.g. ``".part.pdf"``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}{suffix}")
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)
