"""Real test files: one resolver for the small real data files the tests read.

``real_file("genesets/h.all.v7.5.1.symbols.gmt")`` returns a local path to the file, looking in
this order:

1. ``$IAE_TEST_DATA/<relpath>``: a local mirror directory with the layout of ``../shared/data``;
2. ``<repo>/../shared/data/<relpath>``: the developers' machines and CI;
3. a download cache (``$IAE_TEST_CACHE``, else ``pooch.os_cache("interpretable-ae-tests")``):
   the file is downloaded with pooch from a URL pinned to a commit or a release and checked by
   sha256, or derived deterministically from such downloads (each checked by sha256).

Every file, wherever it is found, is checked against :data:`REGISTRY` (once per process), so a
stale mirror fails loudly instead of feeding the tests other data. Files are compared by sha256
of their bytes, except the Kang .h5ad converted from the liger example files: its bytes depend on
the HDF5 library, h5py and anndata versions that write it (chunking, compression, attribute
layout), so a converted copy is compared by content (:func:`h5ad_content_sha256`) instead.

When no place has the file, :class:`RealFileUnavailable` names the file and the three places
looked. Run ``python tests/helpers/real_files.py --help`` to check a mirror or the public sources.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ENV_MIRROR = "IAE_TEST_DATA"
ENV_CACHE = "IAE_TEST_CACHE"
CACHE_NAME = "interpretable-ae-tests"
ROOT = Path(__file__).resolve().parents[2]
#: The developers' mirror; read at each call, so tests can point it elsewhere.
SHARED_DATA = ROOT.parent / "shared" / "data"
DOWNLOAD_TIMEOUT = 60  # seconds, per request


class RealFileError(Exception):
    """A real test file cannot be provided."""


class RealFileUnavailable(RealFileError, FileNotFoundError):
    """No mirror holds the file and no public source could be downloaded."""


class RealFileMismatch(RealFileError, ValueError):
    """A file (local or downloaded) is not the one the registry names by sha256."""


# --------------------------------------------------------------------------------------------
# Registry types


@dataclass(frozen=True)
class Remote:
    """A public file pinned by URL (https, at a commit or a release) and the sha256 of its bytes."""

    url: str
    sha256: str

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1].split("?", 1)[0]


@dataclass(frozen=True)
class ZipMember:
    """Derivation: the bytes of one member of a zip archive (e.g. a wheel from PyPI).

    With ``line_prefixes``, only the lines starting with one of them are kept (line endings
    untouched), e.g. the ``REACTOME_`` lines of an MSigDB c2.cp file. Byte-deterministic.
    """

    member: str
    line_prefixes: tuple[str, ...] = ()

    def __call__(self, inputs: Sequence[Path], out: Path) -> None:
        (archive,) = inputs
        with zipfile.ZipFile(archive) as zf:
            data = zf.read(self.member)
        if self.line_prefixes:
            prefixes = tuple(p.encode() for p in self.line_prefixes)
            data = b"".join(ln for ln in data.splitlines(keepends=True) if ln.startswith(prefixes))
        out.write_bytes(data)

    def __str__(self) -> str:
        kept = (
            f", lines starting with {', '.join(self.line_prefixes)}" if self.line_prefixes else ""
        )
        return f"member {self.member}{kept}"


@dataclass(frozen=True)
class LigerH5ToH5ad:
    """Derivation: liger's 10x-style .h5 example files -> one AnnData .h5ad (gzip).

    Each input holds a genes x cells CSC matrix under ``matrix/`` (``data``, ``indices``,
    ``indptr``, ``shape``, ``features/name``, ``barcodes``). The output has the cells of the
    inputs in order (obs_names = the barcodes as stored, e.g. ``ctrl_AAACATACCTCGCT.1``), the
    genes of the first input that every input has (in the first input's order), ``X`` float32
    CSR raw counts, ``obs['condition']`` (categories ``conditions``, one per input) and
    ``obs['cell_type']`` (one category, ``cell_type``). Not byte-deterministic across library
    versions (see the module docstring), so it is checked by :func:`h5ad_content_sha256`.
    """

    conditions: tuple[str, ...]
    cell_type: str = "PBMC"

    def build(self, inputs: Sequence[Path]):
        import anndata as ad
        import h5py
        import numpy as np
        import pandas as pd
        import scipy.sparse as sp

        if len(inputs) != len(self.conditions):
            raise ValueError(f"{len(inputs)} inputs for {len(self.conditions)} conditions")
        parts = []
        for path in inputs:
            with h5py.File(path, "r") as f:
                m = f["matrix"]
                n_genes, n_cells = (int(x) for x in m["shape"][:])
                # genes x cells CSC has the arrays of cells x genes CSR
                x = sp.csr_matrix(
                    (
                        m["data"][:].astype(np.float32),
                        m["indices"][:].astype(np.int64),
                        m["indptr"][:].astype(np.int64),
                    ),
                    shape=(n_cells, n_genes),
                )
                genes = [g.decode() for g in m["features"]["name"][:]]
                barcodes = [b.decode() for b in m["barcodes"][:]]
            parts.append((x, genes, barcodes))
        common = set.intersection(*(set(g) for _, g, _ in parts))
        kept = [g for g in parts[0][1] if g in common]
        blocks, names, labels = [], [], []
        for (x, genes, barcodes), condition in zip(parts, self.conditions, strict=True):
            col = {g: i for i, g in enumerate(genes)}
            blocks.append(x[:, [col[g] for g in kept]])
            names += barcodes
            labels += [condition] * len(barcodes)
        X = sp.vstack(blocks, format="csr").astype(np.float32)
        X.sort_indices()
        obs = pd.DataFrame(
            {
                "condition": pd.Categorical(labels, categories=list(self.conditions)),
                "cell_type": pd.Categorical([self.cell_type] * len(names)),
            },
            index=pd.Index(names),
        )
        return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=pd.Index(kept)))

    def __call__(self, inputs: Sequence[Path], out: Path) -> None:
        self.build(inputs).write_h5ad(out, compression="gzip")

    def __str__(self) -> str:
        return f"converted to .h5ad, conditions {', '.join(self.conditions)}"


Derive = Callable[[Sequence[Path], Path], None]


@dataclass(frozen=True)
class Source:
    """One public way to get a file.

    ``derive is None``: the file is the single input, as downloaded. Otherwise ``derive(paths of
    the downloaded inputs, output path)`` writes it. ``verified`` says whether and how this
    source was checked byte for byte against the registry's sha256 (empty: not checked).
    """

    inputs: tuple[Remote, ...]
    derive: Derive | None = None
    verified: str = ""

    def __str__(self) -> str:
        urls = " + ".join(r.url for r in self.inputs)
        return urls if self.derive is None else f"{urls} -> {self.derive}"


@dataclass(frozen=True)
class RealFile:
    """A registered real test file: where it sits in a mirror and how to check and get it."""

    relpath: str
    sha256: str  # of the file as in ../shared/data
    sources: tuple[Source, ...]
    what: str = ""
    #: for files whose bytes depend on the writer: sha256 of the content (h5ad_content_sha256)
    content_sha256: str | None = None

    def __post_init__(self) -> None:
        for s in self.sources:
            if s.derive is None and (len(s.inputs) != 1 or s.inputs[0].sha256 != self.sha256):
                raise ValueError(
                    f"{self.relpath}: a direct source must be one file with its sha256"
                )

    @property
    def verified(self) -> bool:
        return any(s.verified for s in self.sources)


def github(repo: str, commit: str, path: str) -> str:
    """Raw URL of ``path`` in GitHub repository ``repo`` at ``commit`` (40 hex digits)."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


# --------------------------------------------------------------------------------------------
# The registry

PEGASUS_WHEEL = Remote(
    "https://files.pythonhosted.org/packages/f1/d0/54eba8993d99fdd9fa179d790655418d157fab6b540d"
    "4415739dbae92465/pegasuspy-1.10.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "76cb096a198aeb2a8cfd07970e7c46c313bbc894a48c7194902428adbc7a7408",
)
CELLTYPIST_WHEEL = Remote(
    "https://files.pythonhosted.org/packages/a5/23/80a50c323eb90d6842621b0e5e1b8e1248fb58739caa"
    "8b32bbb62b5766d3/celltypist-1.0.0-py3-none-any.whl",
    "e8d652775cdc1bcfa28e57200c23aba7ce007961c4090153896ff7a1a573426a",
)
LIGER = ("welch-lab/liger", "e78721787d29c2e9599ca5da9f3de3a01df54398")
SLALOM = ("bioFAM/slalom", "ec205100f0539c1dbb39f6603f3fd38debf59110")

BY_SNAPSHOT = (
    "byte for byte: the blob at the pinned commit, read from a snapshot of the GitHub repository "
    "(git show <commit>:<path> | sha256sum); the raw URL itself was not downloaded (no GitHub "
    "access where this was checked)"
)
BY_PYPI = (
    "byte for byte: the wheel downloaded from PyPI with pooch (sha256 checked), the derived "
    "file's sha256 equal to the registry's"
)

_ENTRIES = (
    RealFile(
        "genesets/c2.cp.reactome.v4.0.symbols.gmt",
        "3168f672fca6eabf5d21d99181b87fd8c4304866acd0930712a61e9140c7b4ae",
        (
            Source(
                (
                    Remote(
                        github(
                            "theislab/intercode",
                            "1b84e7713ccd68a0454c346ce053bffd226aab5f",
                            "notebooks/c2.cp.reactome.v4.0.symbols.gmt",
                        ),
                        "3168f672fca6eabf5d21d99181b87fd8c4304866acd0930712a61e9140c7b4ae",
                    ),
                ),
                verified=BY_SNAPSHOT,
            ),
            Source(
                (
                    Remote(
                        github(*SLALOM, "data/c2.cp.reactome.v4.0.symbols.gmt"),
                        "3168f672fca6eabf5d21d99181b87fd8c4304866acd0930712a61e9140c7b4ae",
                    ),
                ),
                verified=BY_SNAPSHOT,
            ),
        ),
        what="MSigDB 4.0 Reactome (674 sets), the paper's file",
    ),
    RealFile(
        "genesets/c2.cp.reactome.v7.5.1.symbols.gmt",
        "c08ed2adeec0af975e39fd75915301c02d03bc5e157a035796312a585ee1b6ab",
        (
            Source(
                (PEGASUS_WHEEL,),
                ZipMember("pegasus/data_files/c2.cp.v7.5.1.symbols.gmt", ("REACTOME_",)),
                verified=BY_PYPI,
            ),
        ),
        what="MSigDB 7.5.1 Reactome (1,615 sets): the REACTOME_ lines of c2.cp.v7.5.1",
    ),
    RealFile(
        "genesets/h.all.v7.5.1.symbols.gmt",
        "de0fdee38af2611a284973f565df1a98bfa2385aecd7ba2ee3fe51208e753b40",
        (
            Source(
                (PEGASUS_WHEEL,),
                ZipMember("pegasus/data_files/h.all.v7.5.1.symbols.gmt"),
                verified=BY_PYPI,
            ),
        ),
        what="MSigDB 7.5.1 hallmark (50 sets)",
    ),
    RealFile(
        "genesets/ReactomePathways_2024-09-18.gmt",
        "54eb5a0cf45aa6b9a575c9c00b61394973b7f0ec7c78060e35b1ceecf0223ef4",
        (
            Source(
                (
                    Remote(
                        github(
                            "markziemann/asd_meth",
                            "32fe579edf9d1f26b541e5b9e7dae82b02bbe2ed",
                            "ReactomePathways_2024-09-18.gmt",
                        ),
                        "54eb5a0cf45aa6b9a575c9c00b61394973b7f0ec7c78060e35b1ceecf0223ef4",
                    ),
                ),
                verified=BY_SNAPSHOT,
            ),
        ),
        what="reactome.org ReactomePathways.gmt of 2024-09-18 (2,694 pathways)",
    ),
    RealFile(
        "genesets/Ensembl105_Human2Mouse_Genes.csv",
        "4a174c83cfa70aad7c470d8e453fda94d8fb5d70f8a2f0ae196d54c9e31369f1",
        (
            Source(
                (
                    Remote(
                        github(
                            "Teichlab/celltypist",
                            "c7a01f07f324518f22a71e712c545756ab4cbc9d",
                            "celltypist/data/samples/Ensembl105_Human2Mouse_Genes.csv",
                        ),
                        "4a174c83cfa70aad7c470d8e453fda94d8fb5d70f8a2f0ae196d54c9e31369f1",
                    ),
                ),
                verified=BY_SNAPSHOT,
            ),
            Source(
                (CELLTYPIST_WHEEL,),
                ZipMember("celltypist/data/samples/Ensembl105_Human2Mouse_Genes.csv"),
                verified=BY_PYPI,
            ),
        ),
        what="human -> mouse gene symbols, Ensembl 105 (CellTypist's mapping file)",
    ),
    RealFile(
        "expression/buettner2015_mesc.csv.gz",
        "2a915c1bae8b92ca9c09b405e02618f72556bd678cddfa412a878410b1933a89",
        (
            Source(
                (
                    Remote(
                        github(*SLALOM, "data/Buettneretal.csv.gz"),
                        "2a915c1bae8b92ca9c09b405e02618f72556bd678cddfa412a878410b1933a89",
                    ),
                ),
                verified=BY_SNAPSHOT,
            ),
        ),
        what="Buettner 2015 mESC, 182 cells x 6,635 genes, log expression, cell-cycle stage",
    ),
    RealFile(
        "expression/cellranger_v3_chr21_filtered_feature_bc_matrix.h5",
        "d55cc5f32ebb8b70746d546baa300448949f69efd4ee5022bbd9330af3cd4212",
        (
            Source(
                (
                    Remote(
                        github(
                            "scverse/scanpy",
                            "fabadb9412c0d1cd9df9d9c2e95ac266d564ee18",
                            "tests/_data/10x_data/3.0.0/filtered_feature_bc_matrix.h5",
                        ),
                        "d55cc5f32ebb8b70746d546baa300448949f69efd4ee5022bbd9330af3cd4212",
                    ),
                ),
                verified=BY_SNAPSHOT,
            ),
        ),
        what="Cell Ranger v3 filtered matrix, 1,107 cells x 507 genes (GRCh38 chr21)",
    ),
    RealFile(
        "expression/liao2020_all.cell.annotation.meta.txt",
        "ebd1c98d1a7fe5eb84757edf1fe95b401121069729d7a29f1628086111558ed6",
        (
            Source(
                (
                    Remote(
                        github(
                            "zhangzlab/covid_balf",
                            "b52be1c50ef79e91bebac82451894942d23b43be",
                            "all.cell.annotation.meta.txt",
                        ),
                        "ebd1c98d1a7fe5eb84757edf1fe95b401121069729d7a29f1628086111558ed6",
                    ),
                ),
                verified=BY_SNAPSHOT,
            ),
        ),
        what="Liao 2020 BALF cell metadata, 65,813 cells",
    ),
    RealFile(
        "expression/kang2018_liger_600.h5ad",
        "30c9d00a4853c6551faa5468178d04d4604e4f25c217a5e4bf6675aae779f91d",
        (
            Source(
                (
                    Remote(
                        github(*LIGER, "inst/extdata/ctrl.h5"),
                        "7dca8b0cd3839fcac0104a6365b5cb14a8e100d87acc9b8b9f8e37c7e3c960a5",
                    ),
                    Remote(
                        github(*LIGER, "inst/extdata/stim.h5"),
                        "a09b3bf86daac7df4bd6e9d6c8772196c35af0d6f8c1be46a2e00a7ff2568b60",
                    ),
                ),
                LigerH5ToH5ad(conditions=("control", "stimulated")),
                verified=(
                    "by content: ctrl.h5 and stim.h5 read from a snapshot of the GitHub "
                    "repository at the pinned commit (sha256 equal), converted here; X, obs, "
                    "var equal to the registry's file (content sha256 equal; file bytes are "
                    "writer-dependent)"
                ),
            ),
        ),
        what="Kang 2018 PBMCs, 300 control + 300 IFN-b stimulated x 249 genes, raw counts",
        content_sha256="734e784ba8356a0e9c653c8f3d54ea2ca7e27522591701ac6c83c3cc5098a7f0",
    ),
    RealFile(
        "expression/macosko2015_retina_clusteridentities.txt",
        "b7224ab7d61632fd34ca700c83aab22b509e5149222bb0918f87e47c1310d9fe",
        (
            Source(
                (
                    Remote(
                        github(
                            "olgabot/macosko2015",
                            "26e9a37313d0198a64af5e890c2a57da1c7e34ca",
                            "data/00_original/retina_clusteridentities.txt",
                        ),
                        "b7224ab7d61632fd34ca700c83aab22b509e5149222bb0918f87e47c1310d9fe",
                    ),
                ),
                verified=BY_SNAPSHOT,
            ),
            Source(
                (
                    Remote(
                        "https://mccarrolllab.org/wp-content/uploads/2015/05/"
                        "retina_clusteridentities.txt",
                        "b7224ab7d61632fd34ca700c83aab22b509e5149222bb0918f87e47c1310d9fe",
                    ),
                ),
                # config/paper.yaml records the same sha256 for the http:// form of this URL
            ),
        ),
        what="Macosko 2015 retina cluster of 44,808 cells",
    ),
)

#: relpath (under the mirror root, e.g. ``genesets/h.all.v7.5.1.symbols.gmt``) -> entry
REGISTRY: dict[str, RealFile] = {e.relpath: e for e in _ENTRIES}


# --------------------------------------------------------------------------------------------
# Checking


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def h5ad_content_sha256(path: Path) -> str:
    """sha256 of what an .h5ad holds, independent of how the HDF5 file was written.

    Covers X (dtype, shape, and the canonical CSR: duplicates summed, zeros dropped, indices
    sorted), obs_names, var_names, every obs / var column (categories and codes, or values as
    text with the dtype), and the keys of layers, obsm, varm, obsp, varp and uns.
    """
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    a = ad.read_h5ad(path)
    h = hashlib.sha256()

    def put(tag: str, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        h.update(f"{tag}\0{len(raw)}\0".encode())
        h.update(raw)

    X = sp.csr_matrix(a.X).astype(np.float64)
    X.sum_duplicates()
    X.eliminate_zeros()
    X.sort_indices()
    put("X.dtype", str(a.X.dtype))
    put("X.shape", repr(tuple(int(n) for n in X.shape)))
    put("X.indptr", np.asarray(X.indptr, dtype="<i8").tobytes())
    put("X.indices", np.asarray(X.indices, dtype="<i8").tobytes())
    put("X.data", np.asarray(X.data, dtype="<f8").tobytes())
    for axis, df in (("obs", a.obs), ("var", a.var)):
        put(f"{axis}_names", "\n".join(map(str, df.index)))
        put(f"{axis}.columns", "\n".join(map(str, df.columns)))
        for col in df.columns:
            s = df[col]
            if isinstance(s.dtype, pd.CategoricalDtype):
                put(f"{axis}.{col}.categories", "\n".join(map(str, s.cat.categories)))
                put(f"{axis}.{col}.codes", np.asarray(s.cat.codes, dtype="<i8").tobytes())
            else:
                put(f"{axis}.{col}.{s.dtype}", "\n".join(map(str, s)))
    for key in ("layers", "obsm", "varm", "obsp", "varp", "uns"):
        put(key, "\n".join(sorted(getattr(a, key).keys())))
    return h.hexdigest()


_CHECKED: dict[tuple, bool] = {}


def matches(entry: RealFile, path: Path) -> bool:
    """Whether ``path`` is the registered file: same sha256, or same content where registered.

    Remembered per process for an unchanged file (path, size, mtime).
    """
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, entry.sha256, entry.content_sha256)
    if key not in _CHECKED:
        ok = sha256_of(path) == entry.sha256
        if not ok and entry.content_sha256:
            try:
                ok = h5ad_content_sha256(path) == entry.content_sha256
            except Exception:  # unreadable: not the file
                ok = False
        _CHECKED[key] = ok
    return _CHECKED[key]


def _describe_mismatch(entry: RealFile, path: Path) -> str:
    how = f"sha256 {sha256_of(path)}, registry {entry.sha256}"
    if entry.content_sha256:
        how += f" (nor content sha256 {entry.content_sha256})"
    return how


# --------------------------------------------------------------------------------------------
# Resolving


def cache_dir() -> Path:
    """Where downloads go: ``$IAE_TEST_CACHE``, else pooch's per-user cache for this project."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache(CACHE_NAME))


def real_file(relpath: str, *, registry: Mapping[str, RealFile] | None = None) -> Path:
    """Local path of the registered real test file ``relpath`` (e.g. ``expression/x.h5``).

    Looks in ``$IAE_TEST_DATA``, then ``<repo>/../shared/data``, then downloads into the cache
    (see the module docstring). Raises :class:`RealFileMismatch` when a file found or downloaded
    is not the registered one, :class:`RealFileUnavailable` when none of the three places has it.
    """
    registry = REGISTRY if registry is None else registry
    try:
        entry = registry[relpath]
    except KeyError:
        raise RealFileError(
            f"{relpath!r} is not a registered real test file; add it to REGISTRY in "
            f"{Path(__file__).name} (known: {', '.join(sorted(registry))})"
        ) from None

    looked = []
    mirror = os.environ.get(ENV_MIRROR)
    if mirror:
        path = Path(mirror).expanduser() / relpath
        if path.is_file():
            return _local(entry, path, f"${ENV_MIRROR}")
        looked.append(f"${ENV_MIRROR}={mirror}: no file {path}")
    else:
        looked.append(f"${ENV_MIRROR}: not set")

    shared = Path(SHARED_DATA)
    path = shared / relpath
    if path.is_file():
        return _local(entry, path, "../shared/data")
    looked.append(f"{shared}: " + (f"no file {path}" if shared.is_dir() else "does not exist"))

    cache = cache_dir()
    errors = []
    for i, source in enumerate(entry.sources, 1):
        try:
            return _from_source(entry, source, cache)
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            errors.append((source, exc))
    mismatch = any(isinstance(e, RealFileMismatch) or _is_hash_error(e) for _, e in errors)
    detail = "".join(
        f"\n       source {i}: {source}\n         {type(e).__name__}: {_first_line(e)}"
        for i, (source, e) in enumerate(errors, 1)
    )
    if not entry.sources:
        detail = "\n       no public source registered"
    looked.append(f"download into the cache {cache / relpath}:{detail}")
    places = "".join(f"\n  {n}. {text}" for n, text in enumerate(looked, 1))
    if mismatch:
        raise RealFileMismatch(
            f"real test file {relpath}: a download did not have the registered sha256 (the "
            f"source changed or the registry is wrong). Looked in:{places}"
        )
    raise RealFileUnavailable(
        f"real test file {relpath} not found. Looked in:{places}\n"
        f"Set ${ENV_MIRROR} to a directory holding {relpath}, or run with network access."
    )


def _local(entry: RealFile, path: Path, where: str) -> Path:
    if not matches(entry, path):
        raise RealFileMismatch(
            f"real test file {entry.relpath}: {path} (from {where}) is not the registered "
            f"file ({_describe_mismatch(entry, path)}); update the mirror or the registry"
        )
    return path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or repr(exc)
    return text.splitlines()[0][:400]


def _is_hash_error(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and "does not match the known hash" in str(exc)


def _retrieve(remote: Remote, folder: Path, fname: str) -> Path:
    """Download ``remote`` to ``folder/fname`` with pooch (kept if already there with its hash)."""
    import pooch

    downloader = pooch.HTTPDownloader(progressbar=False, timeout=DOWNLOAD_TIMEOUT)
    return Path(
        pooch.retrieve(
            remote.url,
            known_hash=f"sha256:{remote.sha256}",
            fname=fname,
            path=folder,
            downloader=downloader,
            progressbar=False,
        )
    )


def _from_source(entry: RealFile, source: Source, cache: Path) -> Path:
    out = cache / entry.relpath
    if source.derive is None:
        (remote,) = source.inputs
        return _retrieve(remote, out.parent, out.name)
    if out.is_file() and matches(entry, out):
        return out
    inputs = [_retrieve(r, cache / "_inputs", f"{r.sha256[:16]}-{r.name}") for r in source.inputs]
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}-", suffix=out.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()
        source.derive(inputs, tmp)
        if not matches(entry, tmp):
            raise RealFileMismatch(
                f"{entry.relpath} derived from {source}: {_describe_mismatch(entry, tmp)}"
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# --------------------------------------------------------------------------------------------
# Command line: check a mirror, or fetch every file from its public sources.


def _main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("check-mirror", help="compare a mirror directory with the registry")
    m.add_argument("root", type=Path, nargs="?", default=SHARED_DATA)
    d = sub.add_parser("download", help="get every file from each public source (network)")
    d.add_argument("cache", type=Path, help="an empty directory to download into")
    d.add_argument("--only", nargs="*", default=None, help="relpaths (default: all)")
    args = p.parse_args(argv)
    bad = 0
    if args.cmd == "check-mirror":
        for relpath, entry in REGISTRY.items():
            path = args.root / relpath
            ok = path.is_file() and matches(entry, path)
            bad += not ok
            print(f"{'ok  ' if ok else 'BAD '} {relpath}")
    else:
        for relpath, entry in REGISTRY.items():
            if args.only is not None and relpath not in args.only:
                continue
            for i, source in enumerate(entry.sources, 1):
                cache = args.cache / f"source{i}"
                try:
                    path = _from_source(entry, source, cache)
                    ok = matches(entry, path)
                    msg = "sha256 equal" if sha256_of(path) == entry.sha256 else "content equal"
                except Exception as exc:  # noqa: BLE001
                    ok, msg = False, f"{type(exc).__name__}: {_first_line(exc)}"
                bad += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {relpath} [source {i}] {msg}\n       {source}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(_main())
