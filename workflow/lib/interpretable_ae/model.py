"""The estimator (scvi-tools' "model"): build from an AnnData and gene sets, train, read.

Typical use::

    ae = InterpretableAutoencoder(adata, gene_sets, n_sparse=4, n_dense=2)
    ae.train(epochs=50, seed=0)                    # options: training.TrainConfig
    ae.get_latent_representation()                 # cells x factors
    ae.get_loadings()                              # genes x factors DataFrame (the decoder W)
    ae.term_genes("REACTOME_INTERFERON_SIGNALING") # 'gained' = outside the gene set
    ae.write_results(adata, key_added="iae")       # obsm / varm / uns, on request
    ae.save("model/"); InterpretableAutoencoder.load("model/", adata)

The data may be dense, scipy sparse or an on-disk (backed) AnnData: they are streamed
batch by batch (:mod:`.data`), never densified whole. By default (``center=True``) every
gene is centred with its mean over the training cells, as the authors' notebooks centre
``adata.X`` before training; the means are stored with the model and used on new data.
After training each factor's sign is fixed by :func:`.signs.factor_signs` (a higher
latent value means higher expression of the factor's genes). ``train(checkpoint_dir=...)``
makes a long fit resumable (:mod:`.checkpoint`).

Training never writes into the user's AnnData; :meth:`InterpretableAutoencoder.write_results`
does, under a key of the caller's choice, so that two models can share one AnnData.
:meth:`InterpretableAutoencoder.to_anndata` returns the results as an AnnData of their own
(cells x factors).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file

from .checkpoint import Checkpointer, array_digest
from .conventions import KINDS, MASK_KEY, TERMS_KEY, unannotated_name
from .data import EVAL_ROWS, CellData
from .genesets import build_mask
from .module import LinearDecoderAE, flip_factors_
from .prox import l1_weights
from .signs import factor_signs
from .training import TrainConfig, TrainHistory, evaluate, train_model

__all__ = ["InterpretableAutoencoder", "factor_signs", "training_config"]

KEY = "interpretable_ae"  # the default key_added of write_results
MEANS_KEY = "gene_means"  # the centring means, beside the network in WEIGHTS_FILE
WEIGHTS_FILE, ANNOTATION_FILE, CONFIG_FILE = (
    "model.safetensors",
    "annotation.safetensors",
    "config.json",
)
log = logging.getLogger(__name__)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device to use.

    Parameters
    ----------
    device
        ``"auto"`` (CUDA when available, else CPU) or any torch device name.

    Returns
    -------
    torch.device
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def expression(adata: ad.AnnData, layer: str | None = None) -> tuple[Any, str]:
    """The expression matrix the model reads: ``X`` or a layer, as stored.

    Parameters
    ----------
    adata
        The data (dense, sparse or backed; never densified here).
    layer
        A layer name, or ``None`` for ``X``.

    Returns
    -------
    matrix : array-like
        The matrix itself.
    name : str
        Where it was found, for messages (``"X"`` or ``"layers['counts']"``).

    Raises
    ------
    ValueError
        Empty data, or a layer that ``adata`` lacks.
    """
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(
            f"the AnnData is empty ({adata.n_obs} cells x {adata.n_vars} genes); "
            "pass data with at least a few cells and genes"
        )
    if layer is None:
        return adata.X, "X"
    if layer not in adata.layers:
        raise ValueError(f"layer '{layer}' not in the AnnData (layers: {list(adata.layers)})")
    return adata.layers[layer], f"layers['{layer}']"


def covariate_design(
    obs: pd.DataFrame, keys: Sequence[str]
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The covariate matrix of the paper's eq. 2 from ``obs`` columns.

    Parameters
    ----------
    obs
        The cells' annotations.
    keys
        Columns to use: categorical ones become one-hot columns, numeric ones a z-scored
        column.

    Returns
    -------
    design : numpy.ndarray
        Cells x columns, float32.
    spec : list of dict
        Per key, how it was encoded (its categories, or its mean and standard deviation),
        to encode new data the same way.

    Raises
    ------
    ValueError
        A key that is not a column, or a column with missing values.
    """
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

    A nonlinear encoder maps each cell's expression ``y`` to factors ``f(y)``; a linear
    decoder ``W`` (genes x factors) reconstructs it, ``y ≈ W f(y) (+ Φ x)``. The factors
    are, in this order: one *annotated* factor per gene set, whose decoder column is
    penalised (L1) only on the genes outside its set; ``n_sparse`` *sparse* factors
    (L1 on every gene); ``n_dense`` *dense* factors (no L1). A group lasso on the columns
    switches whole factors off. Training (:meth:`train`) is stochastic proximal gradient.

    Parameters
    ----------
    adata
        Log-normalised expression, cells x genes: dense, scipy sparse or an on-disk
        (backed) AnnData, streamed batch by batch and never densified whole. It is kept
        as the training data and never modified.
    gene_sets
        ``{term: [genes]}``, e.g. from :func:`.genesets.read_gmt`; genes absent from
        ``adata.var_names`` are ignored. Give either ``gene_sets`` or ``mask``; with
        neither, the annotation is read from ``adata.varm['geneset_mask']`` and
        ``adata.uns['geneset_terms']`` (the workflow's prepared data), or the model has
        unannotated factors only.
    mask
        The annotation as a genes x terms matrix (non-zero: the gene is in the set), in
        the order of ``adata.var_names``; dense, sparse or a DataFrame indexed by gene
        names whose columns are the terms.
    terms
        The term names of a matrix ``mask``, one per column (a DataFrame carries its own).
    n_sparse
        Number of unannotated sparse factors, named ``sparse_0``, ``sparse_1``, ...
    n_dense
        Number of unannotated dense factors, named ``dense_0``, ... (the dense factors of
        f-scLVM: they take up variation that no gene set explains).
    hidden
        Widths of the encoder's hidden layers (the paper's: two of 400).
    dropout
        Dropout rate of the encoder's hidden layers during training.
    covariates
        ``obs`` columns modelled by the linear term ``Φ x`` of the paper's eq. 2 (one-hot
        for categorical columns, z-scored for numeric ones), e.g. a batch key.
    min_genes
        Terms with fewer than this many genes in the data are dropped.
    max_genes
        Terms with more than this many genes in the data are dropped (``None``: no bound).
    layer
        Read the expression from ``adata.layers[layer]`` instead of ``adata.X``.
    center
        Subtract each gene's mean over the training cells from every cell, in the input
        and the reconstruction target, as the authors' notebooks centre ``adata.X``; the
        means are stored with the model and applied to new data.
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    seed
        Seeds the network's initial weights and, unless :meth:`train` is given another,
        the training (batch order, dropout, validation split).

    Raises
    ------
    ValueError
        Empty data, NaN or infinite values (naming the first bad cell), a missing layer or
        covariate, a mask whose shape or genes do not match the data, gene sets that share
        no gene with the data, or no factor at all.

    See Also
    --------
    interpretable_ae.training.TrainConfig : the training options.
    interpretable_ae.genesets.read_gmt : gene sets from a GMT file.

    Examples
    --------
    >>> from interpretable_ae import InterpretableAutoencoder
    >>> from interpretable_ae.simulate import simulate_counts
    >>> adata, gene_sets = simulate_counts(n_cells=200, n_genes=100, n_sets=6, set_size=(5, 12))
    >>> model = InterpretableAutoencoder(adata, gene_sets, n_dense=1, hidden=(32,), seed=0)
    >>> model.train(epochs=3, progress=False).is_trained
    True
    >>> model.get_latent_representation().shape
    (200, 7)
    >>> model.factor_names[-1]
    'dense_0'
    >>> model.terms_by_norm().index[0] in gene_sets  # the term the decoder uses most
    True
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
        center: bool = True,
        device: str | torch.device = "auto",
        seed: int = 0,
    ) -> None:
        matrix, where = expression(adata, layer)
        # fail early on NaN/Inf (one streamed pass over the stored values)
        CellData(
            matrix, np.arange(adata.n_vars), cell_names=adata.obs_names, where=where
        ).statistics()
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
                "center": bool(center),
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
            + [unannotated_name("sparse", i) for i in range(arch["n_sparse"])]
            + [unannotated_name("dense", i) for i in range(arch["n_dense"])]
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
        self._history = TrainHistory()
        self.final_loss = float("nan")
        self.adata: ad.AnnData | None = None
        self.gene_means: np.ndarray | None = None  # set by training when centring

    # ------------------------------------------------------------------ training
    def train(
        self,
        config: TrainConfig | None = None,
        /,
        *,
        progress: bool = True,
        on_epoch_end: Callable[[int], None] | None = None,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int | None = 1,
        checkpoint_seconds: float | None = None,
        **options: Any,
    ) -> InterpretableAutoencoder:
        """Fit by stochastic proximal gradient on the model's AnnData.

        Loss = mean over cells of ``||y - ŷ||²`` + λ0 · mean ``||f(y)||²`` (``y`` centred
        when the model centres); after each Adam step the decoder gets the prox of the
        penalty with steps ``lr * λ`` (:mod:`.prox`). At the end every factor takes the
        sign of :func:`.signs.factor_signs` (exactly: the decoder column and the encoder's
        output unit flip together), so that a higher value means higher expression of
        its genes. The AnnData is not modified: see :meth:`write_results`.

        Parameters
        ----------
        config
            A ready :class:`.training.TrainConfig`; or leave it out and pass ``options``.
        progress
            Show a progress bar (tqdm) over the epochs.
        on_epoch_end
            Called as ``on_epoch_end(epoch)`` after each epoch, outside the timing.
        checkpoint_dir
            Save the training state here; a rerun with the same data and options resumes
            from it, bit-identical to an uninterrupted run. Removed when training ends.
        checkpoint_every
            Save every this many epochs (``None``: only by ``checkpoint_seconds``).
        checkpoint_seconds
            Save after the first epoch that ends this long after the last save.
        **options
            The fields of :class:`.training.TrainConfig` (``epochs``, ``batch_size``,
            ``lr``, ``lambda0`` ... ``lambda3``, ``val_fraction``, ``patience``, ``seed``,
            ``warmup_epochs``, ``lr_decay``, ``decoder_solve``, ``precision``), with its
            defaults (the paper's: lr 1e-3, batch 62, λ0 0.1, λ1 0.93, λ3 0.57) and
            checks; ``seed`` defaults to the model's.

        Returns
        -------
        InterpretableAutoencoder
            ``self``, trained.

        Raises
        ------
        ValueError
            An unknown or invalid option, both a config and options, or a model loaded
            without data.

        Examples
        --------
        >>> from interpretable_ae.simulate import simulate_counts
        >>> adata, sets = simulate_counts(n_cells=120, n_genes=60, n_sets=4, set_size=(5, 10))
        >>> model = InterpretableAutoencoder(adata, sets, hidden=(16,))
        >>> model.train(epochs=2, batch_size=32, lambda1=0.5, progress=False).history.shape
        (2, 4)
        """
        if self.adata is None:
            raise ValueError("this model has no training data; load it with an AnnData")
        if config is None:
            config = training_config(**({"seed": self.seed} | options))
        elif options:
            raise ValueError("pass either a TrainConfig or keyword options, not both")
        checkpoint = None
        if checkpoint_dir is not None:
            checkpoint = Checkpointer(checkpoint_dir, checkpoint_every, checkpoint_seconds)
        data = self._data(self.adata, centred=False)
        stats = data.statistics()
        self.gene_means = None
        if self.arch.get("center", False):
            if stats.looks_centred():
                log.info(
                    "the data look centred already (every gene's mean is 0 within 1e-4 of "
                    "its root mean square); centring them again changes nothing"
                )
            self.gene_means = stats.centring_means()
            data = data.with_means(self.gene_means)
        cov = self._covariates(self.adata)
        weights = l1_weights(
            torch.from_numpy(self.annotation.toarray()).to(self.device),
            self.arch["n_sparse"],
            self.arch["n_dense"],
            config.lambda1,
            config.lambda2,
        )
        identity = {
            "genes": list(self.genes),
            "terms": self.terms,
            "arch": self.arch,
            "covariates": self.covariates,
            "n_obs": data.n_obs,
            "device": str(self.device),  # bit-identical resumes need the same device
            "mean": array_digest(stats.mean),
            "rms": array_digest(stats.rms),
        }
        self._history = train_model(
            self.module, data, weights, config, cov, progress, on_epoch_end, checkpoint, identity
        )
        self._fix_signs()
        self.final_loss, _ = evaluate(self.module, data, config.lambda0, cov)
        self.config = config
        if checkpoint is not None:
            checkpoint.clear()
        return self

    def _fix_signs(self) -> None:
        """Give every factor the sign of :func:`.signs.factor_signs` (exactly: see
        :func:`.module.flip_factors_`)."""
        flip_factors_(
            self.module, torch.from_numpy(factor_signs(self.decoder_weights, self.annotation))
        )

    @property
    def is_trained(self) -> bool:
        """Whether the model has been trained (here, or before it was saved)."""
        return self.config is not None

    @property
    def history(self) -> pd.DataFrame:
        """Per epoch: ``train_loss``, ``val_loss`` (NaN without validation), ``seconds``
        (wall time, not saved with the model) and ``n_active`` factors; ``attrs`` holds
        ``best_epoch`` and ``stopped_early``."""
        h = self._history
        n = len(h.train_loss)

        def column(values: list[float]) -> list[float]:
            return list(values) if len(values) == n else [float("nan")] * n

        table = pd.DataFrame(
            {
                "train_loss": h.train_loss,
                "val_loss": column(h.val_loss),
                "seconds": column(h.seconds),
                "n_active": h.n_active,
            },
            index=pd.RangeIndex(n, name="epoch"),
        )
        table.attrs = {"best_epoch": h.best_epoch, "stopped_early": h.stopped_early}
        return table

    # ------------------------------------------------------------------ results
    @property
    def decoder_weights(self) -> np.ndarray:
        """The decoder W, genes x factors."""
        return self.module.decoder_weight.detach().cpu().numpy()

    def get_loadings(self) -> pd.DataFrame:
        """The decoder W, the factors' gene weights.

        Returns
        -------
        pandas.DataFrame
            Genes x factors, indexed by gene, columns named by factor.
        """
        return pd.DataFrame(
            self.decoder_weights,
            index=pd.Index(self.genes, name="gene"),
            columns=pd.Index(self.factor_names, name="factor"),
        )

    @property
    def active(self) -> np.ndarray:
        """Per factor: is its decoder column not exactly zero (group lasso kept it)."""
        return (self.decoder_weights != 0).any(axis=0)

    def factor_table(self) -> pd.DataFrame:
        """What each factor is.

        Returns
        -------
        pandas.DataFrame
            One row per factor, indexed by name: ``kind`` (annotated, sparse, dense),
            ``active`` (kept by group lasso), ``weight_norm`` (L2 norm of its decoder
            column) and ``n_genes_annotated`` (its gene set's genes in the data).
        """
        n_ann = np.zeros(len(self.factor_names), dtype=np.int64)
        n_ann[: len(self.terms)] = self.annotation.getnnz(axis=0)
        return pd.DataFrame(
            {
                "kind": pd.Categorical(self.kinds, categories=list(KINDS)),
                "active": self.active,
                "weight_norm": np.linalg.norm(self.decoder_weights, axis=0).astype(np.float64),
                "n_genes_annotated": n_ann,
            },
            index=pd.Index(self.factor_names, name="factor"),
        )

    def terms_by_norm(self, kind: str | None = "annotated") -> pd.Series:
        """Decoder column norms, largest first: the terms a model uses most.

        Parameters
        ----------
        kind
            ``"annotated"``, ``"sparse"``, ``"dense"``, or ``None`` for every factor.

        Returns
        -------
        pandas.Series
            L2 norm of each factor's decoder column, indexed by factor name, descending
            (ties keep the factor order).
        """
        table = self.factor_table()
        if kind is not None:
            table = table[table["kind"] == kind]
        return table["weight_norm"].sort_values(ascending=False, kind="stable")

    def active_terms(self, kind: str | None = "annotated") -> list[str]:
        """Names of the factors that group lasso kept (decoder column not all zero).

        Parameters
        ----------
        kind
            ``"annotated"``, ``"sparse"``, ``"dense"``, or ``None`` for every factor.

        Returns
        -------
        list of str
            The factor names, in factor order.
        """
        table = self.factor_table()
        keep = table["active"] if kind is None else table["active"] & (table["kind"] == kind)
        return table.index[keep].tolist()

    def term_genes(self, term: str) -> pd.DataFrame:
        """The genes of a factor, largest absolute weight first.

        Parameters
        ----------
        term
            A factor name (a term, ``sparse_<i>`` or ``dense_<i>``).

        Returns
        -------
        pandas.DataFrame
            One row per gene with a non-zero weight or in the term's gene set, indexed by
            gene: ``weight``, ``in_annotation`` and ``gained`` (a non-zero weight outside
            the gene set: what the factor learned beyond the annotation).

        Raises
        ------
        ValueError
            ``term`` is not a factor of the model.
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

    def _gene_index(self, adata: ad.AnnData) -> np.ndarray:
        """Position in ``adata`` of each model gene (-1: missing); warns about missing ones."""
        if adata.var_names.equals(self.genes):
            return np.arange(len(self.genes))
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
                "data and are set to "
                + ("their training mean" if self.gene_means is not None else "0"),
                stacklevel=4,
            )
        return idx

    def _data(self, adata: ad.AnnData, centred: bool = True) -> CellData:
        """``adata``'s expression in the model's gene order, streamed batch by batch; genes
        it lacks read as 0 and, when ``centred``, as their training mean (0 after
        centring). The one way data enter the model: training, latents and loaded models
        alike."""
        matrix, where = expression(adata, self.arch["layer"])
        idx = self._gene_index(adata)
        means = None
        if centred and self.gene_means is not None:
            means = np.where(idx >= 0, self.gene_means, 0.0).astype(np.float32)
        return CellData(matrix, idx, means=means, cell_names=adata.obs_names, where=where)

    def _covariates(self, adata: ad.AnnData) -> torch.Tensor | None:
        if not self.covariates:
            return None
        design, _ = covariate_design(adata.obs, [c["key"] for c in self.covariates])
        return torch.from_numpy(design).to(self.device)

    def get_latent_representation(
        self, adata: ad.AnnData | None = None, batch_size: int = EVAL_ROWS
    ) -> np.ndarray:
        """The factors' values of every cell, ``f(y)``, with dropout off.

        Parameters
        ----------
        adata
            New data, or ``None`` for the training data. Its genes may be in another order
            or partly missing (a warning says how many; a missing gene reads as its
            training mean); it is centred with the training means.
        batch_size
            Cells encoded at a time (data are streamed, never densified whole).

        Returns
        -------
        numpy.ndarray
            Cells x factors, float32, columns in the order of :attr:`factor_names`.

        Raises
        ------
        ValueError
            No data (a model loaded without any), no gene in common, or NaN/Inf values.
        """
        adata = self.adata if adata is None else adata
        if adata is None:
            raise ValueError("pass an AnnData: this model was loaded without data")
        out = np.empty((adata.n_obs, len(self.factor_names)), dtype=np.float32)
        for a, b, rows in self.latent_chunks(adata, batch_size):
            out[a:b] = rows
        return out

    @torch.no_grad()
    def latent_chunks(
        self, adata: ad.AnnData | None = None, batch_size: int = EVAL_ROWS
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(a, b, f(y) of cells a..b)`` in order, ``batch_size`` cells at a time: the
        latent representation without holding all of it (e.g. written to a file as it
        comes). Same values as :meth:`get_latent_representation`.

        Parameters
        ----------
        adata
            The cells (default: the training data).
        batch_size
            Cells per chunk.

        Yields
        ------
        tuple
            ``(a, b, array of shape (b - a, n_factors))``, float32.
        """
        adata = self.adata if adata is None else adata
        if adata is None:
            raise ValueError("pass an AnnData: this model was loaded without data")
        data = self._data(adata)
        self.module.eval()
        for a, b, xb in data.chunks(size=batch_size, device=self.device):
            if not torch.isfinite(xb).all():
                rows = np.flatnonzero(~torch.isfinite(xb).all(dim=1).cpu().numpy())
                raise ValueError(
                    f"the data have NaN/Inf values (first cell: '{adata.obs_names[a + rows[0]]}'); "
                    "remove those cells or impute"
                )
            yield a, b, self.module.encoder(xb).cpu().numpy()

    def params(self) -> dict[str, Any]:
        """The architecture and training options, flat (for tables and the factor file).

        Returns
        -------
        dict
            Scalars only: lists are joined with commas.
        """
        out: dict[str, Any] = {k: v for k, v in self.arch.items() if k != "layer"}
        out["center"] = bool(self.arch.get("center", False))
        out["hidden"] = ",".join(map(str, self.arch["hidden"]))
        out["covariates"] = ",".join(c["key"] for c in self.covariates)
        out["n_annotated"] = len(self.terms)
        if self.config is not None:
            out |= self.config.as_dict()
        return out

    def summary(self) -> dict[str, Any]:
        """What training did.

        Returns
        -------
        dict
            ``final_loss``, ``epochs_run``, ``stopped_early`` and ``device`` (no wall time,
            so that a saved model's bytes depend on the training only).
        """
        return {
            "final_loss": float(self.final_loss),
            "epochs_run": len(self._history.train_loss),
            "stopped_early": bool(self._history.stopped_early),
            "device": str(self.device),
        }

    def write_results(
        self, adata: ad.AnnData | None = None, key_added: str = KEY, *, latent: bool = True
    ) -> None:
        """Write the results into an AnnData, scanpy-style.

        Parameters
        ----------
        adata
            Where to write; ``None`` for the training data.
        key_added
            Names the entries: ``obsm['X_<key_added>']`` (cells x factors),
            ``varm['W_<key_added>']`` (genes x factors; genes of ``adata`` that the model
            lacks get 0) and ``uns[key_added]`` (factor names, kinds, active flags,
            weight norms, hyper-parameters). Two models with different keys share one
            AnnData.
        latent
            Also write the latent values (``obsm``); without it only ``varm`` and ``uns``.

        Examples
        --------
        >>> model.write_results(adata, key_added="iae")  # doctest: +SKIP
        >>> sc.pl.embedding(adata, basis="X_iae", components="1,2")  # doctest: +SKIP
        """
        adata = self.adata if adata is None else adata
        if adata is None:
            raise ValueError("pass an AnnData: this model was loaded without data")
        if latent:
            adata.obsm[f"X_{key_added}"] = self.get_latent_representation(adata)
        weights = np.zeros((adata.n_vars, len(self.factor_names)), dtype=np.float32)
        where = adata.var_names.get_indexer(self.genes)
        weights[where[where >= 0]] = self.decoder_weights[where >= 0]
        adata.varm[f"W_{key_added}"] = weights
        table = self.factor_table()
        adata.uns[key_added] = {
            "factor_names": list(self.factor_names),
            "kinds": list(self.kinds),
            "active": table["active"].to_numpy(),
            "weight_norm": table["weight_norm"].to_numpy(),
            "params": {k: ("" if v is None else v) for k, v in self.params().items()},
            **self.summary(),
        }

    def to_anndata(self, adata: ad.AnnData | None = None) -> ad.AnnData:
        """The results as an AnnData of their own, cells x factors.

        Parameters
        ----------
        adata
            The cells; ``None`` for the training data.

        Returns
        -------
        anndata.AnnData
            ``X`` the latent values, ``obs`` copied from ``adata``, ``var`` the
            :meth:`factor_table`, ``varm['gene_weights']`` factors x genes (gene names in
            ``uns['gene_names']``), ``uns['params']`` and ``uns['summary']``.
        """
        adata = self.adata if adata is None else adata
        if adata is None:
            raise ValueError("pass an AnnData: this model was loaded without data")
        out = ad.AnnData(
            X=self.get_latent_representation(adata).astype(np.float32),
            obs=adata.obs.copy(),
            var=self.factor_table(),
        )
        out.varm["gene_weights"] = np.ascontiguousarray(self.decoder_weights.T)
        out.uns["gene_names"] = np.asarray(list(self.genes), dtype=object)
        out.uns["params"] = {k: ("" if v is None else v) for k, v in self.params().items()}
        out.uns["summary"] = self.summary()
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """Save the model to a directory.

        Weights and annotation are written as safetensors, the rest as JSON: no pickle,
        and no wall time, so the same training gives the same bytes.

        Parameters
        ----------
        path
            The directory (created if needed).
        overwrite
            Replace a model saved there before.

        Raises
        ------
        ValueError
            ``path`` holds a saved model and ``overwrite`` is false.
        """
        path = Path(path)
        if (path / CONFIG_FILE).exists() and not overwrite:
            raise ValueError(f"{path} already holds a saved model; pass overwrite=True")
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        if self.gene_means is not None:
            state[MEANS_KEY] = torch.from_numpy(self.gene_means)
        save_file(state, str(path / WEIGHTS_FILE))
        coo = self.annotation.tocoo()
        save_file(
            {
                "rows": torch.from_numpy(coo.row.astype(np.int64)),
                "cols": torch.from_numpy(coo.col.astype(np.int64)),
            },
            str(path / ANNOTATION_FILE),
        )
        history = {k: v for k, v in self._history.as_dict().items() if k != "seconds"}
        config = {
            "format": 3,
            "genes": list(self.genes),
            "terms": self.terms,
            "arch": self.arch,
            "covariates": self.covariates,
            "seed": self.seed,
            "train": None if self.config is None else self.config.as_dict(),
            "history": history,
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
        """Load a model saved by :meth:`save`.

        Parameters
        ----------
        path
            The directory :meth:`save` wrote.
        adata
            Becomes the model's data (for :meth:`get_latent_representation` and
            :meth:`write_results` without arguments); its genes may be in another order or
            partly missing.
        device
            As for the constructor.

        Returns
        -------
        InterpretableAutoencoder
            The model, trained as it was saved.

        Raises
        ------
        ValueError
            ``path`` holds no saved model, or ``adata`` shares no gene with it.

        Examples
        --------
        >>> model.save("model_dir")  # doctest: +SKIP
        >>> model = InterpretableAutoencoder.load("model_dir", adata)  # doctest: +SKIP
        """
        path = Path(path)
        if not (path / CONFIG_FILE).is_file():
            raise ValueError(f"{path}: no {CONFIG_FILE}; is this a directory written by save()?")
        config = json.loads((path / CONFIG_FILE).read_text())
        genes = config["genes"]
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
            {"center": False} | config["arch"],  # format 2 (no centring) or 3
            config["covariates"],
            device,
            config["seed"],
        )
        state = load_file(str(path / WEIGHTS_FILE), device=str(obj.device))
        means = state.pop(MEANS_KEY, None)
        obj.gene_means = None if means is None else means.cpu().numpy()
        obj.module.load_state_dict(state)
        obj.module.eval()
        obj.config = TrainConfig(**config["train"]) if config["train"] else None
        history = {k: v for k, v in config["history"].items() if k != "seconds"}
        obj._history = TrainHistory(**history)
        obj.final_loss = config["final_loss"]
        if adata is not None:
            obj._gene_index(adata)  # refuse unusable data now, warn about missing genes
        obj.adata = adata
        return obj

    def __repr__(self) -> str:
        n = len(self.terms), self.arch["n_sparse"], self.arch["n_dense"]
        status = f"trained {len(self._history.train_loss)} epochs" if self.config else "untrained"
        return (
            f"InterpretableAutoencoder({len(self.genes)} genes; {n[0]} annotated, {n[1]} sparse, "
            f"{n[2]} dense factors; {status}; device {self.device})"
        )


ARCHITECTURE_OPTIONS = (
    "n_sparse",
    "n_dense",
    "hidden",
    "dropout",
    "covariates",
    "layer",
    "center",
    "device",
)


def training_config(**options: Any) -> TrainConfig:
    """A :class:`.training.TrainConfig` from keyword options.

    Parameters
    ----------
    **options
        Fields of :class:`.training.TrainConfig`.

    Returns
    -------
    TrainConfig
        The checked options.

    Raises
    ------
    ValueError
        An unknown option (the message lists the known ones) or an invalid value.

    Examples
    --------
    >>> training_config(epochs=80, lr=1e-3).epochs
    80
    """
    known = TrainConfig.option_names()
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown training option(s) {unknown}; known: {', '.join(known)}")
    return TrainConfig(**options)
