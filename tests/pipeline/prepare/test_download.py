"""Downloads: checksums, the lock file of unpinned sources (trust on first download), sizes,
refusals (HTML, truncation, HTTP errors, plain http, unsafe archives, bad package specs),
gene-set sources, script.

The servers are real, on loopback: https with a self-signed certificate made by the
``openssl`` command (trusted through ``SSL_CERT_FILE``), and plain http for the refusals.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import logging
import shutil
import ssl
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest

from helpers.script_runner import run_as_snakemake
from iae_pipeline.prepare.checksums import ChecksumLock
from iae_pipeline.prepare.download import (
    ChecksumError,
    DownloadError,
    check_format,
    check_package_spec,
    copy_verified,
    fetch,
    fetch_geneset,
    fetch_source,
    safe_member_name,
    sha256sum,
)
from interpretable_ae.genesets import GeneSetError, read_gmt

GMT = (
    "REACTOME_INTERFERON_SIGNALING\thttp://x\tSTAT1\tIRF1\tISG15\n"
    "KEGG_SOMETHING\thttp://x\tA\tB\n"
    "HALLMARK_HYPOXIA\thttp://x\tHIF1A\tVEGFA\n"
)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Files from ``directory``; ``/redirect?to=<url>`` answers 302 to that URL."""

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _serve(root: Path, context: ssl.SSLContext | None = None):
    handler = functools.partial(_Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    scheme = "https" if context is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> Path:
    """A self-signed certificate for 127.0.0.1 (key and certificate in one PEM file)."""
    if shutil.which("openssl") is None:
        pytest.skip("the https tests need the openssl command to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return d


@pytest.fixture()
def server(tmp_path, certificate, monkeypatch):
    """A local https server over ``tmp_path / 'www'``; yields (root dir, base url)."""
    root = tmp_path / "www"
    root.mkdir()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate / "cert.pem"))
    with _serve(root, context) as url:
        yield root, url


@pytest.fixture()
def http_server(tmp_path):
    """A local plain-http server over ``tmp_path / 'plain'``; yields (root dir, base url)."""
    root = tmp_path / "plain"
    root.mkdir()
    with _serve(root) as url:
        yield root, url


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".")]


def test_fetch_verifies_sha256_and_renames(server, tmp_path):
    root, url = server
    payload = gzip.compress(b"gene\tc1\nA\t1\n")
    (root / "x.txt.gz").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "out" / "x.txt.gz"
    assert fetch(f"{url}/x.txt.gz", dest, digest, progress=False) == digest
    assert dest.read_bytes() == payload and sha256sum(dest) == digest
    assert _leftovers(dest.parent) == []


def test_empty_sha256_logs_the_computed_value(server, tmp_path, caplog):
    root, url = server
    (root / "x.csv").write_text("A,a\n")
    with caplog.at_level(logging.INFO):
        digest = fetch(f"{url}/x.csv", tmp_path / "x.csv", "", progress=False)
    assert f"sha256 {digest} (no sha256 configured" in caplog.text


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    root, url = server
    (root / "x.csv").write_text("A,a\n")
    dest = tmp_path / "x.csv"
    with pytest.raises(ChecksumError, match="does not match the configured 0000"):
        fetch(f"{url}/x.csv", dest, "0" * 64, progress=False)
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_html_error_page_is_refused(server, tmp_path):
    root, url = server
    (root / "matrix.mtx.gz").write_text("<!DOCTYPE html>\n<html><body>Not found</body></html>")
    dest = tmp_path / "matrix.mtx.gz"
    with pytest.raises(DownloadError, match="sent an HTML page, not the data"):
        fetch(f"{url}/matrix.mtx.gz", dest, "", progress=False)
    assert not dest.exists()


def test_http_404_is_a_clear_error(server, tmp_path):
    _, url = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(f"{url}/missing.gz", tmp_path / "missing.gz", "", progress=False)
    assert not (tmp_path / "missing.gz").exists()


def test_truncated_gzip_and_fake_h5_are_refused(tmp_path):
    truncated = tmp_path / "t.txt.gz"
    truncated.write_bytes(gzip.compress(bytes(range(256)) * 400)[:-20])
    with pytest.raises(DownloadError, match="truncated or corrupt"):
        check_format(truncated, truncated.name)
    fake = tmp_path / "f.h5"
    fake.write_bytes(b"not hdf5 at all")
    with pytest.raises(DownloadError, match="not an HDF5 file"):
        check_format(fake, fake.name)


def test_real_cellranger_h5_passes_the_check(real):
    path = real("expression/cellranger_v3_chr21_filtered_feature_bc_matrix.h5")
    check_format(path, path.name)


def test_geneset_from_zip_with_prefixes_and_licence(server, tmp_path):
    root, url = server
    with zipfile.ZipFile(root / "sets.gmt.zip", "w") as zf:
        zf.writestr("sets.gmt", GMT)
    dest = tmp_path / "gs" / "mine.gmt"
    spec = {"source": "url", "url": f"{url}/sets.gmt.zip", "prefixes": ["REACTOME_", "HALLMARK_"]}
    fetch_geneset(spec, dest, progress=False)
    assert list(read_gmt(dest)) == ["REACTOME_INTERFERON_SIGNALING", "HALLMARK_HYPOXIA"]
    assert "MSigDB" in dest.with_name("mine.gmt.LICENSE.txt").read_text()


def test_geneset_gz_url_and_local_copy(server, tmp_path):
    root, url = server
    (root / "s.gmt.gz").write_bytes(gzip.compress(GMT.encode()))
    fetch_source({"source": "url", "url": f"{url}/s.gmt.gz"}, tmp_path / "a.gmt", progress=False)
    assert len(read_gmt(tmp_path / "a.gmt")) == 3
    fetch_source({"source": "local", "path": str(root / "s.gmt.gz")}, tmp_path / "b.gmt")
    assert read_gmt(tmp_path / "b.gmt") == read_gmt(tmp_path / "a.gmt")


def test_plain_gene_sets_as_the_authors_astrocytes_csv(server, tmp_path):
    """format: plain, the layout of the authors' astrocytes.csv: one set a line, its name
    then its genes, separated by spaces, no description column, a trailing blank line."""
    root, url = server
    genes = ["IGFBP5", "IGF2", "PTN", "S100B", "1500015O10RIK", "GFAP"]
    text = "ASTROCYTES " + " ".join(genes) + " \n\n"
    (root / "astrocytes.csv").write_text(text)
    spec = {"source": "url", "url": f"{url}/astrocytes.csv", "format": "plain"}
    fetch_geneset(spec, tmp_path / "astro.gmt", progress=False)
    assert read_gmt(tmp_path / "astro.gmt") == {"ASTROCYTES": genes}  # IGFBP5 is a gene
    (root / "local.txt").write_text("SET_A\tSTAT1 IRF1\nSET_B  CD14 LYZ FCGR3A\n")
    fetch_geneset({"source": "local", "path": str(root / "local.txt"), "format": "plain"},
                  tmp_path / "local.gmt")  # fmt: skip
    assert read_gmt(tmp_path / "local.gmt") == {
        "SET_A": ["STAT1", "IRF1"], "SET_B": ["CD14", "LYZ", "FCGR3A"],
    }  # fmt: skip
    (root / "bad.txt").write_text("LONELY\n")
    with pytest.raises(DownloadError, match=r"bad.txt:1: gene set 'LONELY' has no genes"):
        fetch_geneset({"source": "local", "path": str(root / "bad.txt"), "format": "plain"},
                      tmp_path / "bad.gmt")  # fmt: skip
    assert not (tmp_path / "bad.gmt").exists()


def test_bad_gmt_source_leaves_no_output(server, tmp_path):
    root, url = server
    (root / "dup.gmt").write_text(GMT + GMT)
    dest = tmp_path / "dup_out.gmt"
    with pytest.raises(GeneSetError, match="duplicate gene set name"):
        fetch_geneset({"source": "url", "url": f"{url}/dup.gmt"}, dest, progress=False)
    assert not dest.exists() and _leftovers(tmp_path) == []
    with pytest.raises(DownloadError, match="no gene set kept with prefixes"):
        fetch_geneset({"source": "url", "url": f"{url}/dup.gmt", "prefixes": ["GO_"]}, dest)


def _fake_wheel(directory: Path) -> Path:
    """A minimal valid wheel holding two GMT members, as pegasuspy ships MSigDB files."""
    wheel = directory / "fakesets-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fakesets/__init__.py", "")
        zf.writestr("fakesets/data/h.gmt", GMT.splitlines()[2] + "\n")
        zf.writestr("fakesets/data/c2.gmt", "\n".join(GMT.splitlines()[:2]) + "\n")
        zf.writestr(
            "fakesets-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: fakesets\nVersion: 1.0\n",
        )
        zf.writestr(
            "fakesets-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr("fakesets-1.0.dist-info/RECORD", "")
    return wheel


def test_pypi_wheel_members_through_pip_download(tmp_path, monkeypatch):
    """The real pip download path, offline: pip resolves the wheel from a local folder."""
    import iae_pipeline.prepare.download as dl

    links = tmp_path / "links"
    links.mkdir()
    wheel = _fake_wheel(links)
    spec = {
        "source": "pypi_wheel",
        "package": "fakesets==1.0",
        "members": ["fakesets/data/h.gmt", "fakesets/data/c2.gmt"],
        "sha256": sha256sum(wheel),
        "prefixes": ["HALLMARK_", "REACTOME_"],
    }
    offline = functools.partial(dl.fetch_wheel_members, pip_args=["--no-index", "-f", str(links)])
    monkeypatch.setattr(dl, "fetch_wheel_members", offline)
    fetch_geneset(spec, tmp_path / "demo.gmt")
    assert list(read_gmt(tmp_path / "demo.gmt")) == [
        "HALLMARK_HYPOXIA",
        "REACTOME_INTERFERON_SIGNALING",
    ]
    with pytest.raises(ChecksumError, match="does not match"):
        fetch_geneset({**spec, "sha256": "1" * 64}, tmp_path / "other.gmt")
    assert not (tmp_path / "other.gmt").exists()


def test_download_script_fails_with_one_line_and_no_output(server, tmp_path):
    root, url = server
    (root / "x.csv").write_text("A,a\n")
    out, log = tmp_path / "resources" / "x.csv", tmp_path / "x.log"
    code = run_as_snakemake(
        "download",
        output={"file": str(out)},
        log={"log": str(log)},
        params={"spec": {"url": f"{url}/x.csv", "sha256": "f" * 64}},
    )
    assert code == 1 and not out.exists()
    errors = [ln for ln in log.read_text().splitlines() if " ERROR " in ln]
    assert len(errors) == 1 and "does not match the configured" in errors[0]
    code = run_as_snakemake(
        "download",
        output={"file": str(out)},
        log={"log": str(log)},
        params={"spec": {"url": f"{url}/x.csv", "sha256": ""}},
    )
    assert code == 0 and out.read_text() == "A,a\n"


# ---- https only, redirects, archives, package specs, encodings ---------------------------


def test_plain_http_is_refused_unless_listed(http_server, tmp_path):
    root, url = http_server
    (root / "x.csv").write_text("A,a\n")
    dest = tmp_path / "x.csv"
    with pytest.raises(DownloadError, match=r"not https.*allow_insecure_urls") as err:
        fetch(f"{url}/x.csv", dest, "", progress=False)
    assert "\n" not in str(err.value) and f"{url}/x.csv" in str(err.value)
    assert not dest.exists() and _leftovers(tmp_path) == []
    fetch(f"{url}/x.csv", dest, "", progress=False, allowed_insecure=[f"{url}/x.csv"])
    assert dest.read_text() == "A,a\n"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x.gmt", "x.gmt"])
def test_other_schemes_are_refused_before_any_request(tmp_path, url):
    with pytest.raises(DownloadError, match="https"):
        fetch(url, tmp_path / "x", "", progress=False)
    assert not (tmp_path / "x").exists()


def test_a_redirect_from_https_to_http_is_refused(server, http_server, tmp_path):
    _, secure = server
    plain_root, plain = http_server
    (plain_root / "x.csv").write_text("A,a\n")
    target = f"{plain}/x.csv"
    dest = tmp_path / "x.csv"
    with pytest.raises(DownloadError, match=r"redirects to http://127\.0\.0\.1.*not https"):
        fetch(f"{secure}/redirect?to={target}", dest, "", progress=False)
    assert not dest.exists()
    fetch(f"{secure}/redirect?to={target}", dest, "", progress=False, allowed_insecure=[target])
    assert dest.read_text() == "A,a\n"


def test_the_download_script_takes_the_allow_list_from_the_config(http_server, tmp_path):
    root, url = http_server
    (root / "x.csv").write_text("A,a\n")
    out, log = tmp_path / "resources" / "x.csv", tmp_path / "x.log"
    sections = {
        "output": {"file": str(out)},
        "log": {"log": str(log)},
        "params": {"spec": {"url": f"{url}/x.csv", "sha256": ""}},
    }
    assert run_as_snakemake("download", config={}, **sections) == 1 and not out.exists()
    errors = [ln for ln in log.read_text().splitlines() if " ERROR " in ln]
    assert len(errors) == 1 and "allow_insecure_urls" in errors[0]
    config = {"allow_insecure_urls": [f"{url}/x.csv"]}
    assert run_as_snakemake("download", config=config, **sections) == 0
    assert out.read_text() == "A,a\n"


@pytest.mark.parametrize(
    ("name", "safe"),
    [("sets.gmt", True), ("a/b/sets.gmt", True), ("../sets.gmt", False),
     ("a/../../sets.gmt", False), ("/etc/sets.gmt", False), ("C:/sets.gmt", False),
     ("a\\..\\sets.gmt", False)],
)  # fmt: skip
def test_safe_member_names(name, safe):
    assert safe_member_name(name) is safe


def test_a_zip_with_paths_leaving_its_folder_is_refused(server, tmp_path):
    root, url = server
    with zipfile.ZipFile(root / "sets.zip", "w") as zf:
        zf.writestr("sets.gmt", GMT)
        zf.writestr("../../evil.gmt", GMT)
    dest = tmp_path / "gs" / "mine.gmt"
    with pytest.raises(DownloadError, match=r"outside its folder \(\['\.\./\.\./evil\.gmt'\]\)"):
        fetch_geneset({"source": "url", "url": f"{url}/sets.zip"}, dest, progress=False)
    assert not dest.exists()
    written = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert "evil.gmt" not in written and "mine.gmt" not in written


def test_only_the_listed_zip_member_is_read(server, tmp_path):
    root, url = server
    with zipfile.ZipFile(root / "two.zip", "w") as zf:
        zf.writestr("h.gmt", GMT.splitlines()[2] + "\n")
        zf.writestr("c2.gmt", GMT.splitlines()[0] + "\n")
    spec = {"source": "url", "url": f"{url}/two.zip"}
    with pytest.raises(DownloadError, match="holds 2 GMT files.*list the one"):
        fetch_geneset(spec, tmp_path / "a.gmt", progress=False)
    fetch_geneset({**spec, "members": ["h.gmt"]}, tmp_path / "a.gmt", progress=False)
    assert list(read_gmt(tmp_path / "a.gmt")) == ["HALLMARK_HYPOXIA"]


@pytest.mark.parametrize(
    "package",
    ["pegasuspy==1.10.2; rm -rf ~", "pegasuspy==1.10.2' && echo x '", "--index-url=http://x",
     "pegasuspy", "pegasuspy>=1.0", "-r requirements.txt"],
)  # fmt: skip
def test_package_specs_that_are_not_a_pin_never_reach_pip(package, tmp_path, monkeypatch):
    import iae_pipeline.prepare.download as dl

    def no_pip(*args, **kwargs):
        raise AssertionError("pip must not run")

    monkeypatch.setattr(dl.subprocess, "run", no_pip)
    spec = {"source": "pypi_wheel", "package": package, "members": ["a.gmt"], "sha256": ""}
    with pytest.raises(DownloadError, match="not a pinned 'name==version'") as err:
        fetch_geneset(spec, tmp_path / "x.gmt")
    assert "\n" not in str(err.value)
    assert check_package_spec("pegasuspy==1.10.2") == "pegasuspy==1.10.2"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xef\xbb\xbf" + GMT.encode(), None),
        (GMT.replace("ISG15", "ISG\xe9").encode("latin-1"), r"s\.gmt:1: byte 0xe9 is not UTF-8"),
        (GMT.encode("utf-16"), "UTF-16"),
    ],
    ids=["bom", "latin-1", "utf-16"],
)
def test_gene_set_encodings(server, tmp_path, payload, message):
    root, url = server
    (root / "s.gmt").write_bytes(payload)
    dest = tmp_path / "out.gmt"
    spec = {"source": "url", "url": f"{url}/s.gmt"}
    if message is None:
        fetch_geneset(spec, dest, progress=False)
        assert next(iter(read_gmt(dest))) == "REACTOME_INTERFERON_SIGNALING"
        return
    with pytest.raises(GeneSetError, match=message):
        fetch_geneset(spec, dest, progress=False)
    assert not dest.exists()


# ---- trust on first download: the lock file --------------------------------------------


def _recorded(lock_path: Path) -> dict[str, str]:
    import yaml

    return yaml.safe_load(lock_path.read_text())


def test_first_download_is_recorded_and_a_changed_file_refused(server, tmp_path):
    root, url = server
    (root / "m.mtx.gz").write_bytes(gzip.compress(b"%%MatrixMarket\n1 1 1\n"))
    first = sha256sum(root / "m.mtx.gz")
    lock = ChecksumLock(tmp_path / "config" / "paper.lock.yaml")
    fetch(f"{url}/m.mtx.gz", tmp_path / "a" / "m.mtx.gz", "", progress=False, lock=lock)
    assert _recorded(lock.path) == {f"{url}/m.mtx.gz": first}
    assert lock.path.read_text().startswith("# sha256 of every source that paper.yaml")
    fetch(f"{url}/m.mtx.gz", tmp_path / "b" / "m.mtx.gz", "", progress=False, lock=lock)

    (root / "m.mtx.gz").write_bytes(gzip.compress(b"%%MatrixMarket\n2 2 1\n"))
    changed = sha256sum(root / "m.mtx.gz")
    dest = tmp_path / "c" / "m.mtx.gz"
    with pytest.raises(ChecksumError) as err:
        fetch(f"{url}/m.mtx.gz", dest, "", progress=False, lock=lock)
    message = str(err.value)
    assert "\n" not in message and message.startswith("m.mtx.gz: sha256 ")
    assert f"{changed} differs from {first}, recorded in {lock.path}" in message
    assert "delete its line from paper.lock.yaml" in message
    assert not dest.exists() and _leftovers(dest.parent) == []
    assert _recorded(lock.path) == {f"{url}/m.mtx.gz": first}  # never overwritten
    # a sha256 pinned in the config takes precedence over the lock file
    fetch(f"{url}/m.mtx.gz", dest, changed, progress=False, lock=lock)


def test_the_published_size_is_checked(server, tmp_path):
    root, url = server
    (root / "b.tsv.gz").write_bytes(gzip.compress(b"AAACATACAATGCC-1\n"))
    size = (root / "b.tsv.gz").stat().st_size
    spec = {"url": f"{url}/b.tsv.gz", "sha256": "", "bytes": size + 1}
    with pytest.raises(ChecksumError, match=rf"b.tsv.gz: {size} bytes, not the {size + 1}"):
        fetch_source(spec, tmp_path / "b.tsv.gz", progress=False)
    fetch_source({**spec, "bytes": size}, tmp_path / "b.tsv.gz", progress=False)


def test_wheel_members_are_locked_when_the_wheel_is_not_pinned(tmp_path, monkeypatch):
    import iae_pipeline.prepare.download as dl

    links = tmp_path / "links"
    links.mkdir()
    _fake_wheel(links)
    offline = functools.partial(dl.fetch_wheel_members, pip_args=["--no-index", "-f", str(links)])
    monkeypatch.setattr(dl, "fetch_wheel_members", offline)
    spec = {"source": "pypi_wheel", "package": "fakesets==1.0", "sha256": "",
            "members": ["fakesets/data/h.gmt", "fakesets/data/c2.gmt"]}  # fmt: skip
    lock = ChecksumLock(tmp_path / "own.lock.yaml")
    fetch_geneset(spec, tmp_path / "a.gmt", lock=lock)
    with zipfile.ZipFile(links / "fakesets-1.0-py3-none-any.whl") as zf:
        hashes = {m: hashlib.sha256(zf.read(m)).hexdigest() for m in spec["members"]}
    assert _recorded(lock.path) == {f"fakesets==1.0#{m}": h for m, h in hashes.items()}

    wheel = links / "fakesets-1.0-py3-none-any.whl"
    members = {}
    with zipfile.ZipFile(wheel) as zf:
        members = {m: zf.read(m) for m in zf.namelist()}
    members["fakesets/data/h.gmt"] = b"HALLMARK_OTHER\tx\tA\tB\n"  # the same wheel, changed
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(ChecksumError, match=r"h.gmt: sha256 \w+ differs from " + hashes[
        "fakesets/data/h.gmt"] + r", recorded in .*fakesets==1.0#fakesets/data/h.gmt"):  # fmt: skip
        fetch_geneset(spec, tmp_path / "b.gmt", lock=lock)
    assert not (tmp_path / "b.gmt").exists()


def test_a_local_copy_is_locked_too(tmp_path):
    own = tmp_path / "astro.txt"
    own.write_text("ASTROCYTES GFAP S100B AQP4\n")
    lock = ChecksumLock(tmp_path / "own.lock.yaml")
    spec = {"source": "local", "path": str(own), "format": "plain"}
    fetch_geneset(spec, tmp_path / "a.gmt", lock=lock)
    assert _recorded(lock.path) == {f"local:{own}": sha256sum(own)}
    own.write_text("ASTROCYTES GFAP S100B\n")
    with pytest.raises(ChecksumError, match="astro.txt: sha256 .* differs from"):
        fetch_geneset(spec, tmp_path / "b.gmt", lock=lock)
    data = tmp_path / "x.csv"
    data.write_text("A,a\n")
    copy_verified(data, tmp_path / "copy.csv", lock=lock)
    assert _recorded(lock.path)[f"local:{data}"] == sha256sum(data)


def _record_one(lock_path: str, index: int) -> None:
    ChecksumLock(lock_path).check(f"https://example.org/{index}", f"{index:064x}", f"f{index}")


def test_downloads_finishing_at_once_all_get_their_line(tmp_path):
    """Eight processes record a source each at the same moment: none is lost."""
    import multiprocessing

    lock_path = tmp_path / "own.lock.yaml"
    context = multiprocessing.get_context("fork")
    with context.Pool(8) as pool:
        pool.starmap(_record_one, [(str(lock_path), i) for i in range(8)] * 3)
    assert _recorded(lock_path) == {f"https://example.org/{i}": f"{i:064x}" for i in range(8)}


@pytest.mark.parametrize(
    ("text", "message"),
    [("https://x: [1, 2\n", "not valid YAML at line"), ("- a\n- b\n", "not a mapping"),
     ("https://x: abc\n", "the sha256 of https://x is 'abc', not 64 lower-case hex")],
)  # fmt: skip
def test_a_damaged_lock_file_is_one_line(tmp_path, text, message):
    lock = ChecksumLock(tmp_path / "own.lock.yaml")
    lock.path.write_text(text)
    with pytest.raises(DownloadError, match=message) as err:
        lock.check("https://y", "0" * 64, "y")
    assert "\n" not in str(err.value) and str(lock.path) in str(err.value)


def test_the_download_script_records_in_the_configs_lock_file(server, tmp_path):
    root, url = server
    (root / "x.csv").write_text("A,a\n")
    lock_path = tmp_path / "config" / "own.lock.yaml"
    sections = {
        "log": {"log": str(tmp_path / "x.log")},
        "params": {"spec": {"url": f"{url}/x.csv", "sha256": ""}},
        "config": {"sha256_lock": str(lock_path)},
    }
    first = tmp_path / "resources" / "x.csv"
    assert run_as_snakemake("download", output={"file": str(first)}, **sections) == 0
    assert _recorded(lock_path) == {f"{url}/x.csv": sha256sum(first)}
    (root / "x.csv").write_text("A,b\n")
    again = tmp_path / "resources" / "again.csv"
    assert run_as_snakemake("download", output={"file": str(again)}, **sections) == 1
    errors = [ln for ln in (tmp_path / "x.log").read_text().splitlines() if " ERROR " in ln]
    assert len(errors) == 1 and "again.csv: sha256" in errors[0] and "differs from" in errors[0]
    assert not again.exists()
