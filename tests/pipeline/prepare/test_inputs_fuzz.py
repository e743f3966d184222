"""A user's h5ad and its obs under generated input (hypothesis): the dataset reader
(``source: h5ad``), the pre-fit checks and the sample design give a valid result or one
error line naming the file or the key; never another exception.

- h5ad files written from generated AnnData: obs columns of any kind (text of any Unicode,
  blanks, NaN, numbers, booleans, categoricals), missing or odd keys, condition classes
  that are one, two or many, ``condition_positive`` present or not, cells dropped or not;
  X dense or sparse with counts, log values, negatives, NaN and infinities;
- damaged h5ad files: a valid file truncated, or with bytes overwritten;
- prepared data and what the later steps ask of them (CV folds, figure terms and
  patterns, covariates, the donor design) for :func:`check_ready_to_fit`, and obs for
  :func:`make_design`.

The regression cases found by the fuzzing, and kept, are in ``test_datasets.py``,
``test_checks.py`` and ``tests/pipeline/test_samples.py``.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import assume, event, given
from hypothesis import strategies as st

from helpers.fuzz import FUZZ, assert_one_line, kind
from iae_pipeline.prepare.checks import check_ready_to_fit
from iae_pipeline.prepare.datasets import CONDITION, load_dataset
from iae_pipeline.samples import make_design
from interpretable_ae.conventions import TERMS_KEY

pytestmark = pytest.mark.slow

_label = st.one_of(
    st.sampled_from(["ctrl", "stim", "A", "B", "C", "", " ", "nan", "0", "1"]),
    st.text(max_size=6),
)
_cell = st.one_of(_label, _label, st.none(), st.just(float("nan")), st.integers(-2, 3))


@st.composite
def obs_column(draw: st.DrawFn, n: int) -> pd.Series:
    """One obs column of ``n`` cells: text, numbers, booleans or a categorical."""
    style = draw(st.sampled_from(["text", "text", "category", "number", "bool", "mixed"]))
    if style == "number":
        values = draw(st.lists(st.floats(allow_infinity=False), min_size=n, max_size=n))
        return pd.Series(values, dtype=float)
    if style == "bool":
        return pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if style == "mixed":
        values = draw(st.lists(_cell, min_size=n, max_size=n))
        return pd.Series([v if v is None or isinstance(v, float) else str(v) for v in values])
    values = draw(st.lists(st.one_of(_label, _label, _label, st.none()), min_size=n, max_size=n))
    series = pd.Series(values, dtype=object)
    return series.astype("category") if style == "category" else series


@st.composite
def expression(draw: st.DrawFn, n: int, genes: int) -> np.ndarray | sp.csr_matrix:
    """X: counts, log values, negatives, centred values, NaN or infinities; dense or sparse."""
    style = draw(st.sampled_from(["counts", "counts", "log", "centred", "any"]))
    shape = (n, genes)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    if style == "counts":
        X = rng.poisson(2.0, size=shape).astype(np.float32)
    elif style == "log":
        X = np.log1p(rng.poisson(2.0, size=shape)).astype(np.float32)
    elif style == "centred":
        X = rng.normal(size=shape)
        X = (X - X.mean(axis=0)).astype(np.float32)
    else:
        values = st.floats(width=32, allow_nan=True, allow_infinity=True)
        X = np.array(draw(st.lists(values, min_size=n * genes, max_size=n * genes)))
        X = X.reshape(shape).astype(np.float32)
    return sp.csr_matrix(X) if draw(st.booleans()) else X


@st.composite
def condition_column(draw: st.DrawFn, n: int) -> pd.Series:
    """A condition as users label it: two or three classes, some cells maybe unlabelled."""
    size = draw(st.sampled_from([2] * 6 + [1, 3]))
    classes = draw(st.lists(_label, min_size=size, max_size=size, unique=True))
    values = draw(st.lists(st.sampled_from(classes), min_size=n, max_size=n))
    unlabelled = st.lists(st.integers(0, max(n - 1, 0)), max_size=2)
    for i in (
        draw(st.sampled_from([st.just([])] * 3 + [unlabelled]).flatmap(lambda s: s)) if n else []
    ):
        values[i] = draw(st.sampled_from([None, "", float("nan")]))
    series = pd.Series(values, dtype=object)
    return series.astype("category") if draw(st.booleans()) else series


@st.composite
def user_h5ad(draw: st.DrawFn) -> tuple[ad.AnnData, dict]:
    """An AnnData as a user might hand it over, and the dataset's config entry."""
    n = draw(st.sampled_from(list(range(2, 13)) * 4 + [0, 1]))
    genes = draw(st.sampled_from([1, 2, 3, 4] * 6 + [0]))
    obs = pd.DataFrame(index=[f"c{i}" for i in range(n)])
    if draw(st.sampled_from([True] * 9 + [False])):
        obs["cond"] = draw(condition_column(n)).to_numpy()
    if draw(st.sampled_from([True] * 9 + [False])):
        obs["type"] = draw(obs_column(n)).to_numpy()
    for key in draw(st.lists(st.sampled_from(["donor", "x"]), unique=True)):
        obs[key] = draw(obs_column(n)).to_numpy()
    adata = ad.AnnData(draw(expression(n, genes)), obs=obs)
    adata.var_names = [f"G{i}" for i in range(genes)]
    dataset = {
        "name": "mine",
        "source": "h5ad",
        "condition_key": draw(st.sampled_from(["cond"] * 8 + ["type", "nope", ""])),
        "cell_type_key": draw(st.sampled_from(["type"] * 8 + ["cond", "nope"])),
        "drop_unlabelled": draw(st.booleans()),
        "data_type": draw(st.sampled_from(["auto", "counts", "lognorm", "centred"])),
    }
    present = sorted(set(map(str, obs["cond"]))) if "cond" in obs and n else ["x"]
    if draw(st.booleans()):
        dataset["condition_positive"] = draw(
            st.lists(st.one_of(st.sampled_from(present), _label), min_size=1, max_size=2)
        )
    return adata, dataset


def _write(adata: ad.AnnData, path: Path) -> None:
    """Write, or reject the example where anndata itself cannot write such obs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adata.write_h5ad(path)
    except Exception:  # anndata refuses e.g. mixed-type columns: not a file a user can have
        assume(False)


def _outcome(path: Path, dataset: dict) -> str:
    """Read ``path`` as a user's dataset: what happened (``read`` or ``refused: ...``), or an
    AssertionError where the reader broke its promise."""
    try:
        adata, data_type = load_dataset(dict(dataset, path=str(path)), {"h5ad": str(path)})
    except ValueError as err:
        assert_one_line(err)
        assert str(path) in str(err) or "data_type" in str(err), str(err)
        return f"refused: {kind(err)}"
    assert adata.n_obs >= 2 and adata.n_vars >= 1
    assert list(adata.obs[CONDITION].cat.categories) == sorted(
        set(adata.obs[CONDITION].astype(str))
    )
    assert adata.obs[CONDITION].nunique() == 2
    assert data_type in ("counts", "lognorm", "centred")
    return "read"


def _read(path: Path, dataset: dict) -> None:
    event(_outcome(path, dataset))


#: seconds a damaged file's read may take before it counts as a libhdf5 hang
HANG_SECONDS = 30


def _read_in_child(path: Path, dataset: dict) -> None:
    """:func:`_read` in a forked child, killed after :data:`HANG_SECONDS`. Some damaged
    files make libhdf5 loop forever inside its C code (a corrupt global heap: it has no
    checksum), where no Python code can stop it; such a read is an event, not a failure
    (config/README.md says so: a job on such a file ends at its time limit). Any other
    outcome is checked as in :func:`_read`."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's cleanup
        os.close(reader)
        try:
            message = "ok " + _outcome(path, dataset)
        except BaseException as err:  # noqa: BLE001 - every failure goes to the parent
            message = f"failed {type(err).__name__}: {err}"
        os.write(writer, message.encode()[:60000])
        os._exit(0)
    os.close(writer)
    deadline = time.monotonic() + HANG_SECONDS
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(reader)
            event("hung inside libhdf5, killed")
            return
        time.sleep(0.005)
    with os.fdopen(reader, "rb") as pipe:
        message = pipe.read().decode()
    assert message.startswith("ok "), message
    event(message[3:])


@FUZZ
@given(case=user_h5ad())
def test_a_users_h5ad_is_read_or_refused_with_one_line(case):
    adata, dataset = case
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "mine.h5ad"
        _write(adata, path)
        _read(path, dataset)


@pytest.fixture(scope="module")
def valid_h5ad_bytes() -> bytes:
    rng = np.random.default_rng(0)
    obs = pd.DataFrame(
        {"cond": ["ctrl", "stim"] * 10, "type": ["T", "B", "NK", "T"] * 5},
        index=[f"c{i}" for i in range(20)],
    )
    adata = ad.AnnData(sp.csr_matrix(rng.poisson(1.0, (20, 6)).astype(np.float32)), obs=obs)
    with tempfile.TemporaryDirectory() as d:
        adata.write_h5ad(Path(d) / "ok.h5ad")
        return (Path(d) / "ok.h5ad").read_bytes()


@FUZZ
@given(data=st.data())
def test_a_damaged_h5ad_is_refused_with_one_line(valid_h5ad_bytes, data):
    raw = bytearray(valid_h5ad_bytes)
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 8), label="edits")):
            at = data.draw(st.integers(0, len(raw) - 1), label="at")
            raw[at] = data.draw(st.integers(0, 255), label="byte")
    dataset = {"name": "mine", "source": "h5ad", "condition_key": "cond", "cell_type_key": "type"}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "mine.h5ad"
        path.write_bytes(bytes(raw))
        _read_in_child(path, dataset)


@st.composite
def prepared_and_needs(draw: st.DrawFn) -> tuple[ad.AnnData, dict]:
    """Prepared-like data (two conditions, cell types, samples, terms) and what the later
    steps will ask of it."""
    n = draw(st.integers(2, 30))
    obs = pd.DataFrame(index=[f"c{i}" for i in range(n)])
    obs[CONDITION] = pd.Categorical(draw(st.lists(st.sampled_from(["ctrl", "stim"]),
                                                  min_size=n, max_size=n)))  # fmt: skip
    obs["cell_type"] = pd.Categorical(draw(st.lists(_label, min_size=n, max_size=n)))
    donors = st.lists(st.sampled_from(["d1", "d2", "d3", "d4"]), min_size=n, max_size=n)
    if draw(st.sampled_from([True] * 3 + [False])):  # a complete sample column, mostly
        obs["donor"] = draw(donors)
    for key in draw(st.lists(st.sampled_from(["donor", "group", "age"]), unique=True)):
        obs[key] = draw(obs_column(n)).to_numpy()
    X = draw(expression(n, 3))
    adata = ad.AnnData(X, obs=obs)
    terms = draw(st.lists(st.sampled_from(["REACTOME_IFN", "HALLMARK_HYPOXIA", "Interferon "
                                            "Signaling", "DENSE_0"]), min_size=1, unique=True))  # fmt: skip
    adata.uns[TERMS_KEY] = np.array(terms, dtype=object)
    term = st.one_of(st.sampled_from(["REACTOME_IFN", "interferon signaling", "X"]), _label)
    pattern = st.one_of(st.sampled_from(["IFN", "(", "[a-", "INTERFERON|HYPOXIA", "*"]), _label)
    figures = {
        "fig1": {"terms": draw(st.lists(term, max_size=2))},
        "fig2": {"terms": draw(st.one_of(pattern, st.lists(term, max_size=3)))},
        "fig3": {
            "terms": draw(st.lists(term, max_size=2)),
            "cell_types": draw(st.lists(_label, max_size=2)),
            "group_key": draw(st.sampled_from(["group", "donor", "nope"])),
            "groups": draw(st.lists(_label, max_size=2)),
        },
    }
    samples = None
    if draw(st.booleans()):
        samples = {
            "sample_key": draw(st.sampled_from(["donor"] * 4 + ["group", "nope"])),
            "paired": draw(st.sampled_from([True, False, None])),
            "control": draw(st.sampled_from([None, "ctrl", "stim", "other"])),
        }
    needs = {
        "dataset": "mine",
        "source": "mine.h5ad",
        "cv_folds": draw(st.integers(2, 6)),
        "figures": figures,
        "covariates": {"ae": draw(st.lists(st.sampled_from(["age", "donor", "nope"])))},
        "samples": samples,
    }
    return adata, needs


@FUZZ
@given(case=prepared_and_needs())
def test_the_pre_fit_checks_pass_or_refuse_with_one_line(case):
    prepared, needs = case
    try:
        check_ready_to_fit(prepared, needs)
    except ValueError as err:
        assert_one_line(err)
        assert any(k in str(err) for k in ("mine.h5ad", "figures.", "models.ae")), str(err)
        event(f"refused: {kind(err)}")
    else:
        event("ready")


@FUZZ
@given(case=prepared_and_needs(), test=st.sampled_from(["t", "wilcoxon"]))
def test_the_sample_design_is_made_or_refused_with_one_line(case, test):
    prepared, needs = case
    samples = needs["samples"] or {"sample_key": "donor", "paired": True, "control": None}
    try:
        design = make_design(prepared.obs, **samples, test=test, where="mine.h5ad")
    except ValueError as err:
        assert_one_line(err, "mine.h5ad")
        event(f"refused: {kind(err)}")
    else:
        assert {design.control, design.case} == set(prepared.obs[CONDITION].astype(str))
        event("design")
