"""Validate the workflow's config and resolve per-dataset settings.

Errors are one line that names the key, e.g.
``config error: models.ae.options.epochs: 'abc' is not of type 'integer'``, so the
Snakefile can stop before any job runs and before anything is written.
"""

from __future__ import annotations

import copy
import posixpath
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

#: what ``str.splitlines`` takes for a line break (a log reader splits there)
LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def one_line_text(text: str) -> str:
    r"""``text`` with every line-break character escaped (``\n``, ``\x85``, ``\u2028``...),
    so that a message quoting a user's key or value stays one line.

    Examples
    --------
    >>> print(one_line_text("files.a\x1eb: bad"))
    files.a\x1eb: bad
    """
    return LINE_BREAKS.sub(lambda m: repr(m.group())[1:-1], text)


class ConfigError(ValueError):
    """The config cannot be run as given (the message is kept on one line)."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line_text(str(message)))


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _fill_defaults(schema: Mapping[str, Any], config: dict[str, Any]) -> None:
    """Set the defaults the schema declares under ``properties``, recursively."""
    for key, sub in schema.get("properties", {}).items():
        if "default" in sub and key not in config:
            config[key] = copy.deepcopy(sub["default"])
        if isinstance(config.get(key), dict):
            _fill_defaults(sub, config[key])


def load_schema(schema_path: str | Path) -> dict[str, Any]:
    """Read the config's JSON schema (YAML).

    Parameters
    ----------
    schema_path
        ``workflow/schemas/config.schema.yaml``.

    Returns
    -------
    dict
        The schema.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(Path(schema_path).read_text(), Loader=loader)


def validate_schema(config: dict[str, Any], schema_path: str | Path) -> None:
    """Check ``config`` against the JSON schema with :func:`snakemake.utils.validate` (the
    workflow catalog's convention), then fill the defaults the schema declares.

    Parameters
    ----------
    config
        The config, as Snakemake loaded it; defaults are filled in place.
    schema_path
        The JSON schema (YAML).

    Raises
    ------
    ConfigError
        One line naming the first bad key and what is wrong with it (a ``oneOf``/``anyOf``
        error names its most specific cause).
    """
    import jsonschema  # here: the jobs' environments import this module without it
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        # defaults are filled below: Snakemake's filling also visits every oneOf branch
        validate(config, str(Path(schema_path).resolve()), set_default=False)
    except WorkflowError as wrapped:
        # Snakemake raises it while handling jsonschema's ValidationError
        if not isinstance(wrapped.__context__, jsonschema.exceptions.ValidationError):
            raise ConfigError(f"config error: {_one_line(wrapped)}") from None
        raise ConfigError(_schema_message(config, schema_path)) from None
    _fill_defaults(load_schema(schema_path), config)


def _schema_message(config: dict[str, Any], schema_path: str | Path) -> str:
    """``config error: <key>: <problem>`` for the best-matching schema error (jsonschema's
    own ranking, descending into ``oneOf``/``anyOf``), with the number of others."""
    import jsonschema

    schema = load_schema(schema_path)
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(config))
    err = jsonschema.exceptions.best_match(errors)
    while err.context:  # descend into the most specific error of a oneOf/anyOf/allOf
        err = jsonschema.exceptions.best_match(err.context)
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"config error: {_key(err.absolute_path)}: {err.message}{more}"


def _one_line(err: BaseException) -> str:
    return "; ".join(p.strip() for p in str(err).splitlines() if p.strip())


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def check_semantics(config: Mapping[str, Any], base_dir: str | Path = ".") -> None:
    """The cross-key checks that JSON Schema cannot express.

    Names that must exist (the datasets to run, each dataset's gene-set sources), local
    files that must be there, https downloads, download file names and each dataset's
    figure settings.

    Parameters
    ----------
    config
        The config, after the schema's checks.
    base_dir
        The directory local paths are relative to (the working directory).

    Raises
    ------
    ConfigError
        The first problem, in one line naming the key and the fix.
    """
    base = Path(base_dir)
    datasets, genesets = config["datasets"], config["genesets"]
    for name in config.get("run", list(datasets)):
        if name not in datasets:
            raise ConfigError(
                f"config error: run: unknown dataset '{name}'; defined under datasets: "
                f"{', '.join(datasets)}"
            )
    for name, ds in datasets.items():
        for gs in ds["genesets"]:
            if gs not in genesets:
                raise ConfigError(
                    f"config error: datasets.{name}.genesets: unknown gene-set source '{gs}'; "
                    f"defined under genesets: {', '.join(genesets)}"
                )
        if ds["source"] == "h5ad" and not (base / ds["path"]).is_file():
            raise ConfigError(
                f"config error: datasets.{name}.path: file not found: {ds['path']}; give the "
                "path of a local .h5ad (relative to the working directory)"
            )
    for name, gs in genesets.items():
        if gs["source"] == "local" and not (base / gs["path"]).is_file():
            raise ConfigError(
                f"config error: genesets.{name}.path: file not found: {gs['path']}; give the "
                "path of a local GMT file (relative to the working directory)"
            )
    orth = config.get("orthologs")
    if orth and orth["source"] == "local" and not (base / orth.get("path", "")).is_file():
        raise ConfigError(f"config error: orthologs.path: file not found: {orth.get('path')}")
    check_urls(config)
    check_download_names(config)
    for name in config.get("run", list(datasets)):
        check_figures(config, name)


def _urls(config: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(key, url)`` of every download in the config."""
    for name, gs in config["genesets"].items():
        if gs.get("url"):
            yield f"genesets.{name}.url", gs["url"]
    if (config.get("orthologs") or {}).get("url"):
        yield "orthologs.url", config["orthologs"]["url"]
    for name, ds in config["datasets"].items():
        for role, spec in (ds.get("files") or {}).items():
            yield f"datasets.{name}.files.{role}.url", spec["url"]


def check_urls(config: Mapping[str, Any]) -> None:
    """Every download is https, unless its exact URL is listed in ``allow_insecure_urls``.

    Parameters
    ----------
    config
        The config.

    Raises
    ------
    ConfigError
        A plain-http or ftp URL that is not listed, naming its key.
    """
    allowed = set(config.get("allow_insecure_urls") or [])
    for key, url in _urls(config):
        if urlsplit(url).scheme.lower() != "https" and url not in allowed:
            raise ConfigError(
                f"config error: {key}: '{url}' is not https, so the download could be altered "
                "on the way; use an https URL, or list this exact URL under allow_insecure_urls "
                "(and pin its sha256)"
            )


def download_file_name(url: str) -> str:
    """The name a dataset file is saved under: the last part of its URL's path.

    Parameters
    ----------
    url
        The download's URL.

    Returns
    -------
    str
        The file name (query and fragment ignored).

    Examples
    --------
    >>> download_file_name("https://example.org/geo/GSE96583_batch2.tsne.df.txt.gz?raw=1")
    'GSE96583_batch2.tsne.df.txt.gz'
    """
    return posixpath.basename(urlsplit(url).path.rstrip("/"))


def check_download_names(config: Mapping[str, Any]) -> None:
    """Each dataset file's name (the end of its URL's path) is a plain file name, unique
    within its dataset: never ``..`` or empty, which would write outside ``resources/``.

    Parameters
    ----------
    config
        The config.

    Raises
    ------
    ConfigError
        A name that is not plain, or two files of one dataset with the same name.
    """
    for name, ds in config["datasets"].items():
        seen: dict[str, str] = {}
        for role, spec in (ds.get("files") or {}).items():
            base = download_file_name(spec["url"])
            key = f"datasets.{name}.files.{role}.url"
            if base in ("", ".", "..") or not re.fullmatch(r"[A-Za-z0-9._+-]+", base):
                raise ConfigError(
                    f"config error: {key}: the URL's path must end in a plain file name (letters, "
                    f"digits, '.', '_', '-', '+'), got '{base}'; it names the downloaded file"
                )
            if base in seen:
                raise ConfigError(
                    f"config error: {key}: the file name '{base}' is also that of "
                    f"files.{seen[base]}; two files of one dataset need different names"
                )
            seen[base] = role


def check_figures(config: Mapping[str, Any], dataset: str) -> None:
    """What Figures 1 and 2 need is set for a dataset, before the workflow's graph is built.

    ``figures`` merged with ``datasets.<name>.figures`` must name Figure 1's model and
    terms and Figure 2's terms; their models must exist; a pattern must be a valid regular
    expression.

    Parameters
    ----------
    config
        The config.
    dataset
        The dataset's name.

    Raises
    ------
    ConfigError
        The first missing or wrong setting, with an example of a right one.
    """
    models = config["models"]
    figs = dataset_figures(config, dataset)
    example = (
        "e.g. figures: {fig1: {model: ae, terms: [TERM_A, TERM_B]}, fig2: {terms: INTERFERON}}"
    )
    for fig, keys in (("fig1", ("model", "terms")), ("fig2", ("terms",))):
        for key in keys:
            if not (figs.get(fig) or {}).get(key):
                raise ConfigError(
                    f"config error: figures.{fig}.{key}: not set for dataset '{dataset}' (under "
                    f"figures or datasets.{dataset}.figures); every dataset draws Figures 1 and "
                    f"2: {example} (config/README.md)"
                )
    for fig, spec in figs.items():
        for model in [spec["model"]] if "model" in spec else spec.get("models", []):
            if model not in models:
                raise ConfigError(
                    f"config error: figures.{fig}: unknown model '{model}' (dataset "
                    f"{dataset}); defined under models: {', '.join(models)}"
                )
    terms = figs["fig2"]["terms"]
    if isinstance(terms, str):
        try:
            re.compile(terms)
        except re.error as err:
            raise ConfigError(
                f"config error: figures.fig2.terms: '{terms}' is not a valid regular expression "
                f"({err}) (dataset {dataset}); fix it, or give a list of term names"
            ) from None


def _options_schema(schema: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The schema of ``models.<name>.options`` for a model ``kind``."""
    model = schema["properties"]["models"]["additionalProperties"]
    for branch in model.get("allOf", []):
        if branch["if"]["properties"]["kind"].get("const") == kind:
            return branch["then"]["properties"]["options"]
    return {"type": "object"}


def check_model_options(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """``datasets.<name>.model_options.<model>``: the model exists, and the options merged
    over ``models.<model>.options`` pass the schema of the model's kind.

    Parameters
    ----------
    config
        The config.
    schema
        The config's schema (:func:`load_schema`).

    Raises
    ------
    ConfigError
        An unknown model, or a merged option the model's kind does not allow.
    """
    import jsonschema  # here: the jobs' environments import this module without it

    for name, ds in config["datasets"].items():
        for model, options in (ds.get("model_options") or {}).items():
            key = f"datasets.{name}.model_options.{model}"
            if model not in config["models"]:
                raise ConfigError(
                    f"config error: {key}: unknown model '{model}'; defined under models: "
                    f"{', '.join(config['models'])}"
                )
            kind = config["models"][model]["kind"]
            sub = _options_schema(schema, kind)
            validator = jsonschema.validators.validator_for(schema)(sub)
            errors = list(validator.iter_errors(model_settings(config, name, model)))
            if errors:
                err = jsonschema.exceptions.best_match(errors)
                raise ConfigError(
                    f"config error: {_key([key, *err.absolute_path])}: {err.message} "
                    f"(a {kind} option, merged over models.{model}.options)"
                )


def check_config(
    config: dict[str, Any], schema_path: str | Path, base_dir: str | Path = "."
) -> None:
    """Check a config: the schema (with its defaults filled in place), then the cross-key
    checks.

    Parameters
    ----------
    config
        The config as Snakemake loaded it; top-level defaults are filled in place.
    schema_path
        The config's schema.
    base_dir
        The directory local paths are relative to.

    Raises
    ------
    ConfigError
        The first problem, in one line naming the key and the fix.

    Examples
    --------
    >>> check_config(config, "workflow/schemas/config.schema.yaml")  # doctest: +SKIP
    """
    validate_schema(config, schema_path)
    check_model_options(config, load_schema(schema_path))
    check_semantics(config, base_dir)


def dataset_settings(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A dataset's settings, with ``preprocess`` merged over the global defaults.

    Parameters
    ----------
    config
        The checked config.
    name
        The dataset's name.

    Returns
    -------
    dict
        A copy of ``datasets.<name>`` with ``name`` and the merged ``preprocess``.
    """
    ds = copy.deepcopy(dict(config["datasets"][name]))
    ds["name"] = name
    ds["preprocess"] = _deep_merge(config.get("preprocess", {}), ds.get("preprocess", {}))
    return ds


def dataset_figures(config: Mapping[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """A dataset's figure settings: ``datasets.<name>.figures`` merged over ``figures``.

    Parameters
    ----------
    config
        The config.
    name
        The dataset's name.

    Returns
    -------
    dict
        ``{figure: settings}`` (``fig1``, ``fig2``, ``fig3``).
    """
    return _deep_merge(config.get("figures", {}), config["datasets"][name].get("figures", {}))


def model_settings(config: Mapping[str, Any], dataset: str, model: str) -> dict[str, Any]:
    """A model's options for one dataset.

    Parameters
    ----------
    config
        The config.
    dataset
        The dataset's name.
    model
        The model's name.

    Returns
    -------
    dict
        ``datasets.<dataset>.model_options.<model>`` merged over ``models.<model>.options``
        (the per-dataset value wins).

    Examples
    --------
    >>> config = {"models": {"ae": {"options": {"epochs": 80, "lr": 0.001}}},
    ...           "datasets": {"kang": {"model_options": {"ae": {"epochs": 40}}}}}
    >>> model_settings(config, "kang", "ae")
    {'epochs': 40, 'lr': 0.001}
    """
    base = config["models"][model].get("options") or {}
    override = (config["datasets"][dataset].get("model_options") or {}).get(model) or {}
    return _deep_merge(base, override)


def prefit_requirements(config: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """What the steps after preparation will ask of one dataset's prepared data.

    So that :func:`iae_pipeline.prepare.checks.check_ready_to_fit` can check it before any
    fit.

    Parameters
    ----------
    config
        The checked config.
    dataset
        The dataset's name.

    Returns
    -------
    dict
        ``dataset``, ``source`` (for messages), ``cv_folds``, the merged ``figures``, the
        ``covariates`` of each autoencoder and the ``samples`` design of the donor-level
        test (``None`` without a sample key).
    """
    ds = config["datasets"][dataset]
    covariates = {}
    for model, spec in (config.get("models") or {}).items():
        options = model_settings(config, dataset, model)
        if spec.get("kind") == "autoencoder" and options.get("covariates"):
            covariates[model] = list(options["covariates"])
    samples = None
    if ds.get("sample_key"):  # the donor-level test's design
        samples = {k: ds.get(k) for k in ("sample_key", "paired", "control")}
    return {
        "dataset": dataset,
        "source": ds.get("path") if ds.get("source") == "h5ad" else f"datasets.{dataset}",
        "cv_folds": int((config.get("scoring") or {}).get("cv_folds", 5)),
        "figures": dataset_figures(config, dataset),
        "covariates": covariates,
        "samples": samples,
    }


def lock_path_for(config_file: str | Path) -> Path:
    """The lock file beside ``config_file``: ``config/paper.yaml`` -> ``config/paper.lock.yaml``.

    Parameters
    ----------
    config_file
        The workflow's (first) config file.

    Returns
    -------
    Path
        The lock file's path, absolute.

    Examples
    --------
    >>> lock_path_for("/w/config/paper.yaml").name
    'paper.lock.yaml'
    """
    path = Path(config_file).absolute()
    return path.with_name(f"{path.stem}.lock.yaml")


def checkpoint_seconds(smk: Any) -> float:
    """Seconds between two saves of a fit's state: the config's ``checkpoint_minutes``
    (default 10) as the job's ``snakemake`` object carries it.

    Parameters
    ----------
    smk
        The ``snakemake`` object of a fit's script (its ``config`` may be absent).

    Returns
    -------
    float
        ``60 * checkpoint_minutes``; 0 saves after every epoch or iteration.
    """
    config = getattr(smk, "config", None) or {}
    return 60.0 * float(config.get("checkpoint_minutes", 10))


def check_device(device: str, where: str = "device") -> None:
    """Refuse a CUDA or MPS device this machine does not have (one line instead of torch's
    traceback); ``auto`` and ``cpu`` always pass. Call it where the fit runs.

    Parameters
    ----------
    device
        The configured device.
    where
        The config key, for the message.

    Raises
    ------
    ConfigError
        No such device here, naming the fix.
    """
    device = str(device or "auto")
    if not device.startswith(("cuda", "mps")):
        return
    import torch

    fix = (
        "use device: auto (the GPU when present, else the CPU) or cpu, or run the fit on a GPU node"
    )
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(
                f"config error: {where}: 'mps', but torch finds no Apple GPU (MPS) here; {fix}"
            )
        return
    if not torch.cuda.is_available():
        raise ConfigError(
            f"config error: {where}: '{device}', but torch finds no CUDA device on this machine "
            f"(torch {torch.__version__}, built for CUDA: {torch.version.cuda or 'no'}); {fix}"
        )
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise ConfigError(
            f"config error: {where}: '{device}', but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s) (cuda:0..); pick one of them or auto"
        )
