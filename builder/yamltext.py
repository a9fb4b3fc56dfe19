"""Write a changed round-trip YAML document so that unchanged parts keep their exact text.

`ruamel.yaml` keeps comments and key order, but a full dump still re-wraps long
lines and re-indents flow lists. `render_changed` dumps the new document, then
walks both documents' block mappings key by key: an entry whose data did not
change is copied from the old text byte for byte (with the comment lines above
it), a changed entry inside block mappings on both sides is walked into, and
anything else is taken from the dump, shifted to the old indentation. The
result is parsed again and must hold exactly the new data; if it does not (an
unusual layout), the plain ruamel dump is returned instead, so the data written
is always right and only the amount of untouched text can vary.
"""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarbool import ScalarBoolean

#: (mapping, sequence, offset) indentations tried when guessing a file's style.
_INDENT_CANDIDATES = ((2, 2, 0), (2, 4, 2), (4, 4, 0), (4, 4, 2), (4, 6, 2), (4, 6, 4))
#: Line width of re-written entries (long text stays on one line).
WIDTH = 4096


def new_yaml(indent: tuple[int, int, int] = (2, 4, 2)) -> YAML:
    """A round-trip YAML instance that keeps quotes and writes with `indent`."""
    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.width = WIDTH
    mapping, sequence, offset = indent
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def dump(yaml: YAML, document: Any) -> str:
    """`document` as YAML text."""
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


def plain(value: Any) -> Any:
    """A JSON-like copy of a round-trip value (dicts, lists and scalars)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bool | ScalarBoolean):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def guess_indent(text: str, document: CommentedMap) -> tuple[int, int, int]:
    """The (mapping, sequence, offset) indentation whose dump of `document`
    shares the most lines with `text`."""
    original = set(text.splitlines())
    best, best_score = _INDENT_CANDIDATES[0], -1
    for candidate in _INDENT_CANDIDATES:
        lines = dump(new_yaml(candidate), document).splitlines()
        score = sum(1 for line in lines if line in original)
        if score > best_score:
            best, best_score = candidate, score
    return best


def render_changed(yaml: YAML, old_text: str, old_doc: CommentedMap, new_doc: CommentedMap) -> str:
    """Text for `new_doc` that copies every unchanged entry of `old_doc` from
    `old_text` (which `old_doc` was parsed from) unchanged."""
    dumped = dump(yaml, new_doc)
    try:
        dumped_doc = yaml.load(dumped)
        old_lines = old_text.splitlines(keepends=True)
        if old_lines and not old_lines[-1].endswith("\n"):
            old_lines[-1] += "\n"
        new_lines = dumped.splitlines(keepends=True)
        parts = _splice(
            old_doc, old_lines, (0, len(old_lines)), dumped_doc, new_lines, (0, len(new_lines))
        )
        text = "".join(parts)
        if plain(yaml.load(text)) == plain(dumped_doc):
            return text
    except Exception:
        pass  # any surprise falls back to the full dump, whose data is right
    return dumped


def _is_block_map(value: Any) -> bool:
    return isinstance(value, CommentedMap) and len(value) > 0 and not value.fa.flow_style()


def _is_comment_or_blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _segments(
    mapping: CommentedMap, lines: list[str], span: tuple[int, int]
) -> tuple[int, dict[Any, tuple[int, int]]]:
    """Where each key's text starts and ends within `span` (comment lines above a
    key belong to it), and where the first key's text starts."""
    lo, hi = span
    key_lines = [(k, mapping.lc.key(k)[0]) for k in mapping]
    starts: list[tuple[Any, int]] = []
    floor = lo
    for key, line in key_lines:
        start = line
        while start - 1 >= floor and _is_comment_or_blank(lines[start - 1]):
            start -= 1
        starts.append((key, start))
        floor = line + 1
    out: dict[Any, tuple[int, int]] = {}
    for i, (key, start) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else hi
        out[key] = (start, end)
    return (starts[0][1] if starts else hi), out


def _shift(lines: list[str], by: int) -> list[str]:
    if by == 0:
        return lines
    out = []
    for line in lines:
        if not line.strip():
            out.append(line)
        elif by > 0:
            out.append(" " * by + line)
        else:
            width = len(line) - len(line.lstrip(" "))
            out.append(line[min(width, -by) :])
    return out


def _splice(
    old: CommentedMap,
    old_lines: list[str],
    old_span: tuple[int, int],
    new: CommentedMap,
    new_lines: list[str],
    new_span: tuple[int, int],
) -> list[str]:
    old_first, old_segs = _segments(old, old_lines, old_span)
    _, new_segs = _segments(new, new_lines, new_span)
    old_col = old.lc.key(next(iter(old)))[1]
    new_col = new.lc.key(next(iter(new)))[1]
    out = list(old_lines[old_span[0] : old_first])
    old_keys = list(old)
    replaced = {(old_keys[i - 1] if i else None): k for i, k in enumerate(old_keys) if k not in new}
    previous: Any = None
    for key in new:
        before, previous = previous, key
        n_hi = new_segs[key][1]
        if key in old:
            o_lo, o_hi = old_segs[key]
            if plain(old[key]) == plain(new[key]):
                out += old_lines[o_lo:o_hi]
                continue
            if _is_block_map(old[key]) and _is_block_map(new[key]):
                header_end = old.lc.key(key)[0] + 1
                new_header_end = new.lc.key(key)[0] + 1
                body = _splice(
                    old[key],
                    old_lines,
                    (header_end, o_hi),
                    new[key],
                    new_lines,
                    (new_header_end, n_hi),
                )
                out += old_lines[o_lo:header_end] + body
                continue
        # Comment lines above a key come from the old text: those of the key itself, or
        # of a removed key that stood at the same place (a rename); a new key gets none
        # (the dump repeats the previous entry's comments there).
        was = key if key in old else replaced.pop(before, None)
        if was is not None:
            out += old_lines[old_segs[was][0] : old.lc.key(was)[0]]
        out += _shift(new_lines[new.lc.key(key)[0] : n_hi], old_col - new_col)
    return out
