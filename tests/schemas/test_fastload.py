"""The fast load path never disagrees with the round-trip path: whenever it
answers, it gives the same plain document and spec, and every diagnostic
(with its file:line:col) still comes from the round-trip parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.checks import check_graph
from schemas.fastload import fast_plain
from schemas.loader import load_graph_text
from schemas.parsing import ParsedDocument, parse_document

ROOT = Path(__file__).resolve().parents[2]
GRAPH_FILES = sorted(
    p
    for d in (ROOT / "graphs", ROOT / "tests" / "schemas" / "fixtures")
    for p in d.rglob("*.y*ml")
    if p.name not in ("tools.yaml", "tools.yml")
)
SCALARS = [
    "010", "007", "1_000", "0o17", "0x1f", "+5", "-5", "-0", "1.5", "1e3", "1.5e3", ".5",
    "5.", ".inf", "-.inf", ".nan", "yes", "no", "on", "off", "y", "True", "TRUE", "true",
    "false", "~", "null", "Null", "", "2024-01-01", "2024-01-01T10:00:00Z", "12:30",
    "1:30:00", "<<", "=", "0.30", "1.0E+3", "0b101", "'quoted'", '"dq \\t tab"', "|\n  block",
    ">\n  folded\n  text", "!!str 5", "!!int '5'", "&a 1", "[1, 2]", "{a: 1}", "!custom x",
]  # fmt: skip


def _slow_plain(text: str) -> object:
    parsed = parse_document(text, "g.yaml")
    if not isinstance(parsed, ParsedDocument) or parsed.diagnostics:
        return None
    return parsed.plain


@pytest.mark.parametrize("scalar", SCALARS)
def test_scalars_read_as_the_round_trip_parser_reads_them(scalar: str) -> None:
    for text in (f"a: {scalar}\n", f"a:\n  - {scalar}\n", f"{scalar}: 1\n"):
        fast = fast_plain(text, "g.yaml")
        if fast is not None:
            assert fast == _slow_plain(text), text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=12))
def test_any_plain_or_quoted_value_reads_the_same(value: str) -> None:
    for text in (f"k: {value}\n", f'k: "{value}"\n', f"k: '{value}'\n", f"{value}: v\n"):
        fast = fast_plain(text, "g.yaml")
        if fast is not None:
            assert fast == _slow_plain(text), repr(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",  # aliases
        "a: 1\na: 2\n",  # repeated key
        "%YAML 1.1\n---\na: yes\n",  # directive
        "a: !!binary aGk=\n",  # tag
        "a: 1\n---\nb: 2\n",  # two documents
        "- 1\n- 2\n",  # not a mapping
        "1: one\n",  # key that is not text
        "a: [" * 70 + "]" * 70 + "\n",  # too deep
        "a: 'caf\x85e'\n",  # NEL: a line break in YAML 1.1 only
        "a: [1, 2\n",  # syntax error
    ],
)
def test_gives_up_where_the_round_trip_parser_must_decide(text: str) -> None:
    assert fast_plain(text, "g.yaml") is None


def test_json_files_take_the_round_trip_path() -> None:
    assert fast_plain('{"a": 1}', "g.json") is None


@pytest.mark.parametrize("path", GRAPH_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_graph_files_load_and_check_the_same_both_ways(path: Path) -> None:
    text = path.read_text("utf-8")
    fast = fast_plain(text, str(path))
    slow = parse_document(text, str(path))
    if fast is not None:
        assert isinstance(slow, ParsedDocument) and fast == slow.plain
    loaded = load_graph_text(text, str(path))
    if loaded.spec is None:
        return
    # the same findings at the same places, whether positions were deferred or not
    assert isinstance(slow, ParsedDocument)
    found = check_graph(loaded.spec, loaded.source, file="g", tools=None)
    expected = check_graph(loaded.spec, slow.source, file="g", tools=None)
    assert found == expected


def test_a_fast_loaded_graph_locates_its_warnings() -> None:
    text = (
        "id: w\nname: W\nstart: ask\nnodes:\n"
        "  ask:\n    type: collect\n    slot: day\n    prompt: Which day?\n    next: bye\n"
        "  bye:\n    type: end\n    text: See you {day}.\n"
    )
    assert fast_plain(text, "w.yaml") is not None
    loaded = load_graph_text(text, "w.yaml")
    assert loaded.spec is not None and loaded.diagnostics == []
    found = check_graph(loaded.spec, loaded.source, file="w.yaml")
    w215 = [d for d in found if d.code == "W215"]
    assert [(d.line, d.column) for d in w215] == [(5, 3)]
