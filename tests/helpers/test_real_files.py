"""The resolver for real test files: mirror, ../shared, download (on loopback only), errors."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import re
import socket
import threading
import zipfile
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pytest
import scipy.sparse as sp

from helpers import real_files as rf
from helpers.real_files import (
    LigerH5ToH5ad,
    RealFile,
    RealFileError,
    RealFileMismatch,
    RealFileUnavailable,
    Remote,
    Source,
    ZipMember,
    real_file,
)

GMT = b"REACTOME_A\thttp://x\tSTAT1\tIRF1\nKEGG_B\thttp://x\tA\tB\nHALLMARK_C\thttp://x\tHIF1A\n"
REL = "genesets/tiny.gmt"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args) -> None:  # quiet, and count what was asked for
        self.requests.append(self.path)


@pytest.fixture()
def server(tmp_path):
    """A loopback HTTP server over ``tmp_path / 'www'``: (root, base url, requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []
    handler = functools.partial(type("H", (_Handler,), {"requests": requests}), directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def places(tmp_path, monkeypatch):
    """No mirror, a ../shared that does not exist, an empty cache; returns (shared, cache)."""
    shared = tmp_path / "shared" / "data"
    cache = tmp_path / "cache"
    monkeypatch.delenv(rf.ENV_MIRROR, raising=False)
    monkeypatch.setenv(rf.ENV_CACHE, str(cache))
    monkeypatch.setattr(rf, "SHARED_DATA", shared)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    rf._CHECKED.clear()
    return shared, cache


def closed_port_url(name: str) -> str:
    """A loopback URL nothing listens on: the download fails at once, as with no network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


def entry(url: str, data: bytes = GMT, relpath: str = REL) -> dict[str, RealFile]:
    return {relpath: RealFile(relpath, sha(data), (Source((Remote(url, sha(data)),)),))}


def put(root: Path, relpath: str, data: bytes) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- local mirrors ------------------------------------------------------------------------


def test_env_mirror_wins_over_shared(places, tmp_path, monkeypatch):
    shared, _ = places
    put(shared, REL, GMT)
    mirror = tmp_path / "mirror"
    expected = put(mirror, REL, GMT)
    monkeypatch.setenv(rf.ENV_MIRROR, str(mirror))
    assert real_file(REL, registry=entry(closed_port_url("x"))) == expected


def test_shared_is_used_without_a_mirror(places):
    shared, cache = places
    expected = put(shared, REL, GMT)
    assert real_file(REL, registry=entry(closed_port_url("x"))) == expected
    assert not cache.exists()


def test_a_mirror_without_the_file_falls_through_to_shared(places, tmp_path, monkeypatch):
    shared, _ = places
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv(rf.ENV_MIRROR, str(tmp_path / "mirror"))
    expected = put(shared, REL, GMT)
    assert real_file(REL, registry=entry(closed_port_url("x"))) == expected


def test_a_local_file_with_other_content_is_an_error(places):
    shared, _ = places
    put(shared, REL, GMT + b"EXTRA\tx\tA\n")
    with pytest.raises(RealFileMismatch, match=r"genesets/tiny\.gmt.*not the registered file"):
        real_file(REL, registry=entry(closed_port_url("x")))


def test_unregistered_file_is_an_error(places):
    with pytest.raises(RealFileError, match="not a registered real test file"):
        real_file("genesets/nope.gmt", registry=entry(closed_port_url("x")))


# --- downloads (loopback only) ------------------------------------------------------------


def test_download_verifies_and_caches(places, server):
    _, cache = places
    root, base, requests = server
    (root / "tiny.gmt").write_bytes(GMT)
    registry = entry(f"{base}/tiny.gmt")
    path = real_file(REL, registry=registry)
    assert path == cache / REL
    assert path.read_bytes() == GMT
    assert real_file(REL, registry=registry) == path
    assert requests == ["/tiny.gmt"], "the second call must come from the cache"


def test_the_cache_directory_defaults_to_pooch_os_cache(monkeypatch):
    import pooch

    monkeypatch.delenv(rf.ENV_CACHE, raising=False)
    assert rf.cache_dir() == Path(pooch.os_cache("interpretable-ae-tests"))


def test_wrong_sha256_is_refused_and_nothing_is_cached(places, server):
    _, cache = places
    root, base, _ = server
    (root / "tiny.gmt").write_bytes(GMT + b"CHANGED\tx\tA\n")  # the source changed
    with pytest.raises(RealFileMismatch) as err:
        real_file(REL, registry=entry(f"{base}/tiny.gmt"))
    msg = str(err.value)
    assert "genesets/tiny.gmt" in msg and "sha256" in msg.lower()
    assert sha(GMT) in msg
    assert not (cache / REL).exists()


def test_no_network_gives_one_error_naming_the_three_places(places):
    shared, cache = places
    url = closed_port_url("tiny.gmt")
    with pytest.raises(RealFileUnavailable) as err:
        real_file(REL, registry=entry(url))
    msg = str(err.value)
    assert "genesets/tiny.gmt" in msg
    assert re.search(r"1\. \$IAE_TEST_DATA: not set", msg)
    assert re.search(rf"2\. {re.escape(str(shared))}: does not exist", msg)
    assert re.search(rf"3\. download into the cache {re.escape(str(cache / REL))}", msg)
    assert url in msg
    assert isinstance(err.value, FileNotFoundError)


def test_no_network_with_a_mirror_set_names_the_missing_mirror_file(places, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv(rf.ENV_MIRROR, str(mirror))
    with pytest.raises(RealFileUnavailable, match=re.escape(f"no file {mirror / REL}")):
        real_file(REL, registry=entry(closed_port_url("tiny.gmt")))


def test_derived_member_of_a_downloaded_wheel_with_fallback(places, server):
    _, cache = places
    root, base, requests = server
    wheel = root / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pkg/data/c2.gmt", GMT)
    wanted = b"REACTOME_A\thttp://x\tSTAT1\tIRF1\n"
    relpath = "genesets/c2.reactome.gmt"
    registry = {
        relpath: RealFile(
            relpath,
            sha(wanted),
            (
                Source((Remote(closed_port_url("gone.gmt"), sha(wanted)),)),  # source 1 is down
                Source(
                    (Remote(f"{base}/{wheel.name}", sha(wheel.read_bytes())),),
                    ZipMember("pkg/data/c2.gmt", ("REACTOME_",)),
                ),
            ),
        )
    }
    path = real_file(relpath, registry=registry)
    assert path == cache / relpath and path.read_bytes() == wanted
    assert real_file(relpath, registry=registry) == path
    assert requests == [f"/{wheel.name}"]


def test_derived_file_with_other_content_is_refused(places, server):
    _, cache = places
    root, base, _ = server
    wheel = root / "pkg.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("m.gmt", GMT)
    registry = {
        REL: RealFile(
            REL,
            sha(b"something else\n"),
            (Source((Remote(f"{base}/pkg.whl", sha(wheel.read_bytes())),), ZipMember("m.gmt")),),
        )
    }
    with pytest.raises(RealFileMismatch, match="registry"):
        real_file(REL, registry=registry)
    assert not (cache / REL).exists()
    assert not [p for p in (cache / "genesets").iterdir()], "no temporary file left behind"


# --- the liger -> h5ad conversion and content checks --------------------------------------


def write_liger_h5(path: Path, counts: np.ndarray, genes: list[str], barcodes: list[str]) -> None:
    """A liger example file: genes x cells CSC under matrix/ (as in welch-lab/liger extdata)."""
    m = sp.csc_matrix(counts.astype(np.float64))  # genes x cells
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["data"] = m.data
        g["indices"] = m.indices.astype(np.uint32)
        g["indptr"] = m.indptr.astype(np.uint32)
        g["shape"] = np.array(m.shape, dtype=np.uint64)
        g["barcodes"] = np.array([b.encode() for b in barcodes], dtype=object)
        g.create_group("features")["name"] = np.array([s.encode() for s in genes], dtype=object)


def test_liger_conversion_layout(tmp_path):
    rng = np.random.default_rng(0)
    ctrl = rng.poisson(1.0, size=(4, 3))  # genes x cells
    stim = rng.poisson(1.0, size=(3, 2))
    write_liger_h5(tmp_path / "ctrl.h5", ctrl, ["ISG15", "ID3", "X1", "RPL11"], ["c1", "c2", "c3"])
    write_liger_h5(tmp_path / "stim.h5", stim, ["RPL11", "ISG15", "ID3"], ["s1", "s2"])
    out = tmp_path / "k.h5ad"
    LigerH5ToH5ad(("control", "stimulated"))([tmp_path / "ctrl.h5", tmp_path / "stim.h5"], out)
    a = ad.read_h5ad(out)
    assert a.obs_names.tolist() == ["c1", "c2", "c3", "s1", "s2"]
    assert a.var_names.tolist() == ["ISG15", "ID3", "RPL11"]  # shared genes, first file's order
    assert a.obs.columns.tolist() == ["condition", "cell_type"]
    assert a.obs["condition"].cat.categories.tolist() == ["control", "stimulated"]
    assert a.obs["condition"].tolist() == ["control"] * 3 + ["stimulated"] * 2
    assert a.obs["cell_type"].tolist() == ["PBMC"] * 5
    assert sp.issparse(a.X) and a.X.format == "csr" and a.X.dtype == np.float32
    expected = np.vstack([ctrl[[0, 1, 3]].T, stim[[1, 2, 0]].T])
    np.testing.assert_array_equal(a.X.toarray(), expected)


def test_h5ad_content_sha256_ignores_how_the_file_was_written(tmp_path):
    X = sp.random(20, 7, density=0.3, format="csr", dtype=np.float32, random_state=0)
    X.data = np.ceil(X.data * 5)
    a = ad.AnnData(X=X)
    a.obs["condition"] = ["control"] * 10 + ["stimulated"] * 10
    a.obs["condition"] = a.obs["condition"].astype("category")
    a.write_h5ad(tmp_path / "gzip.h5ad", compression="gzip")
    b = a.copy()
    b.X = sp.csr_matrix(b.X[:, ::-1])[:, ::-1]  # same values, indices in another order
    b.write_h5ad(tmp_path / "plain.h5ad")
    assert rf.sha256_of(tmp_path / "gzip.h5ad") != rf.sha256_of(tmp_path / "plain.h5ad")
    same = rf.h5ad_content_sha256(tmp_path / "gzip.h5ad")
    assert same == rf.h5ad_content_sha256(tmp_path / "plain.h5ad")
    c = a.copy()
    c.X = c.X.copy()
    c.X.data[0] += 1
    c.write_h5ad(tmp_path / "other.h5ad", compression="gzip")
    assert rf.h5ad_content_sha256(tmp_path / "other.h5ad") != same


def test_a_file_is_accepted_by_content_where_registered(places, tmp_path):
    shared, _ = places
    a = ad.AnnData(X=sp.csr_matrix(np.eye(3, dtype=np.float32)))
    a.write_h5ad(tmp_path / "ref.h5ad", compression="gzip")
    put(shared, "expression/k.h5ad", b"")
    a.write_h5ad(shared / "expression/k.h5ad")  # other bytes, same content
    registry = {
        "expression/k.h5ad": RealFile(
            "expression/k.h5ad",
            rf.sha256_of(tmp_path / "ref.h5ad"),
            (),
            content_sha256=rf.h5ad_content_sha256(tmp_path / "ref.h5ad"),
        )
    }
    assert real_file("expression/k.h5ad", registry=registry) == shared / "expression/k.h5ad"


# --- the registry itself ------------------------------------------------------------------

PINNED = re.compile(
    r"^https://(raw\.githubusercontent\.com/[^/]+/[^/]+/[0-9a-f]{40}/"
    r"|files\.pythonhosted\.org/packages/"
    r"|mccarrolllab\.org/wp-content/uploads/2015/05/)"
)


def test_registry_entries_are_pinned_and_have_sources():
    assert len(rf.REGISTRY) == 10
    for relpath, e in rf.REGISTRY.items():
        assert relpath == e.relpath and relpath.split("/")[0] in {"genesets", "expression"}
        assert re.fullmatch(r"[0-9a-f]{64}", e.sha256), relpath
        assert e.sources, f"{relpath}: no public source"
        assert e.verified, f"{relpath}: no source checked against the sha256"
        for s in e.sources:
            for r in s.inputs:
                assert PINNED.match(r.url), f"{relpath}: {r.url} is not pinned"
                assert re.fullmatch(r"[0-9a-f]{64}", r.sha256), r.url


def test_registry_matches_the_local_mirror():
    """Every registered file in the mirror this machine has (skips without one)."""
    root = Path(os.environ.get(rf.ENV_MIRROR) or rf.SHARED_DATA)
    if not root.is_dir():
        pytest.skip(f"no local mirror of the real test files at {root}")
    bad = [
        r for r, e in rf.REGISTRY.items() if not ((root / r).is_file() and rf.matches(e, root / r))
    ]
    assert not bad, f"{root}: not the registered files: {bad}"
