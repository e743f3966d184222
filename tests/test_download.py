"""Downloads: checksums, refusals (HTML, truncation, HTTP errors), gene-set sources, script."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import logging
import threading
import zipfile
from pathlib import Path

import pytest

from helpers.script_runner import run_as_snakemake
from iae_pipeline.download import (
    ChecksumError,
    DownloadError,
    check_format,
    fetch,
    fetch_geneset,
    fetch_source,
    sha256sum,
)
from interpretable_ae.genesets import GeneSetError, read_gmt

GMT = (
    "REACTOME_INTERFERON_SIGNALING\thttp://x\tSTAT1\tIRF1\tISG15\n"
    "KEGG_SOMETHING\thttp://x\tA\tB\n"
    "HALLMARK_HYPOXIA\thttp://x\tHIF1A\tVEGFA\n"
)


@pytest.fixture()
def server(tmp_path):
    """A local HTTP server over ``tmp_path / 'www'``; yields (root dir, base url)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


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
    import iae_pipeline.download as dl

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
