"""The config checks under generated configs (hypothesis): every config is accepted, and
then everything the workflow computes from it when it starts works, or it is refused with
one ConfigError line that names a key; never another exception.

Each config is one of the shipped ones (the demo, the paper's) with one to four generated
edits: a value replaced by a value of any type (None, booleans, integers from very
negative to very large, NaN and infinities, text of any Unicode, lists, mappings), a key
removed, or an unknown key added, at any depth. The regression cases found by the
fuzzing, and kept, are in ``test_config.py``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from helpers import ROOT
from helpers.fuzz import FUZZ, assert_one_line, kind
from iae_pipeline.config import (
    ConfigError,
    check_config,
    dataset_figures,
    download_file_name,
    model_settings,
    prefit_requirements,
)
from iae_pipeline.replicates import model_replicates, side_by_side_models

pytestmark = pytest.mark.slow

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CONFIGS = {name: yaml.safe_load((ROOT / "config" / name).read_text()) for name in
           ("config.yaml", "paper.yaml")}  # fmt: skip

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "ae", "slalom", "demo", "kang", "https://x/y.gmt", "INTERFERON", "("]),
)
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _alike(value: Any) -> st.SearchStrategy:
    """Another value of the same type as ``value`` (a config a user could well write)."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(min_value=-3, max_value=max(3, 4 * abs(value)))
    if isinstance(value, float):
        return st.floats(min_value=-1.0, max_value=max(2.0, 4 * abs(value)), allow_nan=False)
    if isinstance(value, str):
        return st.one_of(st.just(value.upper()), st.text(max_size=12), st.just(value[:3]))
    if isinstance(value, list):
        return st.lists(st.sampled_from(value), max_size=len(value) + 1) if value else st.just([])
    if isinstance(value, dict) and value:
        return st.dictionaries(st.sampled_from(sorted(value)), st.just(None), max_size=1).map(
            lambda drop: {k: v for k, v in value.items() if k not in drop}
        )
    return _value


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a nested config (mappings and lists)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def _parent(config: Any, path: tuple) -> Any:
    node = config
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def edited_configs(draw: st.DrawFn) -> dict:
    """A shipped config with one to four generated edits."""
    config = copy.deepcopy(CONFIGS[draw(st.sampled_from(sorted(CONFIGS)))])
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(config)
        path = draw(st.sampled_from(paths))
        parent = _parent(config, path)
        action = draw(st.sampled_from(["alike", "alike", "alike", "replace", "delete", "add"]))
        if action == "alike":
            parent[path[-1]] = draw(_alike(parent[path[-1]]))
        elif action == "replace":
            parent[path[-1]] = draw(_value)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(_value)
    return config


def startup(config: dict) -> None:
    """What the workflow computes from a checked config when it starts (rules/common.smk)."""
    check_config(config, SCHEMA, base_dir=ROOT)
    runs = config.get("run", list(config["datasets"]))
    for model in config["models"]:
        model_replicates(config, model)
    side_by_side_models(config, [])
    for name in runs:
        dataset_figures(config, name)
        prefit_requirements(config, name)
        for model in config["models"]:
            model_settings(config, name, model)
        for spec in (config["datasets"][name].get("files") or {}).values():
            download_file_name(spec["url"])


@FUZZ
@given(config=edited_configs())
def test_a_config_is_accepted_or_refused_with_one_line_naming_a_key(config):
    try:
        startup(config)
    except ConfigError as err:
        assert_one_line(err, "config error: ")
        assert str(err).startswith("config error: ")
        event(f"refused: {kind(err)}")
    else:
        event("accepted")
