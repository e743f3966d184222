"""The config reference, written from ``workflow/schemas/config.schema.yaml`` at build time.

The ``config-schema`` directive reads the schema the workflow validates its config with and
lists every key it allows: its path (``datasets.<name>.simulation.strength``), type, allowed
values and bounds, default, whether it is required, and the schema's description. The page
is made from the schema at every build, so it cannot drift from it. Written by hand because
no Sphinx extension on PyPI renders a YAML JSON schema to a key list without a network
fetch or a JavaScript viewer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: how a name under ``additionalProperties`` is shown in a key's path
ANY_NAME = "<name>"
_BOUNDS = (
    ("minimum", ">= {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "<= {}"),
    ("exclusiveMaximum", "< {}"),
    ("minItems", "at least {} items"),
    ("maxItems", "at most {} items"),
    ("minLength", "at least {} characters"),
    ("minProperties", "at least {} entries"),
)


@dataclass
class Entry:
    """One key of the config as the schema allows it.

    Parameters
    ----------
    path
        Dotted path from the config's top level; names the user chooses are ``<name>``.
    kind
        The type(s) or the allowed values, in words.
    constraints
        Bounds, lengths and patterns, in words.
    default
        The default as JSON, or ``""`` when the schema gives none.
    required
        ``""``, ``"required"`` or ``"required when <condition>"``.
    description
        The schema's description (``""`` when it has none).
    condition
        For keys allowed only under a condition (an ``if``/``then``), the condition.
    """

    path: str
    kind: str
    constraints: list[str] = field(default_factory=list)
    default: str = ""
    required: str = ""
    description: str = ""
    condition: str = ""


def load_schema(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) schema file.

    Parameters
    ----------
    path
        The schema file.

    Returns
    -------
    dict
        The schema as a dictionary.
    """
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """``node`` with a ``$ref`` (also one inside a one-element ``allOf``) replaced by its
    target; the node's own keys win over the target's."""
    node = dict(node)
    all_of = node.get("allOf")
    if all_of and len(all_of) == 1 and "$ref" in all_of[0]:
        node.pop("allOf")
        node = {**all_of[0], **node}
    ref = node.pop("$ref", None)
    if ref is None:
        return node
    if not ref.startswith("#/"):
        raise ValueError(f"schema: only local references are supported, got {ref!r}")
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    return {**_resolve(target, root), **node}


def _kind(node: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    """The type or allowed values of ``node``, in words."""
    if "enum" in node:
        return "one of " + ", ".join(json.dumps(v) for v in node["enum"])
    if "const" in node:
        return f"exactly {json.dumps(node['const'])}"
    if "oneOf" in node or "anyOf" in node:
        options = node.get("oneOf") or node.get("anyOf")
        return " or ".join(_kind(_resolve(o, root), root) for o in options)
    kinds = node.get("type", "any")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    text = " or ".join("null" if k == "null" else k for k in kinds)
    if "array" in kinds and isinstance(node.get("items"), Mapping):
        text += f" of {_kind(_resolve(node['items'], root), root)}"
    return text


def _constraints(node: Mapping[str, Any]) -> list[str]:
    out = [
        "not empty" if key.startswith("min") and key != "minimum" and node[key] == 1
        else template.format(node[key])
        for key, template in _BOUNDS
        if key in node
    ]  # fmt: skip
    if "pattern" in node:
        out.append(f"matches `{node['pattern']}`")
    if "propertyNames" in node and "pattern" in node["propertyNames"]:
        out.append(f"names match `{node['propertyNames']['pattern']}`")
    return out


def _condition(test: Mapping[str, Any]) -> str:
    """An ``if`` of the form ``{properties: {key: {const: v} | {enum: [...]}}}`` in words."""
    parts = []
    for key, spec in test.get("properties", {}).items():
        if "const" in spec:
            parts.append(f"{key} is {json.dumps(spec['const'])}")
        elif "enum" in spec:
            parts.append(f"{key} is one of " + ", ".join(json.dumps(v) for v in spec["enum"]))
        else:
            parts.append(f"{key} matches {json.dumps(spec)}")
    return " and ".join(parts) or json.dumps(test)


def _requirements(node: Mapping[str, Any]) -> dict[str, list[str]]:
    """Child key -> why it is required: always, when a condition holds, or with another key."""
    out: dict[str, list[str]] = {}
    for name in node.get("required", []):
        out.setdefault(name, []).append("required")
    for rule in node.get("allOf", []):
        if "if" in rule:
            for name in rule.get("then", {}).get("required", []):
                out.setdefault(name, []).append(f"required when {_condition(rule['if'])}")
    for key, names in node.get("dependentRequired", {}).items():
        for name in names:
            out.setdefault(name, []).append(f"required with {key}")
    return out


def _entry(
    path: str, node: Mapping[str, Any], root: Mapping[str, Any], required: str, condition: str
) -> Entry:
    return Entry(
        path=path,
        kind=_kind(node, root),
        constraints=_constraints(node),
        default=json.dumps(node["default"]) if "default" in node else "",
        required=required,
        description=" ".join(str(node.get("description", "")).split()),
        condition=condition,
    )


def _children(
    node: Mapping[str, Any], path: str, root: Mapping[str, Any], condition: str
) -> Iterator[Entry]:
    """Entries of ``node``'s keys: its properties, its named entries
    (``additionalProperties``) and the properties its ``if``/``then`` rules allow."""
    requirements = _requirements(node)
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}" if path else name, root,
                        "; ".join(requirements.get(name, [])), condition)  # fmt: skip
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        yield from walk(extra, f"{path}.{ANY_NAME}", root, "", condition)
    for rule in node.get("allOf", []):
        then = rule.get("then", {})
        if "if" not in rule or "properties" not in then:
            continue
        when = _condition(rule["if"])
        for name, sub in then["properties"].items():
            sub = _resolve(sub, root)
            base = f"{path}.{name}"
            yield from _children(sub, base, root, f"{condition} and {when}" if condition else when)


def walk(
    node: Mapping[str, Any],
    path: str,
    root: Mapping[str, Any],
    required: str = "",
    condition: str = "",
) -> Iterator[Entry]:
    """Every key at or below ``node``, depth first, in the schema's order.

    Parameters
    ----------
    node
        A (sub)schema.
    path
        Its dotted path (``""`` for the whole config).
    root
        The whole schema, for ``$ref``.
    required, condition
        Whether the key is required, and the condition it is allowed under.

    Yields
    ------
    Entry
        The key itself (unless ``path`` is empty), then its keys.
    """
    node = _resolve(node, root)
    if path:
        yield _entry(path, node, root, required, condition)
    yield from _children(node, path, root, condition)


def schema_entries(schema: Mapping[str, Any]) -> list[Entry]:
    """Every key a config may have, as the schema says.

    Parameters
    ----------
    schema
        The workflow's config schema.

    Returns
    -------
    list of Entry
        One entry per key path, in the schema's order.

    Examples
    --------
    >>> schema = {"properties": {"seed": {"type": "integer", "minimum": 0, "default": 0}}}
    >>> [(e.path, e.kind, e.constraints, e.default) for e in schema_entries(schema)]
    [('seed', 'integer', ['>= 0'], '0')]
    """
    return list(walk(schema, "", schema))


def property_names(node: Any) -> set[str]:
    """Every name listed under a ``properties`` anywhere in ``node`` (a raw schema)."""
    names: set[str] = set()
    if isinstance(node, Mapping):
        names |= set(node.get("properties", {}) if isinstance(node.get("properties"), Mapping)
                     else ())  # fmt: skip
        for value in node.values():
            names |= property_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= property_names(value)
    return names


# ---- Sphinx -------------------------------------------------------------------------------


def _inline(text: str) -> list[Any]:
    """Plain text with ``code`` spans as literals (no other markup is interpreted)."""
    from docutils import nodes

    out: list[Any] = []
    for i, part in enumerate(re.split(r"`([^`]*)`", text)):
        if part:
            out.append(nodes.literal(part, part) if i % 2 else nodes.Text(part))
    return out


def entry_nodes(entry: Entry) -> Any:
    """One definition-list item: the path, then what it takes and what it means."""
    from docutils import nodes

    term = nodes.term("", "", nodes.literal(entry.path, entry.path))
    facts = [entry.kind, *entry.constraints]
    if entry.default:
        facts.append(f"default `{entry.default}`")
    if entry.required:
        facts.append(entry.required)
    if entry.condition:
        facts.append(f"allowed when {entry.condition}")
    definition = nodes.definition("", nodes.paragraph("", "", *_inline("; ".join(facts))))
    if entry.description:
        definition += nodes.paragraph("", "", *_inline(entry.description))
    item = nodes.definition_list_item("", term, definition)
    anchor = f"{entry.path} {entry.condition}".lower()
    item["ids"].append("config-" + re.sub(r"[^a-z0-9]+", "-", anchor).strip("-"))
    return item


def setup(app: Any) -> dict[str, Any]:
    """Register the ``config-schema`` directive (argument: the schema, relative to the
    document)."""
    from docutils import nodes
    from sphinx.util.docutils import SphinxDirective

    class ConfigSchema(SphinxDirective):
        required_arguments = 1

        def run(self) -> list[Any]:
            rel, path = self.env.relfn2path(self.arguments[0], self.env.docname)
            self.env.note_dependency(rel)
            schema = load_schema(path)
            out: list[Any] = []
            if schema.get("description"):
                out.append(nodes.paragraph("", "", *_inline(" ".join(
                    schema["description"].split()))))  # fmt: skip
            groups: dict[str, list[Entry]] = {}
            for entry in schema_entries(schema):
                groups.setdefault(entry.path.split(".")[0], []).append(entry)
            single = [e for entries in groups.values() if len(entries) == 1 for e in entries]
            out.append(nodes.rubric("", "Settings of the whole run"))
            out.append(nodes.definition_list("", *map(entry_nodes, single)))
            for top, entries in groups.items():
                if len(entries) > 1:
                    out.append(nodes.rubric(top, top))
                    out.append(nodes.definition_list("", *map(entry_nodes, entries)))
            return out

    app.add_directive("config-schema", ConfigSchema)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
