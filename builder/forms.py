"""Property forms generated from `schemas/graph.schema.json`.

`node_fields(kind)` and `settings_fields()` describe the editable fields of a
node kind and of the graph settings, straight from the JSON Schema (so a new
field in the schema shows up in the builder without code here). `render_form`
draws them with Streamlit widgets and returns only the fields the user changed;
`REMOVE` marks an optional field that was cleared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import streamlit as st
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from runtime.templates import placeholders
from schemas.loader import graph_schema

Widget = Literal[
    "text", "textarea", "enum", "int", "float", "bool", "node", "list", "entries", "yaml"
]

#: Graph-level fields edited in the settings form (the rest are structure).
SETTINGS = ("name", "description", "start", "fallback_line", "variables", "global_intents")
SETTINGS_YAML = ("voice", "llm", "routing")
#: Fields whose text is spoken to the caller: multi-line with a template preview.
SPOKEN = ("text", "prompt", "reprompt", "say", "greeting", "fallback_line", "reason")


class _Remove:
    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Any = _Remove()


@dataclass(frozen=True)
class FieldSpec:
    """One editable field: its widget and what the schema says about it."""

    name: str
    widget: Widget
    required: bool
    description: str = ""
    default: Any = None
    options: tuple[str, ...] = ()
    entry: tuple[FieldSpec, ...] = ()  # fields of each entry, for `entries`


def _defs() -> dict[str, Any]:
    return graph_schema()["$defs"]


def _resolve(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref`, keeping the referring schema's own keywords."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
        return dict(schema)
    target = _resolve(_defs()[ref.removeprefix("#/$defs/")])
    return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}


def _non_null(schema: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema without its null alternative, and whether null was allowed."""
    if "anyOf" in schema:
        alts = [_resolve(a) for a in schema["anyOf"]]
        real = [a for a in alts if a.get("type") != "null"]
        if len(real) == 1:
            extra = {k: v for k, v in schema.items() if k != "anyOf"}
            return {**real[0], **extra}, len(real) < len(alts)
    types = schema.get("type")
    if isinstance(types, list) and "null" in types:
        rest = [t for t in types if t != "null"]
        return {**schema, "type": rest[0] if len(rest) == 1 else rest}, True
    return dict(schema), False


def _is_node_ref(schema: Mapping[str, Any]) -> bool:
    ref = schema.get("$ref")
    if ref == "#/$defs/node_id":
        return True
    return any(a.get("$ref") == "#/$defs/node_id" for a in schema.get("anyOf", []))


def _field(name: str, raw: Mapping[str, Any], required: bool) -> FieldSpec:
    schema, _nullable = _non_null(_resolve(raw))
    desc = str(raw.get("description") or schema.get("description") or "")
    default = schema.get("default")
    kind = schema.get("type")
    widget: Widget
    options: tuple[str, ...] = ()
    entry: tuple[FieldSpec, ...] = ()
    if _is_node_ref(raw):
        widget = "node"
    elif "enum" in schema:
        widget, options = "enum", tuple(str(o) for o in schema["enum"])
    elif kind == "string":
        widget = "textarea" if name in SPOKEN else "text"
    elif kind == "integer":
        widget = "int"
    elif kind == "number":
        widget = "float"
    elif kind == "boolean":
        widget = "bool"
    elif kind == "array" and _resolve(schema.get("items", {})).get("type") == "string":
        widget = "list"
    elif kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        sub = _resolve(schema["additionalProperties"])
        if sub.get("type") == "object" and "properties" in sub:
            widget, entry = "entries", tuple(_object_fields(sub))
        else:
            widget = "yaml"
    else:
        widget = "yaml"
    return FieldSpec(name, widget, required, desc, default, options, entry)


def _object_fields(schema: Mapping[str, Any]) -> list[FieldSpec]:
    required = set(schema.get("required", ()))
    return [
        _field(name, sub, name in required)
        for name, sub in schema.get("properties", {}).items()
        if name != "type"
    ]


@cache
def node_kinds() -> tuple[str, ...]:
    """Every node kind the schema allows, in schema order."""
    return tuple(_defs()["node"]["properties"]["type"]["enum"])


@cache
def node_kind_title(kind: str) -> str:
    """The schema's one-line description of a node kind."""
    d = _defs().get(f"{kind}_node", {})
    return str(d.get("description", kind))


def node_fields(kind: str) -> list[FieldSpec]:
    """Editable fields of a node kind (all but `type`), in schema order.
    Raises KeyError for an unknown kind."""
    return _object_fields(_defs()[f"{kind}_node"])


def required_fields(kind: str) -> list[str]:
    """Fields the schema requires for a node kind (besides `type`)."""
    return [f for f in _defs()[f"{kind}_node"].get("required", []) if f != "type"]


def settings_fields() -> list[FieldSpec]:
    """Editable graph-level settings: name, start, variables, global intents,
    voice, LLM and routing (structure fields such as `nodes` are excluded)."""
    schema = graph_schema()
    required = set(schema.get("required", ()))
    props = schema["properties"]
    fields = [_field(n, props[n], n in required) for n in SETTINGS]
    fields += [
        FieldSpec(n, "yaml", False, _resolve(props[n]).get("description", ""))
        for n in SETTINGS_YAML
    ]
    return fields


def template_variables(value: Any) -> list[str]:
    """The `{variable}` placeholders used in a text (sorted)."""
    return sorted(placeholders(value)) if isinstance(value, str) else []


def _yaml() -> YAML:
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    return y


def to_yaml_text(value: Any) -> str:
    """A value as block YAML for an editor box ('' for None)."""
    if value is None:
        return ""
    import io

    buf = io.StringIO()
    _yaml().dump(_plain(value), buf)
    return buf.getvalue()


def parse_yaml_text(text: str) -> Any:
    """Parse an editor box; raises ValueError with the parser's message."""
    if not text.strip():
        return None
    try:
        return _yaml().load(text)
    except YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def render_form(
    fields: Sequence[FieldSpec],
    values: Mapping[str, Any],
    *,
    key: str,
    node_ids: Sequence[str] = (),
    variables: Sequence[str] = (),
) -> dict[str, Any]:
    """Draw one widget per field, filled from `values`; return {field: new value}
    for fields the user changed (`REMOVE` for an optional field cleared).
    `variables` are the names known to the graph, used by template previews."""
    changes: dict[str, Any] = {}
    for f in fields:
        current = values.get(f.name)
        new = _render_field(f, current, key=f"{key}.{f.name}", node_ids=node_ids, known=variables)
        if new is _UNCHANGED:
            continue
        if current is None and (new is REMOVE or new == "" or new == [] or new == f.default):
            continue  # an absent field the user did not fill stays absent
        if new is not REMOVE and _plain(new) == _plain(current):
            continue
        changes[f.name] = new
    return changes


_UNCHANGED: Any = object()


def _label(f: FieldSpec) -> str:
    return f"{f.name}{' *' if f.required else ''}"


def _render_field(
    f: FieldSpec, current: Any, *, key: str, node_ids: Sequence[str], known: Sequence[str]
) -> Any:
    help_ = f.description or None
    if f.widget == "node":
        options = ["", *node_ids]
        if isinstance(current, str) and current not in options:
            options.append(current)
        index = options.index(current) if isinstance(current, str) else 0
        chosen = st.selectbox(_label(f), options, index=index, key=key, help=help_)
        return chosen if chosen else REMOVE  # an empty required field is a listed error
    if f.widget == "enum":
        options = list(f.options) if f.required or f.default is not None else ["", *f.options]
        value = current if current in options else (f.default if f.default in options else "")
        index = options.index(value) if value in options else 0
        picked = st.selectbox(_label(f), options, index=index, key=key, help=help_)
        return picked if picked else REMOVE
    if f.widget in ("text", "textarea"):
        text = "" if current is None else str(current)
        hint = f"default: {f.default}" if f.default is not None else None
        if f.widget == "textarea":
            out = st.text_area(_label(f), text, key=key, help=help_, height=90, placeholder=hint)
            used = template_variables(out)
            if used:
                unknown = [v for v in used if v.split(".")[0] not in known]
                shown = ", ".join(
                    f"`{{{v}}}`" + (" (not set yet)" if v in unknown else "") for v in used
                )
                st.caption(f"Template variables: {shown}")
        else:
            out = st.text_input(_label(f), text, key=key, help=help_, placeholder=hint)
        return out if out else REMOVE
    if f.widget in ("int", "float"):
        is_int = f.widget == "int"
        value = current if isinstance(current, int | float) else None
        number = st.number_input(
            _label(f),
            value=value,
            step=1 if is_int else 0.05,
            key=key,
            help=help_,
            placeholder=f"default {f.default}" if f.default is not None else "",
        )
        if number is None:
            return REMOVE
        return int(number) if is_int else float(number)
    if f.widget == "bool":
        value = bool(current) if current is not None else bool(f.default)
        ticked = st.checkbox(f.name, value=value, key=key, help=help_)
        return _UNCHANGED if current is None and ticked == bool(f.default) else ticked
    if f.widget == "list":
        text = "\n".join(str(v) for v in current) if isinstance(current, list) else ""
        out = st.text_area(f"{_label(f)} (one per line)", text, key=key, help=help_, height=90)
        items = _lines(out)
        return items if items else REMOVE
    if f.widget == "entries":
        return _render_entries(f, current, key=key, node_ids=node_ids, known=known)
    return _render_yaml(f, current, key=key)


def _render_yaml(f: FieldSpec, current: Any, *, key: str) -> Any:
    out = st.text_area(
        f"{_label(f)} (YAML)", to_yaml_text(current), key=key, help=f.description or None
    )
    try:
        value = parse_yaml_text(out)
    except ValueError as exc:
        st.error(f"{f.name}: {exc}")
        return _UNCHANGED
    return REMOVE if value is None else value


def _render_entries(
    f: FieldSpec, current: Any, *, key: str, node_ids: Sequence[str], known: Sequence[str]
) -> Any:
    """A mapping of named objects (intents, exits, global intents): one
    sub-form per entry, plus add and remove."""
    entries = {str(k): dict(v) for k, v in current.items()} if isinstance(current, Mapping) else {}
    st.markdown(f"**{_label(f)}** — {f.description}")
    result: dict[str, Any] = {}
    changed = False
    for name, value in entries.items():
        with st.expander(name, expanded=False):
            sub = render_form(
                f.entry, value, key=f"{key}.{name}", node_ids=node_ids, variables=known
            )
            if st.checkbox(f"remove {name}", key=f"{key}.{name}.__remove"):
                changed = True
                continue
        if sub:
            changed = True
            value = dict(value)
            for k, v in sub.items():
                if v is REMOVE:
                    value.pop(k, None)
                else:
                    value[k] = v
        result[name] = value
    new_name = st.text_input(f"add to {f.name} (name)", "", key=f"{key}.__new")
    if new_name.strip() and new_name.strip() not in result:
        result[new_name.strip()] = {}
        changed = True
    return result if changed else _UNCHANGED
