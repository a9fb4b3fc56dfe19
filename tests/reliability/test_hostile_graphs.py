"""Hostile graph files through `switchboard validate` (the CLI surface) and the
validator: alias bombs, deep nesting, huge files, non-UTF-8, YAML tags that
would build objects, and hypothesis-built documents mixing anchors, tags,
flow/block styles and odd scalars. Each gets exit 1 with file:line errors,
never a traceback, within a bounded time and memory.

tests/schemas/test_loader_fuzz.py fuzzes the loader with arbitrary text and
edits of valid files; this suite adds the YAML constructs an attacker would
reach for and checks the user-facing command.
"""

from __future__ import annotations

import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from reliability.report import full_mode, record_surface
from runtime.cli import app
from schemas.parsing import MAX_DEPTH, MAX_FILE_BYTES
from schemas.validate import validate_file

#: Generous bounds, far above what these inputs need (~0.1 s, a few MB) so a
#: busy machine cannot trip them, yet far below what an unguarded parser
#: would spend on a bomb (minutes, gigabytes).
MAX_SECONDS = 20.0
MAX_PEAK_BYTES = 200 * 1024 * 1024

HEAD = "schema: switchboard/v1\nid: hostile\nname: Hostile\nstart: a\n"


def _laughs(levels: int, width: int = 10) -> str:
    lines = ['l0: &l0 "lol"']
    for n in range(1, levels):
        refs = ", ".join(f"*l{n - 1}" for _ in range(width))
        lines.append(f"l{n}: &l{n} [{refs}]")
    return HEAD + "variables:\n" + "\n".join("  " + line for line in lines) + "\nnodes: {}\n"


CORPUS: dict[str, bytes] = {
    "billion laughs": _laughs(9).encode(),
    "quadratic blowup": (
        HEAD + "variables:\n  a: &a " + "x" * 50_000 + "\n  b: [" + ", ".join(["*a"] * 999) + "]\n"
    ).encode(),
    "recursive alias": (HEAD + "variables: &v\n  self: *v\nnodes: {}\n").encode(),
    "deep flow nesting": (HEAD + "variables: " + "[" * 10_000 + "]" * 10_000 + "\n").encode(),
    "deep block nesting": (
        HEAD + "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 20)) + "  " * 90 + "x: 1\n"
    ).encode(),
    "deep JSON nesting": b'{"schema": "switchboard/v1", "v": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "huge file": b"# padding\n" * (MAX_FILE_BYTES // 10 + 1),
    "huge single line": (HEAD + "name: " + "n" * (MAX_FILE_BYTES + 10)).encode(),
    "latin-1 bytes": HEAD.encode() + "nodes: {a: {type: say, text: caf\xe9}}\n".encode("latin-1"),
    "utf-16 text": HEAD.encode("utf-16"),
    "NUL bytes": HEAD.encode() + b"nodes: {a: \x00\x00}\n",
    "python object tag": (
        HEAD + "nodes: !!python/object/apply:os.system ['echo pwned > /tmp/pwned']\n"
    ).encode(),
    "python name tag": (HEAD + "variables: {x: !!python/name:os.system }\nnodes: {}\n").encode(),
    "custom tag": (HEAD + "nodes: !include /etc/passwd\n").encode(),
    "merge key bomb": (
        HEAD
        + "variables:\n  base: &b {k: v}\n"
        + "".join(f"  m{i}: {{<<: *b}}\n" for i in range(200))
        + "nodes: {}\n"
    ).encode(),
    "duplicate keys": (HEAD + "start: b\nnodes: {a: {type: end}, a: {type: end}}\n").encode(),
    "many documents": (HEAD + "nodes: {}\n---\n" * 500).encode(),
    "empty": b"",
    "only a BOM": b"\xef\xbb\xbf",
    "binary garbage": bytes(range(256)) * 64,
    "control characters": (HEAD + "name: \x1b[31mred\x07\nnodes: {}\n").encode(),
    "YAML 1.1 sexagesimal and octal": (HEAD + "variables: {a: 1:20, b: 0o17, c: .inf}\n").encode(),
    "huge integer": (HEAD + "variables: {n: " + "9" * 5000 + "}\nnodes: {}\n").encode(),
}

TRIED: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    total = sum(TRIED.values())
    if total:
        record_surface("graph-files", tried=total, refused=total, detail=dict(TRIED))


def _check_cli(path: Path) -> str:
    tracemalloc.start()
    began = time.perf_counter()
    try:
        result = CliRunner().invoke(app, ["validate", str(path)])
        elapsed = time.perf_counter() - began
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    output = result.output
    assert result.exit_code == 1, (path.name, result.exit_code, output[-500:])
    assert result.exception is None or isinstance(result.exception, SystemExit), output[-500:]
    assert "Traceback" not in output
    assert f"{path}:" in output and "error" in output, output[:500]
    assert elapsed < MAX_SECONDS, f"{path.name}: {elapsed:.1f} s"
    assert peak < MAX_PEAK_BYTES, f"{path.name}: peak {peak / 1e6:.0f} MB"
    return output


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_file_is_refused_by_validate_in_bounded_time_and_memory(
    name: str, tmp_path: Path
) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_bytes(CORPUS[name])
    output = _check_cli(path)
    if "tag" in name:
        assert not Path("/tmp/pwned").exists()
        assert "tag" in output.lower() or "E1" in output
    TRIED["enumerated"] += 1


# --- generated documents -------------------------------------------------------

_names = st.sampled_from(["a", "b", "nodes", "type", "next", "<<", "start", "id", "x y", "é"])
_scalars = st.one_of(
    st.sampled_from(
        [
            "~",
            "null",
            "yes",
            "NO",
            "0x1F",
            "1e400",
            "-.inf",
            ".nan",
            "2026-02-30",
            "12:30:00",
            "'q'",
            '"\\u0000"',
            '"\\x41"',
            "|\n  block",
            ">-\n  folded",
            "!!binary aGk=",
            "!!str 1",
            "!!set {a}",
            "!!omap [a: 1]",
            "!!python/none ''",
            "!custom x",
            "&anc v",
            "*anc",
            "*nowhere",
            "{",
            "]",
            "? complex",
            "- - -",
        ]
    ),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20).map(repr),
)


@st.composite
def _documents(draw: st.DrawFn, depth: int = 0) -> str:
    if depth >= 4 or draw(st.booleans()):
        return draw(_scalars)
    items = draw(st.lists(st.tuples(_names, _documents(depth + 1)), max_size=4))
    anchor = draw(st.sampled_from(["", "&m ", "&anc "]))
    if draw(st.booleans()):
        return anchor + "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    return anchor + "[" + ", ".join(v for _, v in items) + "]"


@given(
    body=_documents(), tail=st.sampled_from(["", "\nnodes: *anc", "\n---\n", "\n...\n%YAML 1.1"])
)
@settings(
    max_examples=400 if full_mode() else 60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_generated_hostile_yaml_gets_located_errors(body: str, tail: str, tmp_path: Path) -> None:
    path = tmp_path / "generated.yaml"
    path.write_text(HEAD + "variables: " + body + tail + "\n", encoding="utf-8")
    result = validate_file(path)
    # A generated document may be valid YAML yet it never is a valid graph
    # (no nodes): the validator must say so with located diagnostics.
    assert result.diagnostics, body
    for d in result.diagnostics:
        assert d.file == str(path) and d.line >= 1 and d.message
    TRIED["generated"] += 1
