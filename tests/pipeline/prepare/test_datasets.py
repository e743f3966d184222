"""Readers: fixtures in the exact published layouts (gzip included) and the real files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from iae_pipeline.prepare.datasets import (
    LIAO_SAMPLE_ORDER,
    MACOSKO_CLASSES,
    DatasetError,
    detect_data_type,
    is_centred,
    liao_cell_ids,
    load_dataset,
    load_pbmc68k_demo,
    log_centred,
    parse_count_line,
    read_kang,
    read_liao,
    read_macosko,
    read_macosko_clusters,
    read_user_h5ad,
)

# -- writers of the published formats -----------------------------------------------


def write_gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wt") as fh:
        fh.write(text)
    return path


def write_geo_mtx(path: Path, genes_x_cells: np.ndarray) -> Path:
    """Cell Ranger 2 / GEO style Matrix Market: genes x cells, 1-based, integer, gzip."""
    rows, cols = np.nonzero(genes_x_cells)
    lines = [
        "%%MatrixMarket matrix coordinate integer general",
        "%",
        f"{genes_x_cells.shape[0]} {genes_x_cells.shape[1]} {len(rows)}",
        *(f"{r + 1} {c + 1} {int(genes_x_cells[r, c])}" for r, c in zip(rows, cols)),
    ]
    return write_gz(path, "\n".join(lines) + "\n")


def write_10x_h5(path: Path, source: Path, cells: np.ndarray, barcodes: np.ndarray) -> Path:
    """A Cell Ranger v3 filtered h5 holding the ``cells`` (column indices) of ``source``
    under the given ``barcodes``: its features, attributes and dtypes as in ``source``."""
    import h5py

    with h5py.File(source, "r") as src, h5py.File(path, "w") as dst:
        dst.attrs.update(dict(src.attrs))
        m = src["matrix"]
        shape = tuple(m["shape"][:])
        x = sp.csc_matrix((m["data"][:], m["indices"][:], m["indptr"][:]), shape=shape)[:, cells]
        out = dst.create_group("matrix")
        src.copy(m["features"], out, "features")
        out["barcodes"] = np.asarray(barcodes, dtype=m["barcodes"].dtype)
        for name in ("data", "indices", "indptr"):
            out[name] = getattr(x, name).astype(m[name].dtype)
        out["shape"] = np.asarray(x.shape, dtype=m["shape"].dtype)
    return path


@pytest.fixture()
def kang_files(tmp_path):
    """GSE96583 batch-2 layout: 4 genes, 3 ctrl and 3 stim cells sharing two barcodes."""
    rng = np.random.default_rng(0)
    genes = [("ENSG01", "MIR1302-10"), ("ENSG02", "ISG15"), ("ENSG03", "CD14"), ("ENSG04", "MS4A1")]
    bc_ctrl = ["AAACATACAATGCC-1", "AAACATACATTTCC-1", "AAACATTGAGCTAC-1"]
    bc_stim = ["AAACATACAATGCC-1", "AAACATACATTTCC-1", "TTTGCATGAGAGGC-1"]
    counts = {k: rng.integers(0, 6, size=(4, 3)) for k in ("ctrl", "stim")}
    files = {
        "matrix_ctrl": write_geo_mtx(tmp_path / "GSM2560248_2.1.mtx.gz", counts["ctrl"]),
        "barcodes_ctrl": write_gz(
            tmp_path / "GSM2560248_barcodes.tsv.gz", "\n".join(bc_ctrl) + "\n"
        ),
        "matrix_stim": write_geo_mtx(tmp_path / "GSM2560249_2.2.mtx.gz", counts["stim"]),
        "barcodes_stim": write_gz(
            tmp_path / "GSM2560249_barcodes.tsv.gz", "\n".join(bc_stim) + "\n"
        ),
        "genes": write_gz(
            tmp_path / "GSE96583_batch2.genes.tsv.gz", "".join(f"{i}\t{s}\n" for i, s in genes)
        ),
    }
    # R wrote the table with row names (one field fewer in the header); it made the
    # repeated stim barcodes unique by appending a digit (-1 -> -11).
    rows = [
        ("AAACATACAATGCC-1", 1101, "ctrl", "CD14+ Monocytes", "singlet"),
        ("AAACATACATTTCC-1", 1015, "ctrl", "B cells", "doublet"),
        ("AAACATTGAGCTAC-1", 1256, "ctrl", "CD4 T cells", "singlet"),
        ("AAACATACAATGCC-11", 1101, "stim", "CD14+ Monocytes", "singlet"),
        ("AAACATACATTTCC-11", 1015, "stim", "B cells", "singlet"),
        ("TTTGCATGAGAGGC-1", 1488, "stim", "NK cells", "ambs"),
    ]
    text = "tsne1\ttsne2\tind\tstim\tcluster\tcell\tmultiplets\n" + "".join(
        f"{bc}\t-1.5\t2.5\t{ind}\t{stim}\t3\t{cell}\t{mult}\n" for bc, ind, stim, cell, mult in rows
    )
    files["tsne"] = write_gz(tmp_path / "GSE96583_batch2.total.tsne.df.tsv.gz", text)
    return files, counts


def test_read_kang_prefixes_barcodes_and_keeps_singlets(kang_files):
    files, counts = kang_files
    adata = read_kang(*(files[r] for r in ("matrix_ctrl", "barcodes_ctrl", "matrix_stim",
                                            "barcodes_stim", "genes", "tsne")))  # fmt: skip
    assert list(adata.obs_names) == [
        "ctrl_AAACATACAATGCC-1",
        "ctrl_AAACATTGAGCTAC-1",
        "stim_AAACATACAATGCC-1",
        "stim_AAACATACATTTCC-1",
    ]
    assert list(adata.var_names) == ["MIR1302-10", "ISG15", "CD14", "MS4A1"]
    assert list(adata.obs["condition"]) == ["ctrl", "ctrl", "stim", "stim"]
    assert list(adata.obs["cell_type"]) == ["CD14+ Monocytes", "CD4 T cells"] + [
        "CD14+ Monocytes",
        "B cells",
    ]
    X = adata.X.toarray()
    np.testing.assert_array_equal(X[0], counts["ctrl"][:, 0])
    np.testing.assert_array_equal(X[1], counts["ctrl"][:, 2])
    np.testing.assert_array_equal(X[3], counts["stim"][:, 1])
    assert detect_data_type(adata.X) == "counts"


def test_kang_matrix_that_does_not_fit_its_barcodes(kang_files, tmp_path):
    files, _ = kang_files
    write_gz(files["barcodes_ctrl"], "AAACATACAATGCC-1\n")
    with pytest.raises(DatasetError, match="does not match 4 genes .* and 1 barcodes"):
        load_dataset({"source": "kang"}, {k: str(v) for k, v in files.items()})


# -- Macosko ------------------------------------------------------------------------


def test_macosko_cluster_table_real(real):
    table = read_macosko_clusters(real("expression/macosko2015_retina_clusteridentities.txt"))
    assert len(table) == 44_808 and table.index.is_unique
    assert set(table["cluster"]) == set(range(1, 40))
    assert (table["cell_class"] == "rods").sum() == (table["cluster"] == 24).sum() > 20_000
    assert set(MACOSKO_CLASSES.values()) == set(table["cell_class"])


def test_read_macosko_dense_text_in_chunks(real, tmp_path):
    clusters = pd.read_csv(
        real("expression/macosko2015_retina_clusteridentities.txt"),
        sep="\t", header=None,
    )  # fmt: skip
    wanted = [1, 2, 3, 17, 24, 25, 26, 30, 34, 36, 38, 39]
    picked = clusters[clusters[1].isin(wanted)].groupby(1).head(1)  # one real barcode per cluster
    cells = picked[0].tolist() + ["r6_UNANNOTATED1"]
    genes = [f"Gene{i}" for i in range(7)] + ["Rho"]
    rng = np.random.default_rng(2)
    dense = rng.choice([0, 0, 0, 1, 2, 10, 123, 4005], size=(len(genes), len(cells)))
    # Drop-seq DGE layout: header "GENE<TAB>cell...", one gene per line, gzip
    text = (
        "GENE\t"
        + "\t".join(cells)
        + "\n"
        + "".join(g + "\t" + "\t".join(map(str, row)) + "\n" for g, row in zip(genes, dense))
    )
    expr = write_gz(tmp_path / "GSE63472_P14Retina_merged_digital_expression.txt.gz", text)
    clusters = tmp_path / "retina_clusteridentities.txt"
    picked.to_csv(clusters, sep="\t", header=False, index=False)
    adata = read_macosko(expr, clusters, chunksize=3)
    assert list(adata.obs_names) == picked[0].tolist()  # the unannotated cell is dropped
    assert list(adata.var_names) == genes
    np.testing.assert_array_equal(adata.X.toarray(), dense[:, :12].T)
    assert sp.issparse(adata.X)
    expected = ["rods" if c == 24 else "other" for c in picked[1]]
    assert list(adata.obs["condition"]) == expected
    assert list(adata.obs["cell_type"]) == [MACOSKO_CLASSES[c] for c in picked[1]]


def test_parse_count_line_integers_decimals_and_bad_width():
    np.testing.assert_array_equal(parse_count_line(b"0\t7\t12\t305\t0", 5), [0, 7, 12, 305, 0])
    np.testing.assert_allclose(parse_count_line(b"0.5\t1e2\t3", 3), [0.5, 100.0, 3.0])
    with pytest.raises(DatasetError, match="a line has 2 values, the header names 3 cells"):
        parse_count_line(b"1\t2", 3)


def test_dense_text_with_a_short_line_names_the_line(tmp_path):
    path = write_gz(tmp_path / "dge.txt.gz", "GENE\tc1\tc2\nA\t1\t2\nB\t3\n")
    with pytest.raises(DatasetError, match=r"dge\.txt\.gz:3: a line has 1 values"):
        read_macosko(path, _clusters(tmp_path, ["c1", "c2"]))


def _clusters(tmp_path: Path, cells: list[str]) -> Path:
    path = tmp_path / "clusters.txt"
    path.write_text("".join(f"{c}\t{24 if i % 2 else 2}\n" for i, c in enumerate(cells)))
    return path


# -- Liao ---------------------------------------------------------------------------


def test_liao_sample_order_matches_the_real_metadata(real):
    meta = pd.read_csv(
        real("expression/liao2020_all.cell.annotation.meta.txt"), sep="\t", dtype=str
    )
    k = meta["ID"].str.rsplit("_", n=1).str[1].astype(int)
    by_k = meta.groupby(k)["sample"].agg(set)
    assert {i: s.pop() for i, s in by_k.items() if len(s) == 1} == {
        i + 1: name for i, name in enumerate(LIAO_SAMPLE_ORDER)
    }
    assert list(liao_cell_ids(["AAACCTGAGACACTAA-1"], "C141")) == ["AAACCTGAGACACTAA_5"]


def test_read_liao_joins_two_samples_h5_on_barcode_and_sample(real, tmp_path):
    import scanpy as sc

    h5 = real("expression/cellranger_v3_chr21_filtered_feature_bc_matrix.h5")
    ref = sc.read_10x_h5(h5)
    barcodes = np.asarray(ref.obs_names)
    # two samples' files from the real h5: healthy C51 (k = 1) holds its cells 0-299,
    # COVID-19 C144 (k = 7) its cells 300-599, the first 100 of them under C51's first 100
    # barcodes (10x barcodes repeat across samples: only the sample tells the cells apart)
    c144_barcodes = np.r_[barcodes[:100], barcodes[400:600]]
    files = {
        "C51": write_10x_h5(tmp_path / "C51.h5", h5, np.arange(300), barcodes[:300]),
        "C144": write_10x_h5(tmp_path / "C144.h5", h5, np.arange(300, 600), c144_barcodes),
    }
    cells = pd.read_csv(
        real("expression/liao2020_all.cell.annotation.meta.txt"), sep="\t", dtype=str
    )
    # metadata in the published layout: 250 of C51's cells, 200 of C144's, other samples
    hc = cells[cells["sample"] == "C51"].head(250).copy()
    covid = cells[cells["sample"] == "C144"].head(200).copy()
    hc["ID"] = [f"{b.split('-')[0]}_1" for b in barcodes[:250]]
    covid["ID"] = [f"{b.split('-')[0]}_7" for b in c144_barcodes[50:250]]
    meta = tmp_path / "all.cell.annotation.meta.txt"
    pd.concat([covid, hc, cells.tail(20)]).to_csv(meta, sep="\t", index=False)
    adata = read_liao(files, meta)
    assert adata.n_obs == 450 and adata.n_vars == 507
    assert list(adata.obs_names) == hc["ID"].tolist() + covid["ID"].tolist()
    assert adata.obs["sample"].value_counts().to_dict() == {"C51": 250, "C144": 200}
    assert adata.obs["group"].value_counts().to_dict() == {"HC": 250, "M": 200}
    assert adata.obs["condition"].value_counts().to_dict() == {"COVID-19": 200, "healthy": 250}
    assert list(adata.obs["cell_type"]) == hc["celltype"].tolist() + covid["celltype"].tolist()
    # every cell's counts are its own sample's: C51's cells 0-249, C144's cells 350-549
    assert list(adata.var_names) == list(ref.var_names)
    expected = sp.vstack([ref.X[:250], ref.X[350:550]]).toarray()
    np.testing.assert_array_equal(adata.X.toarray(), expected)
    shared = [f"{b.split('-')[0]}_{k}" for b in barcodes[50:100] for k in (1, 7)]
    assert set(shared) <= set(adata.obs_names)  # a barcode in both samples: two cells
    with pytest.raises(DatasetError, match="none of its cells is in .* as sample C141"):
        read_liao({"C141": files["C51"]}, meta)


def test_read_liao_joins_the_gsm3660650_mtx_trio(real, tmp_path):
    """The fourth healthy control ships as GEO's Cell Ranger v2 trio (gzip):
    GSM3660650_SC249NORbal_fresh_{matrix.mtx,barcodes.tsv,genes.tsv}; its cells are the
    authors' sample GSM3660650, IDs ending in _4."""
    import scanpy as sc

    h5 = real("expression/cellranger_v3_chr21_filtered_feature_bc_matrix.h5")
    ref = sc.read_10x_h5(h5)
    cells = pd.read_csv(
        real("expression/liao2020_all.cell.annotation.meta.txt"), sep="\t", dtype=str
    )
    # the trio holds the h5's last 200 cells and its genes but the first 7 (Cell Ranger v2
    # had another reference), in reverse order
    trio = ref[-200:, ref.var_names[7:][::-1]]
    prefix = tmp_path / "GSM3660650_SC249NORbal_fresh"
    files = {
        "matrix_GSM3660650": write_geo_mtx(
            Path(f"{prefix}_matrix.mtx.gz"), trio.X.T.toarray().astype(int)
        ),
        "barcodes_GSM3660650": write_gz(
            Path(f"{prefix}_barcodes.tsv.gz"), "".join(f"{b}\n" for b in trio.obs_names)
        ),
        "genes_GSM3660650": write_gz(
            Path(f"{prefix}_genes.tsv.gz"),
            "".join(f"{i}\t{g}\n" for i, g in zip(trio.var["gene_ids"], trio.var_names)),
        ),
        "h5_C144": str(h5),
    }
    hc4 = cells[cells["sample"] == "GSM3660650"].head(150).copy()
    hc4["ID"] = [f"{b.split('-')[0]}_4" for b in trio.obs_names[:150]]
    m1 = cells[cells["sample"] == "C144"].head(100).copy()
    m1["ID"] = [f"{b.split('-')[0]}_7" for b in ref.obs_names[:100]]
    meta = tmp_path / "all.cell.annotation.meta.txt"
    pd.concat([m1, hc4]).to_csv(meta, sep="\t", index=False)
    files["metadata"] = str(meta)

    adata, data_type = load_dataset({"source": "liao"}, {k: str(v) for k, v in files.items()})
    assert data_type == "counts" and adata.n_obs == 250
    # in the authors' sample order: GSM3660650 (k = 4) before C144 (k = 7)
    assert list(adata.obs_names) == hc4["ID"].tolist() + m1["ID"].tolist()
    assert adata.obs["sample"].value_counts().to_dict() == {"GSM3660650": 150, "C144": 100}
    assert adata.obs["group"].value_counts().to_dict() == {"HC": 150, "M": 100}
    assert adata.obs["condition"].value_counts().to_dict() == {"healthy": 150, "COVID-19": 100}
    assert list(adata.obs["cell_type"][:150]) == hc4["celltype"].tolist()
    assert adata.n_vars == ref.n_vars - 7  # the genes both samples have
    got = adata[hc4["ID"].tolist(), list(ref.var_names[7:])].X.toarray()
    np.testing.assert_array_equal(got, ref[-200:-50, ref.var_names[7:]].X.toarray())
    del files["genes_GSM3660650"]
    with pytest.raises(DatasetError, match=r"sample GSM3660650 needs h5_GSM3660650 or all of"):
        load_dataset({"source": "liao"}, {k: str(v) for k, v in files.items()})


# -- a user's h5ad ------------------------------------------------------------------


def test_user_h5ad_condition_from_three_stages(buettner_h5ad):
    adata = read_user_h5ad(buettner_h5ad, "stage", "line", condition_positive=["G2M"])
    assert adata.shape == (182, 6635)
    assert adata.obs["condition"].value_counts().to_dict() == {"other": 117, "G2M": 65}
    assert detect_data_type(adata.X) == "lognorm"
    with pytest.raises(DatasetError, match=r"has 3 class\(es\).*set condition_positive"):
        read_user_h5ad(buettner_h5ad, "stage", "line")


def test_a_two_class_condition_keeps_its_own_labels():
    """With condition_positive, the rest keeps its label when it is one label (ctrl stays
    ctrl in every table and figure); several are gathered as 'other'."""
    from iae_pipeline.prepare.datasets import two_classes

    kang = pd.Series(["ctrl", "stim", "stim", "ctrl"])
    assert list(two_classes(kang, "kang", positive=["stim"])) == ["ctrl", "stim", "stim", "ctrl"]
    stages = pd.Series(["G1", "S", "G2M"])
    assert list(two_classes(stages, "x", positive=["G2M"])) == ["other", "other", "G2M"]


def test_user_h5ad_bad_keys_and_one_class(buettner_h5ad):
    with pytest.raises(DatasetError, match="obs has no key 'phase' \\(condition_key\\)"):
        read_user_h5ad(buettner_h5ad, "phase", "line")
    with pytest.raises(DatasetError, match="has 1 class\\(es\\) \\['mESC'\\]"):
        read_user_h5ad(buettner_h5ad, "line", "line")


def test_load_dataset_h5ad_detects_and_overrides_data_type(buettner_h5ad, caplog):
    spec = {
        "source": "h5ad", "condition_key": "stage", "cell_type_key": "line",
        "condition_positive": ["G2M"], "data_type": "auto",
    }  # fmt: skip
    with caplog.at_level("INFO"):
        _, data_type = load_dataset(spec, {"h5ad": str(buettner_h5ad)})
    assert data_type == "lognorm" and "X looks like lognorm (data_type: auto)" in caplog.text
    assert (
        load_dataset({**spec, "data_type": "counts"}, {"h5ad": str(buettner_h5ad)})[1] == "counts"
    )
    with pytest.raises(DatasetError, match="data_type 'raw' is unknown"):
        load_dataset({**spec, "data_type": "raw"}, {"h5ad": str(buettner_h5ad)})


def test_detect_data_type_accepts_centred_and_refuses_other_negative_data(caplog):
    assert detect_data_type(sp.csr_matrix(np.array([[0, 3], [1, 0]], dtype=np.float32))) == "counts"
    with pytest.raises(DatasetError, match="has negative values .* but is not centred"):
        detect_data_type(np.array([[-0.5, 1.2], [0.2, 0.3]]))
    rng = np.random.default_rng(0)
    lognorm = np.log1p(rng.poisson(2.0, size=(300, 20))).astype(np.float32)
    centred = lognorm - lognorm.mean(axis=0)  # as the authors' notebooks, in float32
    assert detect_data_type(centred) == "centred"
    assert detect_data_type(sp.csr_matrix(centred)) == "centred"
    with caplog.at_level("INFO"):
        log_centred(centred, "x.h5ad X")
    assert "x.h5ad X is centred" in caplog.text and "scaled" not in caplog.text
    scaled = centred / centred.std(axis=0)
    assert detect_data_type(scaled) == "centred"
    with caplog.at_level("INFO"):
        log_centred(scaled, "z.h5ad X")
    assert "z.h5ad X looks scaled to unit variance" in caplog.text


def test_pbmc68k_demo():
    adata = load_pbmc68k_demo()
    assert adata.shape == (700, 765)
    assert "condition" not in adata.obs and adata.obs["cell_type"].nunique() == 10
    assert detect_data_type(adata.X) == "lognorm"


def test_unknown_source_and_missing_role():
    with pytest.raises(DatasetError, match="source 'geo' is unknown"):
        load_dataset({"source": "geo"}, {})
    with pytest.raises(DatasetError, match="file role 'clusters' missing"):
        load_dataset({"source": "macosko"}, {"expression": "x.txt.gz"})


@pytest.mark.parametrize("offset, centred", [(0.5, True), (2.0, False)])
def test_the_workflow_and_the_estimator_share_one_centring_rule(offset, centred):
    """A gene whose mean sits just inside (or outside) the tolerance is centred for the
    input's detection and for the estimator alike: one rule, not two tolerances."""
    from interpretable_ae.conventions import CENTRED_TOLERANCE
    from interpretable_ae.data import Statistics

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    X -= X.mean(axis=0)
    rms = np.sqrt((X**2).mean(axis=0))
    X[:, 1] += offset * CENTRED_TOLERANCE * rms[1]  # gene 1 near the border
    mean = X.mean(axis=0)
    stats = Statistics(mean, np.sqrt((X**2).mean(axis=0)))
    assert is_centred(X) is centred
    assert stats.looks_centred() is centred


# ---- regression cases found by the fuzzing (test_inputs_fuzz.py) ---------------------------


@pytest.mark.parametrize(
    ("damage", "error"),
    [((b"SNOD", b"XXXX"), "RuntimeError"), ((b"TREE", b"XXXX"), "RuntimeError"),
     ((b"anndata", b"\0" * 7), "IORegistryError")],
    ids=["symbol-table", "b-tree", "encoding-type"],
)  # fmt: skip
def test_a_damaged_h5ad_is_one_line_naming_the_file(tmp_path, damage, error):
    """h5py's RuntimeError on a damaged HDF5 structure and anndata's IORegistryError on a
    damaged encoding attribute were tracebacks: now the file is named, on one line."""
    obs = pd.DataFrame({"cond": ["ctrl", "stim"] * 10, "type": ["T", "B"] * 10},
                       index=[f"c{i}" for i in range(20)])  # fmt: skip
    import anndata as ad

    path = tmp_path / "mine.h5ad"
    ad.AnnData(np.ones((20, 3), np.float32), obs=obs).write_h5ad(path)
    path.write_bytes(path.read_bytes().replace(*damage, 1))
    with pytest.raises(DatasetError) as err:
        read_user_h5ad(path, "cond", "type")
    message = str(err.value)
    assert message.startswith(f"{path}: cannot be read as .h5ad ({error}: ")
    assert len(message.splitlines()) == 1 and "write it again" in message
