"""Validate the workflow's config and resolve per-dataset settings.

Errors are one line that names the key, e.g.
``config error: models.ae.options.epochs: 'abc' is not of type 'integer'``, so the
Snakefile can stop before any job runs and before anything is written.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class ConfigError(ValueError):
    """The config cannot be run as given."""


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _fill_defaults(schema: Mapping[str, Any], config: dict[str, Any]) -> None:
    """Set the defaults the schema declares under ``properties``, recursively."""
    for key, sub in schema.get("properties", {}).items():
        if "default" in sub and key not in config:
            config[key] = copy.deepcopy(sub["default"])
        if isinstance(config.get(key), dict):
            _fill_defaults(sub, config[key])


def validate_schema(config: dict[str, Any], schema_path: str | Path) -> None:
    """Check ``config`` against the JSON schema; raise ConfigError naming the first bad key."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    errors = list(validator_cls(schema).iter_errors(config))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        # descend into the most specific error of a oneOf/anyOf/allOf
        while err.context:
            err = jsonschema.exceptions.best_match(err.context)
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(f"config error: {_key(err.absolute_path)}: {err.message}{more}")
    _fill_defaults(schema, config)


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def check_semantics(config: Mapping[str, Any], base_dir: str | Path = ".") -> None:
    """Cross-key checks the schema cannot express: names that must exist, local paths."""
    base = Path(base_dir)
    datasets, genesets, models = config["datasets"], config["genesets"], config["models"]
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
    for name in config["datasets"]:
        figs = dataset_figures(config, name)
        for fig, spec in figs.items():
            for model in [spec["model"]] if "model" in spec else spec.get("models", []):
                if model not in models:
                    raise ConfigError(
                        f"config error: figures.{fig}: unknown model '{model}' (dataset "
                        f"{name}); defined under models: {', '.join(models)}"
                    )


def _options_schema(schema: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The schema of ``models.<name>.options`` for a model ``kind``."""
    model = schema["properties"]["models"]["additionalProperties"]
    for branch in model.get("allOf", []):
        if branch["if"]["properties"]["kind"].get("const") == kind:
            return branch["then"]["properties"]["options"]
    return {"type": "object"}


def check_model_options(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """``datasets.<name>.model_options.<model>``: the model exists, and the options merged
    over ``models.<model>.options`` pass the schema of the model's kind."""
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
    """Schema, then cross-key checks. Fills top-level defaults in place."""
    validate_schema(config, schema_path)
    check_model_options(config, yaml.safe_load(Path(schema_path).read_text()))
    check_semantics(config, base_dir)


def dataset_settings(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The dataset's dict with ``preprocess`` merged over the global defaults."""
    ds = copy.deepcopy(dict(config["datasets"][name]))
    ds["name"] = name
    ds["preprocess"] = _deep_merge(config.get("preprocess", {}), ds.get("preprocess", {}))
    return ds


def dataset_figures(config: Mapping[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """Figure settings for a dataset: ``datasets.<name>.figures`` over ``figures``."""
    return _deep_merge(config.get("figures", {}), config["datasets"][name].get("figures", {}))


def model_settings(config: Mapping[str, Any], dataset: str, model: str) -> dict[str, Any]:
    """A model's options for one dataset: ``datasets.<dataset>.model_options.<model>``
    merged over ``models.<model>.options`` (the per-dataset value wins)."""
    base = config["models"][model].get("options") or {}
    override = (config["datasets"][dataset].get("model_options") or {}).get(model) or {}
    return _deep_merge(base, override)
