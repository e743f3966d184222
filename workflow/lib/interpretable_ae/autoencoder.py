"""The public estimator: build from an AnnData and gene sets, train, read factors.

>>> ae = InterpretableAutoencoder(adata, gene_sets, n_sparse=4, n_dense=2)
>>> ae.train(epochs=50, seed=0)          # writes obsm/varm/uns of ``adata``
>>> ae.terms_by_norm().head()
>>> ae.term_genes("REACTOME_INTERFERON_SIGNALING")   # 'gained' = outside the gene set
>>> ae.save("model/"); InterpretableAutoencoder.load("model/", adata)

Results are written scverse-style into the AnnData the model was built from:
``obsm['X_interpretable_ae']`` (cells x factors), ``varm['W_interpretable_ae']``
(genes x factors, the decoder W) and ``uns['interpretable_ae']`` (factor names,
kinds, active flags, weight norms, hyper-parameters, training history).
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file

from .contract import MASK_KEY, TERMS_KEY, make_factor_anndata
from .genesets import build_mask
from .model import LinearDecoderAE
from .prox import l1_weights
from .train import TrainConfig, TrainHistory, evaluate, train_model

KEY = "interpretable_ae"
WEIGHTS_FILE, ANNOTATION_FILE, CONFIG_FILE = (
    "model.safetensors",
    "annotation.safetensors",
    "config.json",
)
log = logging.getLogger(__name__)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def expression_matrix(adata: ad.AnnData, layer: str | None = None) -> np.ndarray:
    """Dense float32 cells x genes from ``X`` or a layer; rejects empty data and NaN/Inf."""
    where = "X" if layer is None else f"layers['{layer}']"
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(
            f"the AnnData is empty ({adata.n_obs} cells x {adata.n_vars} genes); "
            "pass data with at least a few cells and genes"
        )
    if layer is not None and layer not in adata.layers:
        raise ValueError(f"layer '{layer}' not in the AnnData (layers: {list(adata.layers)})")
    mat = adata.X if layer is None else adata.layers[layer]
    mat = mat.toarray() if sp.issparse(mat) else np.asarray(mat)
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    bad = ~np.isfinite(mat)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise ValueError(
            f"{where} has {int(bad.sum())} NaN/Inf value(s) in {rows.size} cell(s) (first: "
            f"'{adata.obs_names[rows[0]]}'); remove those cells or impute before training"
        )
    return mat


def covariate_design(
    obs: pd.DataFrame, keys: Sequence[str]
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Covariate matrix X of eq. 2: one-hot columns for categorical obs keys, z-scored
    columns for numeric ones. Returns ``(cells x columns float32, spec per key)``."""
    cols: list[np.ndarray] = []
    spec: list[dict[str, Any]] = []
    for key in keys:
        if key not in obs:
            raise ValueError(
                f"covariate '{key}' is not an obs column (have: {list(obs.columns)}); "
                "fix the covariates option"
            )
        values = obs[key]
        if values.isna().any():
            raise ValueError(f"covariate obs['{key}'] has missing values; fill or drop them")
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            v = values.to_numpy(dtype=np.float64)
            mean, std = float(v.mean()), float(v.std()) or 1.0
            cols.append(((v - mean) / std)[:, None])
            spec.append({"key": key, "kind": "continuous", "mean": mean, "std": std})
        else:
            cat = pd.Categorical(values.astype(str))
            cols.append(np.eye(len(cat.categories))[cat.codes])
            spec.append({"key": key, "kind": "categorical", "categories": list(cat.categories)})
    design = np.hstack(cols) if cols else np.zeros((len(obs), 0))
    return design.astype(np.float32), spec


def _mask_from(
    adata: ad.AnnData,
    gene_sets: Mapping[str, Sequence[str]] | None,
    mask: Any,
    terms: Sequence[str] | None,
    min_genes: int,
    max_genes: int | None,
) -> tuple[sp.csr_matrix, list[str]]:
    """Annotation I (genes x terms) and term names from gene sets, a mask, or varm."""
    genes = adata.var_names
    if gene_sets is not None:
        if mask is not None:
            raise ValueError("pass either gene_sets or mask, not both")
        return build_mask(genes, gene_sets, min_genes, max_genes)
    if mask is None:
        if MASK_KEY not in adata.varm:
            return sp.csr_matrix((adata.n_vars, 0), dtype=np.float32), []
        mask = adata.varm[MASK_KEY]
        if TERMS_KEY not in adata.uns:
            raise ValueError(
                f"varm['{MASK_KEY}'] has no term names in uns['{TERMS_KEY}']; add them"
            )
        terms = list(adata.uns[TERMS_KEY])
    if isinstance(mask, pd.DataFrame):
        if set(mask.index) != set(genes):
            n_miss = len(genes.difference(mask.index))
            raise ValueError(
                f"the mask's genes (index) do not match the data's var_names: {n_miss} data "
                "gene(s) are missing from it; build the mask for adata.var_names"
            )
        terms = [str(t) for t in mask.columns] if terms is None else terms
        mask = mask.loc[genes].to_numpy()
    if terms is None:
        raise ValueError("a mask needs term names: pass terms=[...] (one per mask column)")
    mask = sp.csr_matrix(mask, dtype=np.float32)
    if mask.shape != (adata.n_vars, len(terms)):
        raise ValueError(
            f"the mask is {mask.shape[0]} genes x {mask.shape[1]} terms but the data have "
            f"{adata.n_vars} genes and {len(terms)} term names were given; rebuild it with "
            "genesets.build_mask(adata.var_names, gene_sets)"
        )
    return mask, [str(t) for t in terms]


class InterpretableAutoencoder:
    """Autoencoder with a linear decoder whose factors are gene sets (Rybakov et al. 2020).

    Factors are [annotated (one per gene set) | ``n_sparse`` | ``n_dense``]. Gene sets
    come from ``gene_sets`` (``{term: genes}``), a ``mask`` (genes x terms, with
    ``terms``; a DataFrame carries both), or ``adata.varm['geneset_mask']`` with
    ``adata.uns['geneset_terms']`` (the prepared-data contract). ``covariates`` are obs
    keys modelled by the linear term X Φᵀ (eq. 2).
    """

    def __init__(
        self,
        adata: ad.AnnData,
        gene_sets: Mapping[str, Sequence[str]] | None = None,
        *,
        mask: Any = None,
        terms: Sequence[str] | None = None,
        n_sparse: int = 0,
        n_dense: int = 0,
        hidden: Sequence[int] = (400, 400),
        dropout: float = 0.2,
        covariates: Sequence[str] = (),
        min_genes: int = 1,
        max_genes: int | None = None,
        layer: str | None = None,
        device: str | torch.device = "auto",
        seed: int = 0,
    ) -> None:
        expression_matrix(adata, layer)  # fail early on empty data or NaN/Inf
        if n_sparse < 0 or n_dense < 0:
            raise ValueError(f"n_sparse and n_dense must be >= 0, got {n_sparse}, {n_dense}")
        annotation, term_names = _mask_from(adata, gene_sets, mask, terms, min_genes, max_genes)
        if term_names and annotation.nnz == 0:
            raise ValueError(
                f"the {len(term_names)} gene sets share no gene with the data's "
                f"{adata.n_vars} genes; check species and gene symbols (var_names)"
            )
        empty = np.asarray(annotation.getnnz(axis=0)).ravel() == 0
        if empty.any():
            warnings.warn(
                f"dropping {int(empty.sum())} gene set(s) with no gene in the data",
                stacklevel=2,
            )
            annotation = annotation[:, ~empty].tocsr()
            term_names = [t for t, e in zip(term_names, empty, strict=True) if not e]
        if not term_names and n_sparse + n_dense == 0:
            raise ValueError(
                "no factors: give gene sets (gene_sets=, mask= or varm['geneset_mask']) "
                "or n_sparse/n_dense > 0"
            )
        _, cov_spec = covariate_design(adata.obs, covariates)
        self._setup(
            genes=list(map(str, adata.var_names)),
            terms=term_names,
            annotation=annotation,
            arch={
                "n_sparse": int(n_sparse),
                "n_dense": int(n_dense),
                "hidden": [int(h) for h in hidden],
                "dropout": float(dropout),
                "layer": layer,
            },
            covariates=cov_spec,
            device=device,
            seed=seed,
        )
        self.adata = adata

    def _setup(
        self,
        genes: list[str],
        terms: list[str],
        annotation: sp.csr_matrix,
        arch: dict[str, Any],
        covariates: list[dict[str, Any]],
        device: str | torch.device,
        seed: int,
    ) -> None:
        self.genes = pd.Index(genes)
        self.terms = terms
        self.annotation = annotation
        self.arch = arch
        self.covariates = covariates
        self.seed = int(seed)
        self.device = resolve_device(device)
        n_cov = sum(len(c["categories"]) if c["kind"] == "categorical" else 1 for c in covariates)
        self.factor_names = (
            list(terms)
            + [f"sparse_{i}" for i in range(arch["n_sparse"])]
            + [f"dense_{i}" for i in range(arch["n_dense"])]
        )
        self.kinds = (
            ["annotated"] * len(terms) + ["sparse"] * arch["n_sparse"] + ["dense"] * arch["n_dense"]
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.module = LinearDecoderAE(
                len(genes), len(self.factor_names), arch["hidden"], arch["dropout"], n_cov
            ).to(self.device)
        self.module.eval()
        self.config: TrainConfig | None = None
        self.history = TrainHistory()
        self.seconds = 0.0
        self.final_loss = float("nan")
        self.adata: ad.AnnData | None = None

    # ------------------------------------------------------------------ training
    def train(
        self,
        epochs: int = 50,
        batch_size: int = 62,
        lr: float = 1e-3,
        lambda0: float = 0.1,
        lambda1: float = 0.93,
        lambda2: float = 0.0,
        lambda3: float = 0.57,
        val_fraction: float = 0.0,
        patience: int = 5,
        seed: int | None = None,
        warmup_epochs: float = 0.0,
        lr_decay: str = "none",
        decoder_solve: str = "none",
        progress: bool = True,
        on_epoch_end: Callable[[int], None] | None = None,
    ) -> InterpretableAutoencoder:
        """Fit by stochastic proximal gradient and write the results into ``self.adata``.

        Loss = mean over cells of ``||y - ŷ||²`` + lambda0 * mean ``||f(y)||²``; after each
        Adam step the decoder gets the prox with steps ``lr * lambda1`` (L1 on genes
        outside each gene set), ``lr * lambda2`` (L1 on sparse factors) and
        ``lr * lambda3`` (group lasso on every factor). These lambdas equal those of
        ``intercode.Intercode.train`` (paper: 0.93 / 0.57 at lr 1e-3, batch 62, 50
        epochs). ``warmup_epochs`` ramps the learning rate (and with it the prox steps)
        linearly up from near 0; ``lr_decay="cosine"`` then anneals it towards 0 over the
        remaining epochs (default: constant, as the paper). ``decoder_solve`` "epoch" or
        "doubling" adds exact solves of the linear head during training: the same model
        and objective, fewer epochs to a given loss (:class:`.train.TrainConfig`; default
        "none", the paper's algorithm). ``val_fraction`` > 0 holds out cells for early
        stopping;
        ``on_epoch_end(epoch)`` is called after each epoch, outside the timing.
        """
        if self.adata is None:
            raise ValueError("this model has no training data; load it with an AnnData")
        self.config = TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            lambda0=lambda0,
            lambda1=lambda1,
            lambda2=lambda2,
            lambda3=lambda3,
            val_fraction=val_fraction,
            patience=patience,
            seed=self.seed if seed is None else int(seed),
            warmup_epochs=warmup_epochs,
            lr_decay=lr_decay,
            decoder_solve=decoder_solve,
        )
        x = torch.from_numpy(expression_matrix(self.adata, self.arch["layer"])).to(self.device)
        cov = None
        if self.covariates:
            design, _ = covariate_design(self.adata.obs, [c["key"] for c in self.covariates])
            cov = torch.from_numpy(design).to(self.device)
        weights = l1_weights(
            torch.from_numpy(self.annotation.toarray()).to(self.device),
            self.arch["n_sparse"],
            self.arch["n_dense"],
            lambda1,
            lambda2,
        )
        t0 = time.perf_counter()
        self.history = train_model(
            self.module, x, weights, self.config, cov, progress, on_epoch_end
        )
        self.seconds = time.perf_counter() - t0
        self.final_loss, _ = evaluate(self.module, x, lambda0, cov)
        self.write_results(self.adata, self._encode(x))  # x is the data, already aligned
        return self

    # ------------------------------------------------------------------ results
    @property
    def decoder_weights(self) -> np.ndarray:
        """The decoder W, genes x factors."""
        return self.module.decoder_weight.detach().cpu().numpy()

    @property
    def active(self) -> np.ndarray:
        """Per factor: is its decoder column not exactly zero (group lasso kept it)."""
        return (self.decoder_weights != 0).any(axis=0)

    def factor_table(self) -> pd.DataFrame:
        """One row per factor: kind, active, weight_norm, annotated genes in the data."""
        n_ann = np.zeros(len(self.factor_names), dtype=np.int64)
        n_ann[: len(self.terms)] = self.annotation.getnnz(axis=0)
        return pd.DataFrame(
            {
                "kind": pd.Categorical(self.kinds, categories=["annotated", "sparse", "dense"]),
                "active": self.active,
                "weight_norm": np.linalg.norm(self.decoder_weights, axis=0),
                "n_genes_annotated": n_ann,
            },
            index=pd.Index(self.factor_names, name="factor"),
        )

    def terms_by_norm(self, kind: str | None = "annotated") -> pd.Series:
        """Decoder column norms, largest first, of factors of ``kind`` (None: all)."""
        table = self.factor_table()
        if kind is not None:
            table = table[table["kind"] == kind]
        return table["weight_norm"].sort_values(ascending=False, kind="stable")

    def active_terms(self, kind: str | None = "annotated") -> list[str]:
        """Names of the factors of ``kind`` (None: all) that group lasso kept."""
        table = self.factor_table()
        keep = table["active"] if kind is None else table["active"] & (table["kind"] == kind)
        return table.index[keep].tolist()

    def term_genes(self, term: str) -> pd.DataFrame:
        """Genes of a factor by |weight|: those with a non-zero weight or in its gene set.

        Columns: ``weight``, ``in_annotation`` and ``gained`` (non-zero weight outside
        the gene set: what the factor learned beyond the annotation).
        """
        if term not in self.factor_names:
            raise ValueError(f"'{term}' is not a factor of this model; see .factor_names")
        k = self.factor_names.index(term)
        weight = self.decoder_weights[:, k]
        inside = np.zeros(len(self.genes), dtype=bool)
        if k < len(self.terms):
            inside = self.annotation[:, k].toarray().ravel() != 0
        table = pd.DataFrame(
            {"weight": weight, "in_annotation": inside, "gained": (weight != 0) & ~inside},
            index=pd.Index(self.genes, name="gene"),
        )
        table = table[(table["weight"] != 0) | table["in_annotation"]]
        return table.iloc[np.argsort(-np.abs(table["weight"].to_numpy()), kind="stable")]

    def _aligned(self, adata: ad.AnnData) -> np.ndarray:
        """``adata``'s expression in the model's gene order; missing genes are zero."""
        layer = self.arch["layer"]
        if adata.var_names.equals(self.genes):
            return expression_matrix(adata, layer)
        if not adata.var_names.is_unique:  # get_indexer would fail deep inside pandas
            raise ValueError("the new data's var_names are not unique; make them unique first")
        idx = adata.var_names.get_indexer(self.genes)
        n_missing = int((idx < 0).sum())
        if n_missing == len(self.genes):
            raise ValueError(
                "the new data share no gene with the model; check species and gene symbols"
            )
        if n_missing:
            warnings.warn(
                f"{n_missing} of the model's {len(self.genes)} genes are missing from the new "
                "data and are set to 0",
                stacklevel=3,
            )
        present = expression_matrix(adata[:, idx[idx >= 0]], layer)
        out = np.zeros((adata.n_obs, len(self.genes)), dtype=np.float32)
        out[:, idx >= 0] = present
        return out

    @torch.no_grad()
    def get_latent_representation(
        self, adata: ad.AnnData | None = None, batch_size: int = 4096
    ) -> np.ndarray:
        """Cells x factors f(y) (eval mode) for the training data or new ``adata``,
        whose genes may be in another order or partly missing (zero-filled, warned)."""
        adata = self.adata if adata is None else adata
        if adata is None:
            raise ValueError("pass an AnnData: this model was loaded without data")
        return self._encode(torch.from_numpy(self._aligned(adata)), batch_size)

    @torch.no_grad()
    def _encode(self, x: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
        """Cells x factors f(x) of expression already in the model's gene order."""
        self.module.eval()
        parts = [
            self.module.encoder(x[a : a + batch_size].to(self.device)).cpu()
            for a in range(0, x.shape[0], batch_size)
        ]
        return torch.cat(parts).numpy()

    def params(self) -> dict[str, Any]:
        """Architecture and training hyper-parameters, flat."""
        out: dict[str, Any] = {k: v for k, v in self.arch.items() if k != "layer"}
        out["hidden"] = ",".join(map(str, self.arch["hidden"]))
        out["covariates"] = ",".join(c["key"] for c in self.covariates)
        out["n_annotated"] = len(self.terms)
        if self.config is not None:
            out |= self.config.as_dict()
        return out

    def write_results(self, adata: ad.AnnData, latents: np.ndarray | None = None) -> None:
        """Write ``obsm['X_interpretable_ae']``, ``varm['W_interpretable_ae']`` and
        ``uns['interpretable_ae']`` into ``adata`` (same genes as the model); ``latents``
        are ``adata``'s, when already computed."""
        if not adata.var_names.equals(self.genes):
            raise ValueError("write_results needs the model's genes in the model's order")
        table = self.factor_table()
        if latents is None:
            latents = self.get_latent_representation(adata)
        adata.obsm[f"X_{KEY}"] = latents
        adata.varm[f"W_{KEY}"] = self.decoder_weights
        adata.uns[KEY] = {
            "factor_names": list(self.factor_names),
            "kinds": list(self.kinds),
            "active": table["active"].to_numpy(),
            "weight_norm": table["weight_norm"].to_numpy(),
            "params": {k: ("" if v is None else v) for k, v in self.params().items()},
            "history": {
                k: np.asarray(v) for k, v in self.history.as_dict().items() if isinstance(v, list)
            },
            "seconds": float(self.seconds),
            "final_loss": float(self.final_loss),
        }

    def to_factor_anndata(
        self, adata: ad.AnnData | None = None, run: Mapping[str, Any] | None = None
    ) -> ad.AnnData:
        """The factor-contract AnnData (see :mod:`.contract`) of ``adata`` (default: the
        training data); ``run`` adds to / overrides the run metadata."""
        adata = self.adata if adata is None else adata
        if adata is None:
            raise ValueError("pass an AnnData: this model was loaded without data")
        meta: dict[str, Any] = {
            "model": "autoencoder",
            "setup": "",
            "seed": self.config.seed if self.config else self.seed,
            "seconds": float(self.seconds),
            "device": str(self.device),
            "final_loss": float(self.final_loss),
            "epochs_run": len(self.history.train_loss),
            "stopped_early": bool(self.history.stopped_early),
        }
        meta |= self.params()
        meta |= dict(run or {})
        return make_factor_anndata(
            self.get_latent_representation(adata),
            adata.obs,
            self.factor_names,
            self.kinds,
            self.decoder_weights,
            list(self.genes),
            self.active,
            meta,
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """Save to directory ``path``: weights and annotation as safetensors, the rest as
        JSON (no pickle)."""
        path = Path(path)
        if (path / CONFIG_FILE).exists() and not overwrite:
            raise ValueError(f"{path} already holds a saved model; pass overwrite=True")
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        save_file(state, str(path / WEIGHTS_FILE))
        coo = self.annotation.tocoo()
        save_file(
            {
                "rows": torch.from_numpy(coo.row.astype(np.int64)),
                "cols": torch.from_numpy(coo.col.astype(np.int64)),
            },
            str(path / ANNOTATION_FILE),
        )
        config = {
            "format": 1,
            "genes": list(self.genes),
            "terms": self.terms,
            "arch": self.arch,
            "covariates": self.covariates,
            "seed": self.seed,
            "train": None if self.config is None else self.config.as_dict(),
            "history": self.history.as_dict(),
            "seconds": self.seconds,
            "final_loss": self.final_loss,
        }
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=1))

    @classmethod
    def load(
        cls,
        path: str | Path,
        adata: ad.AnnData | None = None,
        device: str | torch.device = "auto",
    ) -> InterpretableAutoencoder:
        """Load a model saved by :meth:`save`; ``adata``, if given, must have the model's
        genes in the model's order (it becomes the model's data)."""
        path = Path(path)
        if not (path / CONFIG_FILE).is_file():
            raise ValueError(f"{path}: no {CONFIG_FILE}; is this a directory written by save()?")
        config = json.loads((path / CONFIG_FILE).read_text())
        genes = config["genes"]
        if adata is not None and list(map(str, adata.var_names)) != genes:
            n_common = len(set(genes) & set(map(str, adata.var_names)))
            raise ValueError(
                f"{path}: the model has {len(genes)} genes, the data {adata.n_vars} "
                f"({n_common} shared, order must match too); subset with "
                "adata[:, model_genes] or use get_latent_representation(new_adata)"
            )
        ann = load_file(str(path / ANNOTATION_FILE))
        annotation = sp.csr_matrix(
            (np.ones(ann["rows"].numel(), dtype=np.float32), (ann["rows"], ann["cols"])),
            shape=(len(genes), len(config["terms"])),
        )
        obj = cls.__new__(cls)
        obj._setup(
            genes,
            config["terms"],
            annotation,
            config["arch"],
            config["covariates"],
            device,
            config["seed"],
        )
        obj.module.load_state_dict(load_file(str(path / WEIGHTS_FILE), device=str(obj.device)))
        obj.module.eval()
        obj.config = TrainConfig(**config["train"]) if config["train"] else None
        obj.history = TrainHistory(**config["history"])
        obj.seconds, obj.final_loss = config["seconds"], config["final_loss"]
        obj.adata = adata
        return obj

    def __repr__(self) -> str:
        n = len(self.terms), self.arch["n_sparse"], self.arch["n_dense"]
        status = f"trained {len(self.history.train_loss)} epochs" if self.config else "untrained"
        return (
            f"InterpretableAutoencoder({len(self.genes)} genes; {n[0]} annotated, {n[1]} sparse, "
            f"{n[2]} dense factors; {status}; device {self.device})"
        )
