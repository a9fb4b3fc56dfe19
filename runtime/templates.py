"""Safe `{variable}` templates: substitution only, never evaluation.

Python's `str.format` can reach attributes and indexes of objects, and Jinja is
a language; a call flow needs neither. A placeholder is `{name}` or a dotted path
`{booking.when}`; `{{` and `}}` are literal braces. Anything else in braces is
left as text. Substituted values are inserted verbatim, so a caller whose words
contain `{...}` is spoken as said, never re-expanded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")
_MISSING = object()


def lookup(variables: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path, or `None` when any step is missing."""
    value: Any = variables
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _spoken(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(_spoken(v) for v in value)
    return str(value)


def render(template: str, variables: Mapping[str, Any]) -> str:
    """Replace each placeholder by its variable's spoken form (missing -> empty)."""

    def sub(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok == "{{":
            return "{"
        if tok == "}}":
            return "}"
        return _spoken(lookup(variables, m.group(1)))

    return PLACEHOLDER.sub(sub, template)


def render_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """Render tool arguments: a string that is exactly one placeholder keeps the
    variable's type; other strings are rendered; lists and dicts recursively."""
    if isinstance(value, str):
        m = PLACEHOLDER.fullmatch(value)
        if m and m.group(1):
            return lookup(variables, m.group(1))
        return render(value, variables)
    if isinstance(value, list):
        return [render_value(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: render_value(v, variables) for k, v in value.items()}
    return value


def placeholders(value: Any) -> set[str]:
    """Dotted paths read by a template (or by every string inside a value)."""
    found: set[str] = set()
    if isinstance(value, str):
        found.update(m.group(1) for m in PLACEHOLDER.finditer(value) if m.group(1))
    elif isinstance(value, list):
        for v in value:
            found |= placeholders(v)
    elif isinstance(value, dict):
        for v in value.values():
            found |= placeholders(v)
    return found
