"""Readers for the paper's data sets and a user's own ``.h5ad``, from the published files.

Each reader returns an AnnData (cells x genes) with ``obs['condition']`` (two classes)
and ``obs['cell_type']``; :func:`load_dataset` dispatches on the config's ``source`` and
also says whether ``X`` holds raw counts or log-normalised values.

File roles per source kind (the keys of ``datasets.<name>.files`` in the config):

- ``kang`` (GEO GSE96583, batch 2): ``matrix_ctrl``, ``barcodes_ctrl``, ``matrix_stim``,
  ``barcodes_stim``, ``genes``, ``tsne``. Condition: ``ctrl`` / ``stim``.
- ``macosko`` (GEO GSE63472): ``expression``, ``clusters``. Condition: the cell classes
  in ``condition_positive`` (default ``[rods]``) against ``other``.
- ``liao`` (GEO GSE145926, and GSE128033 for the fourth healthy control): ``metadata`` and
  per sample either ``h5_<sample>`` (Cell Ranger v3 h5: ``h5_C51``, ...) or the Matrix
  Market trio ``matrix_<sample>``, ``barcodes_<sample>``, ``genes_<sample>`` (Cell Ranger
  v2 layout: ``GSM3660650``). Condition: ``healthy`` / ``COVID-19`` (from the
  ``disease`` column); the authors' severity ``group`` (HC/M/S) and ``sample`` are kept.
- ``h5ad``: ``h5ad``; obs keys given by ``condition_key`` and ``cell_type_key``; raw
  counts, log-normalised or centred values (detected, or ``data_type``).
- ``pbmc68k_demo``: no file (scanpy's copy); the condition is planted by the simulation.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from iae_pipeline.config import one_line_text
from iae_pipeline.prepare.checks import check_finite
from interpretable_ae.conventions import centred_genes

log = logging.getLogger(__name__)

CONDITION, CELL_TYPE = "condition", "cell_type"
COUNTS, LOGNORM, CENTRED = "counts", "lognorm", "centred"
DATA_TYPES = ("auto", COUNTS, LOGNORM, CENTRED)
LIAO_MTX_ROLES = ("matrix", "barcodes", "genes")

#: Macosko et al. 2015, Figure 5: cluster -> cell class (retina_clusteridentities.txt).
MACOSKO_CLASSES: dict[int, str] = {
    1: "horizontal",
    2: "ganglion",
    **{k: "amacrine" for k in range(3, 24)},
    24: "rods",
    25: "cones",
    **{k: "bipolar" for k in range(26, 34)},
    34: "mueller_glia",
    35: "astrocytes",
    36: "fibroblasts",
    37: "vascular_endothelium",
    38: "pericytes",
    39: "microglia",
}

#: The sample order behind the ``_k`` suffix of the Liao 2020 cell IDs (k = position + 1).
LIAO_SAMPLE_ORDER = (
    "C51", "C52", "C100", "GSM3660650", "C141", "C142", "C144",
    "C143", "C145", "C146", "C148", "C149", "C152",
)  # fmt: skip


class DatasetError(ValueError):
    """Data files or obs keys that cannot be used as given (the message is kept on one
    line: a user's key or label holding a line-break character is shown escaped)."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line_text(str(message)))


# -- shared helpers ------------------------------------------------------------------


def _need(path: str | Path, role: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file for '{role}' not found; check the dataset's files")
    return path


def unlabelled(values: pd.Series) -> np.ndarray:
    """Which cells have no label: NaN, None or an empty string.

    Parameters
    ----------
    values
        An obs column.

    Returns
    -------
    numpy.ndarray
        Boolean, per cell.

    Examples
    --------
    >>> import pandas as pd
    >>> unlabelled(pd.Series(["ctrl", None, "", "stim"])).tolist()
    [False, True, True, False]
    """
    empty = values.astype(object).where(values.notna(), "").astype(str).str.strip().eq("")
    return empty.to_numpy(dtype=bool)


def two_classes(
    values: pd.Series, where: str, positive: Sequence[str] | None = None
) -> pd.Categorical:
    """A two-class condition from an obs column.

    Parameters
    ----------
    values
        The condition of every cell.
    where
        Names the column in messages.
    positive
        The labels taken as the case; the rest keeps its own label when it is one label
        (``ctrl`` stays ``ctrl``) and is called ``other`` when it gathers several. ``None``:
        the column must have exactly two labels.

    Returns
    -------
    pandas.Categorical
        Two categories.

    Raises
    ------
    DatasetError
        A cell without a label (it would otherwise become a class 'nan' or, with
        ``positive``, silently join the rest), not two classes, or a ``positive`` label that
        is absent.

    Examples
    --------
    >>> import pandas as pd
    >>> list(two_classes(pd.Series(["HC", "M", "S", "HC"]), "obs['group']", ["M", "S"]).categories)
    ['HC', 'M+S']
    """
    missing = unlabelled(values)
    if missing.any():
        raise DatasetError(
            f"{where}: {int(missing.sum())} of {missing.size} cells have no condition label "
            "(NaN or empty); label them, or drop them (an h5ad dataset: drop_unlabelled: true)"
        )
    labels = values.astype(str)
    if positive:
        positive = [str(p) for p in positive]
        missing = sorted(set(positive) - set(labels))
        if missing:
            raise DatasetError(
                f"{where}: condition_positive value(s) {missing} not found; present: "
                f"{sorted(set(labels))[:10]}"
            )
        name = positive[0] if len(positive) == 1 else "+".join(positive)
        rest = sorted(set(labels) - set(positive))
        rest_name = rest[0] if len(rest) == 1 else "other"
        labels = pd.Series(np.where(labels.isin(positive), name, rest_name), index=labels.index)
    classes = sorted(set(labels))
    if len(classes) != 2:
        fix = (
            "a condition needs exactly two classes: check the condition key"
            if len(classes) < 2
            else "set condition_positive to the class(es) to compare with the rest"
        )
        raise DatasetError(f"{where} has {len(classes)} class(es) {classes[:10]}; {fix}")
    return pd.Categorical(labels, categories=classes)


def detect_data_type(X: np.ndarray | sp.spmatrix, where: str = "X", n: int = 100_000) -> str:
    """What a matrix holds: counts, log-normalised or centred values.

    Parameters
    ----------
    X
        Cells x genes, dense or sparse.
    where
        Names the data in messages.
    n
        Values sampled for the test.

    Returns
    -------
    str
        ``counts`` when the (sampled) values are non-negative integers, ``centred`` when
        there are negative values and every gene's mean is 0, else ``lognorm``.

    Raises
    ------
    DatasetError
        Other negative values (e.g. a difference of two data sets).
    """
    values = X.data if sp.issparse(X) else np.asarray(X).ravel()
    if values.size > n:
        values = values[np.linspace(0, values.size - 1, n).astype(np.int64)]
    if values.size and not np.isfinite(values).all():
        raise DatasetError(f"{where} contains NaN or infinite values; clean the data first")
    if values.size and values.min() < 0:
        if is_centred(X):
            return CENTRED
        raise DatasetError(
            f"{where} has negative values (min {values.min():.3g}) but is not centred (gene "
            "means are not 0); provide raw counts, log-normalised values, or log-normalised "
            "values centred per gene"
        )
    return COUNTS if np.allclose(values, np.round(values)) else LOGNORM


def gene_moments(X: np.ndarray | sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and standard deviation, without densifying a sparse matrix.

    Parameters
    ----------
    X
        Cells x genes.

    Returns
    -------
    mean, std : numpy.ndarray
        float64, one value per gene.
    """
    if sp.issparse(X):
        mean = np.asarray(X.mean(axis=0, dtype=np.float64)).ravel()
        sq = np.asarray(X.multiply(X).mean(axis=0, dtype=np.float64)).ravel()
        return mean, np.sqrt(np.maximum(sq - mean**2, 0.0))
    X = np.asarray(X, dtype=np.float64)
    return X.mean(axis=0), X.std(axis=0)


def is_centred(X: np.ndarray | sp.spmatrix) -> bool:
    """Whether every gene counts as centred (``adata.X -= adata.X.mean(0)``), by the rule the
    estimator uses too (:func:`interpretable_ae.conventions.centred_genes`).

    Parameters
    ----------
    X
        Cells x genes.

    Returns
    -------
    bool
    """
    mean, sd = gene_moments(X)
    return bool(np.all(centred_genes(mean, np.hypot(mean, sd))))


def log_centred(X: np.ndarray | sp.spmatrix, where: str) -> None:
    """The one log line for centred input (and a warning when it is also scaled).

    Parameters
    ----------
    X
        Centred cells x genes.
    where
        Names the data.
    """
    _, sd = gene_moments(X)
    log.info(
        "%s is centred (every gene's mean is 0): taken as log-normalised values centred "
        "per gene, as the authors' notebooks feed the model (adata.X -= adata.X.mean(0)); "
        "not normalised again; highly variable genes by variance",
        where,
    )
    if sd.size and np.allclose(sd[sd > 0], 1.0, atol=1e-2):
        log.warning(
            "%s looks scaled to unit variance as well: gene selection by variance cannot "
            "work on it (set preprocess.n_top_genes: null) and the loadings lose the "
            "genes' scale; prefer unscaled values",
            where,
        )


# -- Kang 2018 (GSE96583, batch 2) ---------------------------------------------------


def read_geo_mtx(matrix: str | Path, barcodes: str | Path, genes: str | Path) -> ad.AnnData:
    """Read a genes x cells Matrix Market file (gzip) with its barcodes and genes TSVs.

    Parameters
    ----------
    matrix, barcodes, genes
        The three files, as GEO publishes them.

    Returns
    -------
    anndata.AnnData
        Cells x genes counts (CSR float32), obs named by barcode, var by gene symbol.
    """
    matrix, barcodes, genes = (
        _need(matrix, "matrix"),
        _need(barcodes, "barcodes"),
        _need(genes, "genes"),
    )
    try:
        counts = sp.csr_matrix(scipy.io.mmread(matrix).T, dtype=np.float32)  # reads .gz too
    except (ValueError, OSError, EOFError) as err:
        raise DatasetError(f"{matrix}: not a Matrix Market file ({err})") from None
    cells = pd.read_csv(barcodes, sep="\t", header=None, dtype=str).iloc[:, 0]
    var = pd.read_csv(genes, sep="\t", header=None, dtype=str)
    if counts.shape != (len(cells), len(var)):
        raise DatasetError(
            f"{matrix}: shape {counts.shape[::-1]} (genes x cells) does not match {len(var)} "
            f"genes in {genes.name} and {len(cells)} barcodes in {barcodes.name}"
        )
    symbols = var.iloc[:, 1] if var.shape[1] > 1 else var.iloc[:, 0]
    adata = ad.AnnData(
        X=counts,
        obs=pd.DataFrame(index=pd.Index(cells.to_numpy(), name="barcode")),
        var=pd.DataFrame(
            {"gene_id": var.iloc[:, 0].to_numpy()}, index=pd.Index(symbols.to_numpy())
        ),
    )
    adata.var_names_make_unique()
    return adata


def read_kang_metadata(tsne: str | Path) -> pd.DataFrame:
    """The Kang batch-2 tSNE table as cell metadata indexed ``<stim>_<barcode>``.

    The published table repeats barcodes across ctrl and stim; where R made them unique by
    appending digits (``...-11``), the suffix is removed before prefixing.

    Parameters
    ----------
    tsne
        ``GSE96583_batch2.tsne.df.txt.gz``.

    Returns
    -------
    pandas.DataFrame
        One row per cell: its condition, cell type and multiplet call.
    """
    tsne = _need(tsne, "tsne")
    meta = pd.read_csv(tsne, sep="\t", index_col=0)
    missing = [c for c in ("ind", "stim", "cell", "multiplets") if c not in meta.columns]
    if missing:
        raise DatasetError(f"{tsne}: columns {missing} missing; is it the batch-2 tsne table?")
    barcode = meta.index.astype(str).str.replace(r"^(.*-1)\d+$", r"\1", regex=True)
    meta.index = pd.Index(meta["stim"].astype(str) + "_" + barcode, name="cell")
    if not meta.index.is_unique:
        dup = meta.index[meta.index.duplicated()][:3].tolist()
        raise DatasetError(f"{tsne}: cells {dup} appear twice after prefixing with stim")
    return meta


def read_kang(
    matrix_ctrl: str | Path,
    barcodes_ctrl: str | Path,
    matrix_stim: str | Path,
    barcodes_stim: str | Path,
    genes: str | Path,
    tsne: str | Path,
) -> ad.AnnData:
    """Kang et al. 2018 batch 2: ctrl and stim PBMCs, the singlets with a cell type.

    Parameters
    ----------
    matrix_ctrl, barcodes_ctrl, matrix_stim, barcodes_stim, genes
        GEO's Matrix Market files of the two samples and their shared genes.
    tsne
        The tSNE table with the cell types (:func:`read_kang_metadata`).

    Returns
    -------
    anndata.AnnData
        Counts, with ``obs['condition']`` (``ctrl`` / ``stim``) and ``obs['cell_type']``.
    """
    parts = {
        "ctrl": read_geo_mtx(matrix_ctrl, barcodes_ctrl, genes),
        "stim": read_geo_mtx(matrix_stim, barcodes_stim, genes),
    }
    for stim, part in parts.items():
        part.obs_names = stim + "_" + part.obs_names.astype(str)
    adata = ad.concat(parts, label="stim", merge="first")
    meta = read_kang_metadata(tsne)
    singlet = meta["multiplets"].astype(str).eq("singlet") & meta["cell"].notna()
    keep = meta.index[singlet].intersection(adata.obs_names, sort=False)
    log.info(
        "kang: %d cells in the matrices, %d in the tsne table, %d singlets with a cell type kept",
        adata.n_obs, len(meta), len(keep),
    )  # fmt: skip
    if len(keep) == 0:
        raise DatasetError(f"{tsne}: no singlet matches a barcode of the matrices; wrong files?")
    adata = adata[keep].copy()
    meta = meta.loc[keep]
    adata.obs[CONDITION] = two_classes(meta["stim"], f"{Path(tsne).name} column 'stim'")
    adata.obs[CELL_TYPE] = pd.Categorical(meta["cell"].astype(str))
    adata.obs["individual"] = pd.Categorical(meta["ind"].astype(str))
    return adata


# -- Macosko 2015 (GSE63472) ---------------------------------------------------------


def read_macosko_clusters(clusters: str | Path) -> pd.DataFrame:
    """Macosko's cluster table, with the 39 clusters merged to 12 cell classes.

    Parameters
    ----------
    clusters
        ``barcode<TAB>cluster``.

    Returns
    -------
    pandas.DataFrame
        ``cluster`` (int) and ``cell_class``, indexed by barcode.
    """
    clusters = _need(clusters, "clusters")
    table = pd.read_csv(clusters, sep="\t", header=None, names=["barcode", "cluster"], dtype=str)
    cluster = pd.to_numeric(table["cluster"], errors="coerce")
    if cluster.isna().any() or not cluster.isin(list(MACOSKO_CLASSES)).all():
        bad = table.loc[~cluster.isin(list(MACOSKO_CLASSES)), "cluster"].unique()[:3].tolist()
        raise DatasetError(f"{clusters}: clusters must be 1-39, found {bad}")
    return pd.DataFrame(
        {
            "cluster": cluster.astype(int).to_numpy(),
            "cell_class": cluster.map(MACOSKO_CLASSES).to_numpy(),
        },
        index=pd.Index(table["barcode"].to_numpy(), name="barcode"),
    )


def parse_count_line(values: bytes, n_fields: int) -> np.ndarray:
    """One line of tab-separated counts as a float32 array, vectorised over the bytes.

    Lines with anything but digits and tabs (decimals, exponents, signs) are parsed by
    NumPy's float conversion instead.

    Parameters
    ----------
    values
        The line's values, without its first (gene) field.
    n_fields
        The number of values expected.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    DatasetError
        Another number of fields.

    Examples
    --------
    >>> parse_count_line(b"0\\t3\\t12", 3).tolist()
    [0.0, 3.0, 12.0]
    """
    buf = np.frombuffer(values, dtype=np.uint8)
    is_tab = buf == 9
    if not np.all(is_tab | ((buf >= 48) & (buf <= 57))):
        out = np.array(values.split(b"\t"), dtype=np.float32)
    else:
        ends = np.append(np.flatnonzero(is_tab), buf.size)
        field = np.cumsum(is_tab)[~is_tab]
        position = np.flatnonzero(~is_tab)
        power = ends[field] - position - 1
        digit = (buf[~is_tab] - 48).astype(np.float64) * np.power(10.0, power)
        out = np.bincount(field, weights=digit, minlength=ends.size).astype(np.float32)
    if out.size != n_fields:
        raise DatasetError(f"a line has {out.size} values, the header names {n_fields} cells")
    return out


def read_dense_text(
    path: str | Path, cells: Sequence[str] | None = None, chunksize: int = 256
) -> ad.AnnData:
    """A genes x cells tab-separated text (gzip), read in chunks of genes into sparse counts.

    Parameters
    ----------
    path
        The file; its header is ``GENE<TAB>cell...`` (Drop-seq digital expression).
    cells
        Keep only these columns (cells missing from the file are an error).
    chunksize
        Genes read at a time.

    Returns
    -------
    anndata.AnnData
        Cells x genes, CSR float32.
    """
    path = _need(path, "expression")
    opener = gzip.open if path.suffix == ".gz" else open
    blocks, genes, rows = [], [], []
    with opener(path, "rb") as fh:
        header = fh.readline().rstrip(b"\r\n").decode().split("\t")
        all_cells = pd.Index(header[1:])
        use = all_cells if cells is None else pd.Index(cells)
        columns = all_cells.get_indexer(use)
        if (columns < 0).any():
            missing = use[columns < 0][:3].tolist()
            raise DatasetError(
                f"{path}: {(columns < 0).sum()} annotated cells are not columns (e.g. {missing})"
            )
        try:
            for lineno, line in enumerate(fh, start=2):
                gene, _, values = line.rstrip(b"\r\n").partition(b"\t")
                genes.append(gene.decode())
                rows.append(parse_count_line(values, len(all_cells))[columns])
                if len(rows) == chunksize:
                    blocks.append(sp.csr_matrix(np.vstack(rows)))
                    rows = []
        except (DatasetError, ValueError) as err:
            raise DatasetError(f"{path}:{lineno}: {err}") from None
        except (OSError, EOFError) as err:
            raise DatasetError(f"{path}: truncated or corrupt ({err}); download it again") from None
    if rows:
        blocks.append(sp.csr_matrix(np.vstack(rows)))
    if not blocks:
        raise DatasetError(f"{path}: no gene rows found")
    adata = ad.AnnData(
        X=sp.vstack(blocks).T.tocsr(),
        obs=pd.DataFrame(index=pd.Index(use)),
        var=pd.DataFrame(index=pd.Index(genes)),
    )
    adata.var_names_make_unique()
    return adata


def read_macosko(
    expression: str | Path,
    clusters: str | Path,
    condition_positive: Sequence[str] = ("rods",),
    chunksize: int = 256,
) -> ad.AnnData:
    """Macosko et al. 2015 P14 retina: the cells with a cluster, counts, cell classes.

    Parameters
    ----------
    expression
        The digital expression text (:func:`read_dense_text`).
    clusters
        The cluster table (:func:`read_macosko_clusters`).
    condition_positive
        Cell classes taken as the case; the rest is ``other``.
    chunksize
        Genes read at a time.

    Returns
    -------
    anndata.AnnData
        Counts, with ``obs['condition']`` and ``obs['cell_type']`` (the cell class).
    """
    table = read_macosko_clusters(clusters)
    adata = read_dense_text(expression, cells=table.index.tolist(), chunksize=chunksize)
    adata.obs = adata.obs.join(table)
    adata.obs[CELL_TYPE] = pd.Categorical(adata.obs["cell_class"])
    adata.obs[CONDITION] = two_classes(
        adata.obs["cell_class"], f"{Path(clusters).name} cell classes", condition_positive
    )
    log.info("macosko: %d annotated cells x %d genes", adata.n_obs, adata.n_vars)
    return adata


# -- Liao 2020 (GSE145926) -----------------------------------------------------------


def read_liao_metadata(metadata: str | Path) -> pd.DataFrame:
    """The authors' ``all.cell.annotation.meta.txt``, indexed by ``ID``.

    Parameters
    ----------
    metadata
        The file.

    Returns
    -------
    pandas.DataFrame
        Sample, group, disease and cell type of each cell.
    """
    metadata = _need(metadata, "metadata")
    meta = pd.read_csv(metadata, sep="\t", dtype=str)
    missing = [c for c in ("ID", "sample", "group", "disease", "celltype") if c not in meta]
    if missing:
        raise DatasetError(
            f"{metadata}: columns {missing} missing; is it all.cell.annotation.meta.txt?"
        )
    return meta.set_index("ID")


def liao_cell_ids(barcodes: Sequence[str], sample: str) -> pd.Index:
    """Cell Ranger barcodes (``ACGT...-1``) to the metadata's IDs (``ACGT..._k``).

    Parameters
    ----------
    barcodes
        One sample's barcodes.
    sample
        The sample (``C141``, ...), which gives ``k``.

    Returns
    -------
    pandas.Index
    """
    if sample not in LIAO_SAMPLE_ORDER:
        raise DatasetError(f"Liao sample '{sample}' is unknown; use one of {LIAO_SAMPLE_ORDER}")
    k = LIAO_SAMPLE_ORDER.index(sample) + 1
    return pd.Index([f"{b.split('-')[0]}_{k}" for b in barcodes])


def _read_liao_sample(sample: str, files: Mapping[str, str | Path]) -> ad.AnnData:
    """One Liao sample from a Cell Ranger v3 h5 (``h5``) or a Matrix Market trio."""
    import scanpy as sc

    if "h5" in files:
        path = _need(files["h5"], f"h5_{sample}")
        try:
            part = sc.read_10x_h5(path)
        except (OSError, KeyError, ValueError) as err:
            raise DatasetError(f"{path}: not a Cell Ranger v3 filtered h5 ({err})") from None
        part.var_names_make_unique()
        return part
    missing = [f"{r}_{sample}" for r in LIAO_MTX_ROLES if r not in files]
    if missing:
        raise DatasetError(
            f"liao: sample {sample} needs h5_{sample} or all of matrix_, barcodes_, genes_"
            f"{sample}; missing {missing}"
        )
    return read_geo_mtx(files["matrix"], files["barcodes"], files["genes"])


def liao_sample_files(files: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The dataset's file roles grouped by sample, in the authors' sample order.

    Parameters
    ----------
    files
        Roles ``h5_<s>``, ``matrix_<s>``, ``barcodes_<s>``, ``genes_<s>`` to paths.

    Returns
    -------
    dict of str to dict of str to str
        ``{sample: {h5: path}}`` or ``{sample: {matrix, barcodes, genes: path}}``.
    """
    by_sample: dict[str, dict[str, str]] = {}
    for role, path in files.items():
        kind, _, sample = role.partition("_")
        if sample and kind in ("h5", *LIAO_MTX_ROLES):
            by_sample.setdefault(sample, {})[kind] = path
    order = {s: i for i, s in enumerate(LIAO_SAMPLE_ORDER)}
    return dict(sorted(by_sample.items(), key=lambda kv: order.get(kv[0], len(order))))


def read_liao(sample_files: Mapping[str, Any], metadata: str | Path) -> ad.AnnData:
    """Liao et al. 2020 BALF: one count matrix per sample, joined to the authors' cells.

    Parameters
    ----------
    sample_files
        A sample to its h5 path, or to ``{h5: path}`` or ``{matrix, barcodes, genes: path}``
        (the Matrix Market trio of GSM3660650).
    metadata
        The authors' cell table (:func:`read_liao_metadata`).

    Returns
    -------
    anndata.AnnData
        Counts of the annotated cells, with ``condition``, ``cell_type``, ``group`` and
        ``sample``.
    """
    meta = read_liao_metadata(metadata)
    parts = {}
    for sample, given in sample_files.items():
        files = given if isinstance(given, Mapping) else {"h5": given}
        part = _read_liao_sample(sample, files)
        part.obs_names = liao_cell_ids(part.obs_names, sample)
        hit = part.obs_names.isin(meta.index)
        log.info("liao: %s: %d of %d cells in the authors' metadata", sample, hit.sum(), part.n_obs)
        if not hit.any():
            first = next(iter(files.values()))
            raise DatasetError(
                f"{first}: none of its cells is in {Path(metadata).name} as sample {sample}; "
                "check that the file belongs to that sample"
            )
        parts[sample] = part[hit].copy()
    n_genes = {s: p.n_vars for s, p in parts.items()}
    adata = ad.concat(parts, label="sample_file", join="inner", merge="first")
    if len(set(n_genes.values())) > 1:
        log.info(
            "liao: %d genes shared by all samples (per sample: %s)",
            adata.n_vars, ", ".join(f"{s} {n}" for s, n in n_genes.items()),
        )  # fmt: skip
    obs = meta.loc[adata.obs_names]
    for col in ("sample", "sample_new", "group", "disease", "hasnCoV", "cluster"):
        if col in obs:
            adata.obs[col] = pd.Categorical(obs[col])
    disease = obs["disease"].map({"N": "healthy", "Y": "COVID-19"}).fillna(obs["disease"])
    adata.obs[CONDITION] = two_classes(disease, f"{Path(metadata).name} column 'disease'")
    adata.obs[CELL_TYPE] = pd.Categorical(obs["celltype"])
    return adata


# -- a user's h5ad and the demo ------------------------------------------------------


def read_user_h5ad(
    path: str | Path,
    condition_key: str,
    cell_type_key: str,
    condition_positive: Sequence[str] | None = None,
    *,
    drop_unlabelled: bool = False,
    name: str = "<name>",
) -> ad.AnnData:
    """A local ``.h5ad`` whose obs hold the condition and the cell type under given keys.

    Parameters
    ----------
    path
        The file.
    condition_key, cell_type_key
        The obs columns of the condition and the cell type.
    condition_positive
        See :func:`two_classes`.
    drop_unlabelled
        Drop (and log) the cells without a condition, instead of stopping.
    name
        The dataset's name, for messages.

    Returns
    -------
    anndata.AnnData
        The data with ``obs['condition']`` (two classes) and ``obs['cell_type']`` (a
        missing one is ``unknown``, logged).

    Raises
    ------
    DatasetError
        An unreadable file, a missing key, cells without a condition, too few cells.
    """
    path = _need(path, "h5ad")
    try:
        adata = ad.read_h5ad(path)
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - a damaged file fails in h5py or anndata anywhere
        raise DatasetError(
            f"{path}: cannot be read as .h5ad ({type(err).__name__}: {str(err)[:200]}); check "
            "that it is an AnnData file written completely (write it again)"
        ) from None
    check_size(adata, path)
    for role, key in (("condition_key", condition_key), ("cell_type_key", cell_type_key)):
        if not key or key not in adata.obs:
            raise DatasetError(
                f"{path}: obs has no key '{key}' ({role}); obs keys are "
                f"{list(adata.obs.columns)[:15]}: set datasets.{name}.{role} to one of them"
            )
    adata = drop_or_refuse_unlabelled(adata, condition_key, f"{path}", drop_unlabelled, name)
    adata.obs[CONDITION] = two_classes(
        adata.obs[condition_key], f"{path} obs['{condition_key}']", condition_positive
    )
    adata.obs[CELL_TYPE] = cell_types(adata.obs[cell_type_key], f"{path} obs['{cell_type_key}']")
    adata.var_names_make_unique()
    return adata


def check_size(adata: ad.AnnData, where: str | Path) -> None:
    """Refuse an AnnData with fewer than 2 cells or no gene.

    Parameters
    ----------
    adata
        The data.
    where
        Names it in the message.

    Raises
    ------
    DatasetError
    """
    if adata.n_obs < 2 or adata.n_vars == 0:
        raise DatasetError(
            f"{where}: the file has {adata.n_obs} cell(s) x {adata.n_vars} gene(s); a dataset "
            "needs cells of both conditions and genes: check that it is the intended file"
        )


def drop_or_refuse_unlabelled(
    adata: ad.AnnData, key: str, where: str, drop: bool, name: str
) -> ad.AnnData:
    """The data without the cells whose ``obs[key]`` is missing, or an error.

    Parameters
    ----------
    adata
        The data.
    key
        The obs column.
    where
        Names the data in messages.
    drop
        Drop them (logged); without it, refuse.
    name
        The dataset's name, for the fix in the message.

    Returns
    -------
    anndata.AnnData

    Raises
    ------
    DatasetError
        Unlabelled cells and ``drop`` false: how many, and how to drop them.
    """
    missing = unlabelled(adata.obs[key])
    if not missing.any():
        return adata
    n, total = int(missing.sum()), adata.n_obs
    if not drop:
        raise DatasetError(
            f"{where} obs['{key}']: {n} of {total} cells have no condition label (NaN or empty); "
            f"label them, or set datasets.{name}.drop_unlabelled: true to drop them"
        )
    log.warning(
        "%s obs['%s']: dropped %d of %d cells without a condition label (drop_unlabelled)",
        where, key, n, total,
    )  # fmt: skip
    kept = adata[~missing].copy()
    check_size(kept, f"{where} after dropping {n} unlabelled cells")
    return kept


def cell_types(values: pd.Series, where: str) -> pd.Categorical:
    """Cell types as a categorical; a missing one becomes ``unknown`` (logged, not 'nan').

    Parameters
    ----------
    values
        An obs column.
    where
        Names the data in the log.

    Returns
    -------
    pandas.Categorical
    """
    missing = unlabelled(values)
    labels = values.astype(object).where(~missing, "unknown").astype(str)
    if missing.any():
        log.warning("%s: %d cells have no cell type; labelled 'unknown'", where, missing.sum())
    return pd.Categorical(labels)


def load_pbmc68k_demo() -> ad.AnnData:
    """scanpy's ``pbmc68k_reduced``, as the demo reads it (offline: scanpy ships it).

    Returns
    -------
    anndata.AnnData
        700 PBMCs, all genes of its log-normalised ``.raw``, the bulk labels as
        ``obs['cell_type']``.
    """
    import scanpy as sc

    full = sc.datasets.pbmc68k_reduced()
    adata = full.raw.to_adata()
    adata.obs = full.obs[["bulk_labels", "phase"]].copy()
    adata.obs[CELL_TYPE] = pd.Categorical(full.obs["bulk_labels"].astype(str))
    return adata


def load_dataset(dataset: Mapping[str, Any], files: Mapping[str, str]) -> tuple[ad.AnnData, str]:
    """Read a dataset from its config entry and its files.

    Parameters
    ----------
    dataset
        ``datasets.<name>`` (:func:`iae_pipeline.config.dataset_settings`).
    files
        The dataset's files by role.

    Returns
    -------
    adata : anndata.AnnData
        Cells with ``obs['condition']`` and ``obs['cell_type']``.
    data_type : str
        ``counts`` or ``lognorm`` (for ``h5ad``: the configured value, or detected when
        ``auto``).

    Raises
    ------
    DatasetError
        An unknown source, a missing file role, or data that cannot be read.
    """
    kind = dataset.get("source")
    positive = dataset.get("condition_positive")
    if kind == "pbmc68k_demo":
        return load_pbmc68k_demo(), LOGNORM
    if kind == "kang":
        roles = ("matrix_ctrl", "barcodes_ctrl", "matrix_stim", "barcodes_stim", "genes", "tsne")
        return read_kang(*(_role(files, r, kind) for r in roles)), COUNTS
    if kind == "macosko":
        adata = read_macosko(
            _role(files, "expression", kind), _role(files, "clusters", kind), positive or ("rods",)
        )
        return adata, COUNTS
    if kind == "liao":
        samples = liao_sample_files(files)
        if not samples:
            raise DatasetError(
                "liao: no sample file given; list h5_<sample> (or matrix_, barcodes_, "
                "genes_<sample>) per sample under files"
            )
        return read_liao(samples, _role(files, "metadata", kind)), COUNTS
    if kind == "h5ad":
        path = files.get("h5ad") or dataset.get("path")
        adata = read_user_h5ad(
            path or "",
            dataset.get("condition_key", ""),
            dataset.get("cell_type_key", ""),
            positive,
            drop_unlabelled=bool(dataset.get("drop_unlabelled", False)),
            name=str(dataset.get("name", "<name>")),
        )
        data_type = dataset.get("data_type", "auto")
        if data_type not in DATA_TYPES:
            raise DatasetError(f"data_type '{data_type}' is unknown; use one of {DATA_TYPES}")
        where = f"{path} X"
        check_finite(adata.X, where, adata.obs_names)
        detected = detect_data_type(adata.X, where)
        if detected == CENTRED:
            log_centred(adata.X, where)
        if data_type == "auto":
            log.info("h5ad: X looks like %s (data_type: auto)", detected)
            return adata, detected
        if data_type != detected:
            log.warning(
                "h5ad: X looks like %s but data_type is %s; using %s",
                detected,
                data_type,
                data_type,
            )
        return adata, data_type
    raise DatasetError(
        f"dataset source '{kind}' is unknown; use one of pbmc68k_demo, kang, macosko, liao, h5ad"
    )


def _role(files: Mapping[str, str], role: str, kind: str) -> str:
    if role not in files:
        raise DatasetError(f"{kind}: file role '{role}' missing; give it under the dataset's files")
    return files[role]
