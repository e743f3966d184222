"""Downloads that are verified before they are kept.

Every file is fetched to a temporary name next to its destination, checked, then renamed,
so an interrupted or refused download never leaves a file that looks finished:

- sha256: compared when the config gives one (a mismatch is refused); otherwise checked
  against the lock file (:mod:`iae_pipeline.prepare.checksums`): recorded there on the
  first download (trust on first download), refused when a later download differs.
- size: compared when the config gives ``bytes`` (a truncated download says so).
- HTML: an error or login page saved in place of data is refused.
- format, where cheap: gzip streams are read to the end, zip archives are tested, HDF5
  files must start with the HDF5 signature.
- https only: a plain ``http://`` or ``ftp://`` URL, or a redirect to one, is refused unless
  the config lists that exact URL under ``allow_insecure_urls``.
- archives: only the expected member is read (into memory; nothing is extracted), and an
  archive with a member path that is absolute or climbs out with ``..`` is refused.
- pip: the wheel's package spec must be ``name==version`` (checked, then passed as one
  item of an argument list; no shell ever sees a config value).

Gene-set sources (``url``, ``pypi_wheel``, ``local``) are written as one plain GMT,
keeping only the terms with the configured ``prefixes``; see :func:`fetch_geneset`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from iae_pipeline.files import staged
from interpretable_ae.genesets import decode_gmt, looks_like_html, read_gmt

if TYPE_CHECKING:
    from iae_pipeline.prepare.checksums import ChecksumLock

log = logging.getLogger(__name__)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
CHUNK = 1 << 20
USER_AGENT = "interpretable-ae-workflow (python urllib)"
WHEEL_PLATFORM = ("--platform", "manylinux2014_x86_64", "--python-version", "3.11")
MSIGDB_LICENCE = (
    "MSigDB gene sets: use is subject to the MSigDB licence terms "
    "(https://www.gsea-msigdb.org/gsea/msigdb_license_terms.jsp). KEGG and BioCarta sets "
    "carry their own restrictions and are not used here. Cite Subramanian et al. 2005 "
    "(PNAS) and Liberzon et al. 2015 (Cell Systems)."
)
#: a pinned PyPI requirement: a project name (PEP 508) and an exact version (PEP 440)
PACKAGE_SPEC = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?==[A-Za-z0-9][A-Za-z0-9.+!_-]*$"
)
REACTOME_LICENCE = (
    "Reactome pathways: Creative Commons Attribution licence, see "
    "https://reactome.org/license; cite the current Reactome database paper."
)


class DownloadError(ValueError):
    """A download that failed or gave something other than the expected data."""


class ChecksumError(DownloadError):
    """A file whose sha256 differs from the configured one."""


def sha256sum(path: str | Path) -> str:
    """The sha256 of a file, read in 1 MiB chunks.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    str
        The hex digest.
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(
    path: str | Path,
    expected: str | None,
    name: str,
    lock: ChecksumLock | None = None,
    source: str = "",
) -> str:
    """The sha256 of ``path``, checked against ``expected`` (the config's) or, when that is
    empty, against ``lock`` under the key ``source`` (recorded there on first download).

    Parameters
    ----------
    path
        The downloaded file.
    expected
        The config's sha256; empty or None when it pins none.
    name
        The file's name, for messages.
    lock
        The lock file of unpinned sources (None: the value is only logged).
    source
        The source's key in the lock file (its URL, ``pkg==1.0#member``, ``local:path``).

    Returns
    -------
    str
        The file's sha256.

    Raises
    ------
    ChecksumError
        A mismatch with the config or the lock file (one line: both hashes and the fix).
    """
    actual = sha256sum(path)
    expected = (expected or "").strip().lower()
    if expected and actual != expected:
        raise ChecksumError(
            f"{name}: sha256 {actual} does not match the configured {expected}; the source "
            "changed or the download is corrupt: check the url, or update the sha256 in the "
            "config if the new file is intended"
        )
    if expected:
        log.info("%s: sha256 %s verified (config)", name, actual)
    elif lock is not None:
        done = lock.check(source or name, actual, name)
        log.info("%s: sha256 %s %s (%s)", name, actual, done, lock.path)
    else:
        log.info("%s: sha256 %s (no sha256 configured; paste it into the config)", name, actual)
    return actual


def check_size(path: str | Path, expected: int | None, name: str) -> None:
    """Refuse a file whose size differs from the config's ``bytes`` (None: not checked)."""
    if expected is None:
        return
    size = Path(path).stat().st_size
    if size != int(expected):
        raise ChecksumError(
            f"{name}: {size:,} bytes, not the {int(expected):,} the config gives; the download "
            "is truncated or the source changed: delete it and download it again, or check "
            "the url"
        )


def check_format(path: str | Path, name: str) -> None:
    """Refuse HTML pages and broken gzip, zip or HDF5 files (the format guessed from ``name``).

    Parameters
    ----------
    path
        The downloaded file.
    name
        Its name, whose suffix gives the format.

    Raises
    ------
    DownloadError
        An HTML page (a failed download saved as data) or a broken file.
    """
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(1024)
    if not head:
        raise DownloadError(f"{name}: the download is empty; try again or check the url")
    if looks_like_html(head) and not name.lower().endswith((".html", ".htm")):
        raise DownloadError(
            f"{name}: the server sent an HTML page, not the data (an error or login page); "
            "check the url in the config"
        )
    lower = name.lower()
    try:
        if lower.endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                while fh.read(CHUNK):
                    pass
        elif lower.endswith(".zip") or lower.endswith(".whl"):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            if bad is not None:
                raise DownloadError(f"{name}: member {bad} of the archive is corrupt")
        elif lower.endswith((".h5", ".hdf5", ".h5ad")) and not head.startswith(HDF5_SIGNATURE):
            raise DownloadError(f"{name}: not an HDF5 file (no HDF5 signature)")
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise DownloadError(
            f"{name}: the file is truncated or corrupt ({err}); delete it and download it again"
        ) from None


def check_url(url: str, allowed_insecure: Iterable[str] = (), via: str = "") -> None:
    """Refuse any URL that is not https, unless it is listed as allowed.

    Parameters
    ----------
    url
        The URL.
    allowed_insecure
        The config's ``allow_insecure_urls``.
    via
        Names what the URL is for, in the message.

    Raises
    ------
    DownloadError
        Another scheme, naming the fix.
    """
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "https" or url in set(allowed_insecure):
        return
    what = f"{via} redirects to {url}" if via else url
    if scheme in ("http", "ftp"):
        raise DownloadError(
            f"{what}: not https, so the download could be altered on the way; use an https "
            "URL, or list this exact URL under allow_insecure_urls in the config (and pin "
            "its sha256)"
        )
    raise DownloadError(f"{what}: only https URLs are downloaded; check the url in the config")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to a URL :func:`check_url` accepts (no https -> http)."""

    def __init__(self, allowed_insecure: Iterable[str]) -> None:
        super().__init__()
        self.allowed = tuple(allowed_insecure)

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        check_url(newurl, self.allowed, via=req.full_url)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _stream(url: str, out: Path, progress: bool, allowed_insecure: Iterable[str] = ()) -> None:
    check_url(url, allowed_insecure)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    opener = urllib.request.build_opener(_CheckedRedirects(allowed_insecure))
    try:
        with opener.open(request, timeout=60) as resp, out.open("wb") as fh:
            total = resp.headers.get("Content-Length")
            with tqdm(
                total=int(total) if total else None,
                unit="B",
                unit_scale=True,
                desc=Path(url.split("?")[0]).name[:40],
                disable=not progress,
                file=sys.stderr,
            ) as bar:
                for block in iter(lambda: resp.read(CHUNK), b""):
                    fh.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as err:
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}; check the url") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(
            f"{url}: download failed ({reason}); check the network and try again"
        ) from None


def fetch(
    url: str,
    dest: str | Path,
    sha256: str | None = "",
    *,
    progress: bool = True,
    allowed_insecure: Iterable[str] = (),
    lock: ChecksumLock | None = None,
    size: int | None = None,
) -> str:
    """Download a URL to a file, verified and atomically.

    Parameters
    ----------
    url
        https, unless listed in ``allowed_insecure``.
    dest
        The file; written via a temporary file, so it is whole or absent.
    sha256
        The expected sha256 (see :func:`check_sha256`).
    progress
        Show a progress bar.
    allowed_insecure
        The config's ``allow_insecure_urls``.
    lock
        The lock file of the sources without a ``sha256``
        (:mod:`iae_pipeline.prepare.checksums`): checked against it, recorded there on the
        first download.
    size
        The expected size in bytes (the config's ``bytes``), checked first.

    Returns
    -------
    str
        The file's sha256.

    Raises
    ------
    DownloadError
        An insecure URL, a failed download, an HTML page or a broken file.
    ChecksumError
        A sha256 mismatch.
    """
    dest = Path(dest)
    check_url(url, allowed_insecure)
    with staged(dest) as tmp:
        log.info("downloading %s -> %s", url, dest)
        if not url.lower().startswith("https:"):
            log.warning("%s: downloaded without encryption (allow_insecure_urls)", url)
        _stream(url, tmp, progress, allowed_insecure)
        check_size(tmp, size, dest.name)
        check_format(tmp, dest.name)
        digest = check_sha256(tmp, sha256, dest.name, lock, url)
    return digest


def safe_member_name(name: str) -> bool:
    """Whether an archive member's path stays inside the folder it would be extracted to.

    Parameters
    ----------
    name
        The member's path.

    Returns
    -------
    bool
        True for a relative path with no ``..`` part, drive letter or backslash.

    Examples
    --------
    >>> safe_member_name("pegasus/data_files/h.all.v7.5.1.symbols.gmt"), safe_member_name("../x")
    (True, False)
    """
    parts = name.replace("\\", "/").split("/")
    return not (name.startswith(("/", "\\")) or "\\" in name or ":" in parts[0] or ".." in parts)


def archive_members(zf: zipfile.ZipFile, name: str, wanted: Sequence[str] = ()) -> list[str]:
    """The members of a zip archive to read.

    An archive holding any member whose path is absolute or leaves the folder (``../``) is
    refused as a whole: no such archive comes from a genuine source.

    Parameters
    ----------
    zf
        The archive.
    name
        Names it in messages.
    wanted
        Member paths to read (each must exist); empty: the archive's one GMT file.

    Returns
    -------
    list of str

    Raises
    ------
    DownloadError
        An unsafe member, a missing wanted member, or not exactly one GMT file.
    """
    unsafe = [n for n in zf.namelist() if not safe_member_name(n)]
    if unsafe:
        raise DownloadError(
            f"{name}: the archive holds member path(s) outside its folder ({unsafe[:3]}); "
            "refusing it: check the url (the file is not what the source publishes)"
        )
    names = zf.namelist()
    if wanted:
        missing = [m for m in wanted if m not in names]
        if missing:
            raise DownloadError(
                f"{name}: has no member(s) {missing}; check 'members' in the config"
            )
        return list(wanted)
    gmts = [n for n in names if n.lower().endswith(".gmt")]
    if len(gmts) != 1:
        raise DownloadError(
            f"{name}: the zip archive holds {len(gmts)} GMT files ({gmts[:3]}); list the one(s) "
            "to use under 'members' in the config"
        )
    return gmts


def _gmt_text(raw: bytes, name: str, members: Sequence[str] = ()) -> str:
    """The GMT text of a downloaded gene-set file: plain, gzip, or a zip holding one GMT
    (or the listed ``members``). UTF-8 only (:func:`interpretable_ae.genesets.decode_gmt`)."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    elif raw[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            texts = [
                decode_gmt(zf.read(m), f"{name}:{m}") for m in archive_members(zf, name, members)
            ]
        return "\n".join(t.rstrip("\r\n") for t in texts) + "\n"
    elif members:
        raise DownloadError(f"{name}: 'members' is set but the file is not a zip archive")
    if looks_like_html(raw[:1024]):
        raise DownloadError(f"{name}: is an HTML page, not a GMT file; check the url")
    return decode_gmt(raw, name)


def filter_gmt_lines(lines: Iterable[str], prefixes: Sequence[str] = ()) -> list[str]:
    """The GMT lines whose term name starts with one of ``prefixes``.

    Parameters
    ----------
    lines
        GMT lines.
    prefixes
        Name prefixes to keep (empty: every line).

    Returns
    -------
    list of str
        The kept lines, without their line endings.

    Examples
    --------
    >>> filter_gmt_lines(["HALLMARK_A\\td\\tX", "KEGG_B\\td\\tY"], ["HALLMARK_"])
    ['HALLMARK_A\\td\\tX']
    """
    lines = [ln.rstrip("\r\n") for ln in lines]
    if not prefixes:
        return lines
    return [ln for ln in lines if ln.split("\t", 1)[0].startswith(tuple(prefixes))]


def plain_to_gmt_lines(lines: Iterable[str], origin: str) -> list[str]:
    """Sets written one a line as ``NAME gene gene ...`` (blank-separated, no description
    column, as the authors' ``astrocytes.csv``), as GMT lines.

    Blank lines are skipped, as the authors' ``add_annotations`` does.

    Parameters
    ----------
    lines
        The file's lines.
    origin
        The GMT's description column.

    Returns
    -------
    list of str
        Tab-separated GMT lines.
    """
    out = []
    for lineno, line in enumerate(lines, start=1):
        fields = line.split()
        if len(fields) == 1:
            raise DownloadError(
                f"{origin}:{lineno}: gene set '{fields[0]}' has no genes; format: plain "
                "wants a set's name and then its genes on one line"
            )
        if fields:
            out.append("\t".join([fields[0], Path(origin).name or origin, *fields[1:]]))
    return out


def _licence_note(spec: Mapping[str, Any], origin: str) -> str:
    """Licence text written next to a gene-set file: the config's, else by origin."""
    text = spec.get("licence")
    if not text:
        text = REACTOME_LICENCE if "reactome.org" in origin else MSIGDB_LICENCE
    return f"Source: {origin}\n{text}\n"


def fetch_geneset(
    spec: Mapping[str, Any],
    dest: str | Path,
    *,
    progress: bool = True,
    allowed_insecure: Iterable[str] = (),
    lock: ChecksumLock | None = None,
) -> None:
    """Write a gene-set source as one plain GMT file: the ``download_genesets`` rule.

    The GMT is validated with :func:`~interpretable_ae.genesets.read_gmt` (honouring
    ``drop_small_sets``) before it is kept; a licence note is written next to it
    (``<dest>.LICENSE.txt``). A source whose ``sha256`` is empty is checked against
    ``lock`` (trust on first download).

    Parameters
    ----------
    spec
        ``genesets.<name>``: ``source`` is ``url`` (a GMT, ``.gmt.gz`` or a zip holding one
        GMT or the listed ``members``; the sha256 is of the downloaded file), ``pypi_wheel``
        (:func:`fetch_wheel_members`) or ``local`` (``path``, the same formats);
        ``prefixes`` keeps the terms whose names start with one of them; ``format: plain``
        sources are converted first (:func:`plain_to_gmt_lines`).
    dest
        The GMT file.
    progress
        Show a progress bar.
    allowed_insecure
        The config's ``allow_insecure_urls``.
    lock
        The lock file of the sources without a ``sha256``
        (:mod:`iae_pipeline.prepare.checksums`): checked against it, recorded there on the
        first download.

    Raises
    ------
    DownloadError
        A failed or unsafe download, or no usable set.
    ChecksumError
        A sha256 mismatch.
    GeneSetError
        A malformed GMT.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = spec.get("source")
    if source == "url":
        origin = _required(spec, "url")
        with tempfile.TemporaryDirectory(dir=dest.parent) as d:
            raw_path = Path(d) / Path(origin.split("?")[0]).name
            _stream(origin, raw_path, progress, allowed_insecure)
            check_format(raw_path, raw_path.name)
            check_sha256(raw_path, spec.get("sha256"), raw_path.name, lock, origin)
            members = list(spec.get("members") or [])
            lines = _gmt_text(raw_path.read_bytes(), raw_path.name, members).splitlines()
    elif source == "pypi_wheel":
        lines = fetch_wheel_members(spec, progress=progress, lock=lock)
        origin = f"PyPI wheel {spec['package']}: {', '.join(spec['members'])}"
    elif source == "local":
        origin = _required(spec, "path")
        path = Path(origin)
        if not path.is_file():
            raise DownloadError(
                f"{path}: local gene-set file not found; check 'path' in the config"
            )
        check_sha256(path, spec.get("sha256"), path.name, lock, f"local:{origin}")
        lines = _gmt_text(path.read_bytes(), str(path), spec.get("members") or ()).splitlines()
    else:
        raise DownloadError(
            f"gene-set source '{source}' is unknown; use one of url, pypi_wheel, local"
        )
    if spec.get("format", "gmt") == "plain":
        lines = plain_to_gmt_lines(lines, origin)
    kept = filter_gmt_lines(lines, list(spec.get("prefixes") or []))
    if not kept:
        raise DownloadError(
            f"{dest.name}: no gene set kept with prefixes {list(spec.get('prefixes') or [])}; "
            "check the prefixes in the config"
        )
    with staged(dest) as tmp:
        tmp.write_text("\n".join(kept) + "\n", encoding="utf-8")
        sets = read_gmt(tmp, drop_small=bool(spec.get("drop_small_sets", False)))
        log.info("%s: %d gene sets written from %s", dest.name, len(sets), origin)
    # only beside a GMT that passed its check
    dest.with_name(dest.name + ".LICENSE.txt").write_text(_licence_note(spec, origin))


def fetch_wheel_members(
    spec: Mapping[str, Any],
    pip_args: Sequence[str] = (),
    progress: bool = True,
    lock: ChecksumLock | None = None,
) -> list[str]:
    """The lines of files inside a wheel from the Python package index, checked by sha256.

    The wheel is fetched with ``pip download --no-deps --only-binary=:all:`` for one fixed
    platform (manylinux2014_x86_64, Python 3.11), so every machine gets the same file.

    Parameters
    ----------
    spec
        ``package`` (``name==version``), ``members`` (paths inside the wheel) and
        ``sha256`` (of the wheel).
    pip_args
        Added to pip's command line (e.g. ``--no-index --find-links DIR``).
    progress
        Show pip's progress.
    lock
        Where the config's ``sha256`` is empty, each member is checked against this lock
        file as ``<package>#<member>`` (recorded on the first download).

    Returns
    -------
    list of str
        The members' lines, in order.

    Raises
    ------
    DownloadError
        An unpinned package, a failed download, unsafe or missing members.
    ChecksumError
        A sha256 mismatch.
    """
    package = check_package_spec(_required(spec, "package"))
    members = list(spec.get("members") or [])
    if not members:
        raise DownloadError(f"pypi_wheel {package}: 'members' is empty; list the GMT files to use")
    unsafe = [m for m in members if not safe_member_name(m)]
    if unsafe:
        raise DownloadError(
            f"pypi_wheel {package}: members {unsafe} are not paths inside the wheel; give them "
            "as listed by the wheel (e.g. pegasus/data_files/h.all.v7.5.1.symbols.gmt)"
        )
    with tempfile.TemporaryDirectory() as d:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            *WHEEL_PLATFORM, "--dest", d, "--disable-pip-version-check",
            *([] if progress else ["--progress-bar", "off"]), *pip_args, "--", package,
        ]  # fmt: skip
        log.info("running %s", " ".join(cmd))
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise DownloadError(f"pip download {package} failed: {last}")
        wheels = sorted(Path(d).glob("*.whl"))
        if len(wheels) != 1:
            raise DownloadError(f"pip download {package}: expected one wheel, found {len(wheels)}")
        check_format(wheels[0], wheels[0].name)
        pinned = bool((spec.get("sha256") or "").strip())
        check_sha256(wheels[0], spec.get("sha256"), wheels[0].name)
        lines: list[str] = []
        with zipfile.ZipFile(wheels[0]) as zf:
            for member in archive_members(zf, wheels[0].name, members):
                raw = zf.read(member)
                if not pinned and lock is not None:
                    _check_member(raw, f"{package}#{member}", Path(d) / "member", lock)
                lines += decode_gmt(raw, f"{wheels[0].name}:{member}").splitlines()
    return lines


def _check_member(raw: bytes, source: str, scratch: Path, lock: ChecksumLock) -> None:
    """Check one archive member's bytes against ``lock`` (recorded on first download)."""
    scratch.write_bytes(raw)
    check_sha256(scratch, "", source.rsplit("/", 1)[-1], lock, source)


def check_package_spec(package: str) -> str:
    """A pinned ``name==version`` requirement, checked.

    A spec never reaches a shell, and one starting with ``-`` never reaches pip as an option.

    Parameters
    ----------
    package
        The config's ``package``.

    Returns
    -------
    str
        ``package``.

    Raises
    ------
    DownloadError
        Anything but ``name==version``.

    Examples
    --------
    >>> check_package_spec("pegasuspy==1.10.2")
    'pegasuspy==1.10.2'
    """
    if not PACKAGE_SPEC.fullmatch(package):
        raise DownloadError(
            f"pypi_wheel package {package!r} is not a pinned 'name==version' requirement "
            "(letters, digits, '.', '_', '-', '+', '!'); fix 'package' in the config"
        )
    return package


def fetch_source(
    spec: Mapping[str, Any],
    dest: str | Path,
    *,
    progress: bool = True,
    allowed_insecure: Iterable[str] = (),
    lock: ChecksumLock | None = None,
) -> None:
    """Write a config source to a file: the download rules.

    A ``.gmt`` destination is a gene set (:func:`fetch_geneset`); any other file is
    downloaded as is (``url``, ``sha256``, ``bytes``) or, with ``source: local``, copied from
    ``path`` with the same checks.

    Parameters
    ----------
    spec
        The config's entry.
    dest
        The file.
    progress
        Show a progress bar.
    allowed_insecure
        The config's ``allow_insecure_urls``.
    lock
        The lock file of the sources without a ``sha256``
        (:mod:`iae_pipeline.prepare.checksums`): checked against it, recorded there on the
        first download.

    Raises
    ------
    DownloadError, ChecksumError, GeneSetError
        As for :func:`fetch` and :func:`fetch_geneset`.
    """
    dest = Path(dest)
    if dest.suffix == ".gmt":
        fetch_geneset(spec, dest, progress=progress, allowed_insecure=allowed_insecure, lock=lock)
    elif spec.get("source") == "local":
        copy_verified(_required(spec, "path"), dest, spec.get("sha256"), lock=lock)
    else:
        url = _required(spec, "url")
        fetch(url, dest, spec.get("sha256"), progress=progress,
              allowed_insecure=allowed_insecure, lock=lock, size=spec.get("bytes"))  # fmt: skip


def _required(spec: Mapping[str, Any], key: str) -> str:
    value = spec.get(key)
    if not value:
        raise DownloadError(f"source {dict(spec)!r}: '{key}' is missing; add it to the config")
    return str(value)


def copy_verified(
    src: str | Path,
    dest: str | Path,
    sha256: str | None = "",
    *,
    lock: ChecksumLock | None = None,
) -> str:
    """Copy a local file with the same checks as a download.

    Parameters
    ----------
    src
        The local file.
    dest
        The copy; written via a temporary file.
    sha256
        The expected sha256 (see :func:`check_sha256`).
    lock
        As for :func:`fetch`; the source is named ``local:<src>``.

    Returns
    -------
    str
        The file's sha256.

    Raises
    ------
    DownloadError
        A missing file, an HTML page or a broken file.
    ChecksumError
        A sha256 mismatch.
    """
    dest, src = Path(dest), Path(src)
    if not src.is_file():
        raise DownloadError(f"{src}: local file not found; check 'path' in the config")
    with staged(dest) as tmp:
        shutil.copyfile(src, tmp)
        check_format(tmp, dest.name)
        digest = check_sha256(tmp, sha256, dest.name, lock, f"local:{src}")
    return digest
