"""Conversation tests: passing and failing scripts, failure messages that name
the turn, malformed files, and `switchboard test` exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.convtest import (
    ConversationFileError,
    discover,
    load_conversation_file,
    run_file,
    subset,
    text_matches,
)

INTAKE = Path(__file__).parent / "fixtures" / "graphs" / "intake.yaml"

PASSING = f"""
graph: {INTAKE}
now: "2026-11-25T10:00:00-05:00"
caller: "+15551230001"
cases:
  - name: completes the intake
    turns:
      - agent: Welcome to the intake desk
        waiting: ask_name
        slots: {{today: "2026-11-25", caller: "+15551230001"}}
      - caller: Ada Lovelace
        slots: {{name: ada lovelace}}
        agent: /thanks ada.*phone number/
        node: ask_phone
      - caller: 415 555 0134
        slots: {{phone: "+14155550134"}}
        waiting: ask_email
      - caller: ada at example dot com
        agent: [ada@example.com, Is that right]
      - caller: yes
        node: intake/done
        outcome: completed
        not_agent: Welcome
    expect:
      outcome: completed
      visited: [hello, ask_phone, done]
      agents: [intake]
      slots: {{email: ada@example.com}}
      tools: []
  - name: hangs up
    turns:
      - caller: Bob
    hangup: true
    expect:
      outcome: abandoned
"""


def write(tmp_path: Path, text: str, name: str = "conv.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_a_passing_file_passes_every_case(tmp_path: Path) -> None:
    results = await run_file(write(tmp_path, PASSING))
    assert [(r.name, r.failures) for r in results] == [
        ("completes the intake", []),
        ("hangs up", []),
    ]
    transcript = results[0].transcript
    assert transcript[0] == "agent: Welcome to the intake desk."
    assert "caller: Ada Lovelace" in transcript
    assert transcript[-1] == "[completed]"
    assert results[1].transcript[-1] == "[abandoned]"


async def test_a_wrong_expectation_names_the_turn(tmp_path: Path) -> None:
    wrong = PASSING.replace('slots: {phone: "+14155550134"}', 'slots: {phone: "+19995550000"}')
    [first, second] = await run_file(write(tmp_path, wrong))
    assert not first.passed and second.passed
    assert len(first.failures) == 1
    failure = first.failures[0]
    assert failure.startswith("turn 2 ('415 555 0134'): slots ")
    assert "+19995550000" in failure and "+14155550134" in failure


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("agent: Welcome to the intake desk", "agent: Good morning", "opening: agent should say"),
        ("node: ask_phone", "node: ask_email", "turn 1 ('Ada Lovelace'): node 'ask_email'"),
        ("waiting: ask_email", "waiting: ask_ok", "turn 2 ('415 555 0134'): should wait at"),
        ("not_agent: Welcome", "not_agent: goodbye", "turn 4 ('yes'): agent should not say"),
        (
            "outcome: completed\n        not",
            "outcome: failed\n        not",
            "turn 4 ('yes'): outcome",
        ),
        ("visited: [hello, ask_phone, done]", "visited: [ask_phone, hello]", "call: path"),
        ("agents: [intake]", "agents: [intake, other]", "call: agents"),
        ("tools: []", "tools: [calendar.book]", "call: tool calls"),
        (
            "expect:\n      outcome: abandoned",
            "expect:\n      outcome: escalated",
            "call: call outcome 'escalated' expected; got 'abandoned' (caller hung up)",
        ),
    ],
)
async def test_each_kind_of_expectation_can_fail(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in PASSING
    results = await run_file(write(tmp_path, PASSING.replace(old, new, 1)))
    failures = [f for r in results for f in r.failures]
    assert len(failures) == 1, failures
    assert failures[0].startswith(expected), failures[0]


async def test_a_turn_after_the_call_ended_is_a_failure(tmp_path: Path) -> None:
    text = PASSING.replace(
        "        not_agent: Welcome\n", "        not_agent: Welcome\n      - caller: hello?\n"
    )
    [first, _] = await run_file(write(tmp_path, text))
    assert first.failures == ["turn 5: call already ended before caller said 'hello?'"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("graph: [unclosed", "cannot read"),
        ("- just\n- a list\n", "expected a mapping with 'graph' and 'cases'"),
        ("graph: x.yaml\n", "expected a mapping with 'graph' and 'cases'"),
        ("graph: x.yaml\ncases: {a: 1}\n", "'cases' must be a list of mappings"),
        ("graph: x.yaml\ncases: [{turns: {caller: hi}}]\n", "'turns' must be a list of mappings"),
        (
            "graph: x.yaml\ncases: [{name: c1, turns: [{caller: hi, agnet: typo}]}]\n",
            "case 'c1' turn 0: unknown keys ['agnet']",
        ),
        (
            "graph: x.yaml\ncases: [{name: c1, turns: [], expect: {outcme: completed}}]\n",
            "case 'c1': unknown expect keys ['outcme']",
        ),
        ("graph: x.yaml\nnow: next week\ncases: []\n", "now"),
        ("graph: x.yaml\nnow: 12\ncases: []\n", "'now' must be an ISO date-time"),
    ],
)
def test_a_malformed_file_raises_conversation_file_error(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConversationFileError) as info:
        load_conversation_file(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_a_missing_file_is_a_conversation_file_error(tmp_path: Path) -> None:
    with pytest.raises(ConversationFileError, match="cannot read"):
        load_conversation_file(tmp_path / "absent.yaml")


def test_the_graph_path_is_relative_to_the_test_file(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    path = write(tmp_path / "tests", "graph: ../flow.yaml\ncases: []\n")
    assert load_conversation_file(path).graph_path == (tmp_path / "flow.yaml").resolve()


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ("booked for", "You're BOOKED   for Tuesday", True),
        ("/booked .* tuesday/", "You're booked for Tuesday", True),
        ("/^booked/", "You're booked", False),
        ("cancelled", "You're booked", False),
    ],
)
def test_text_matches(expected: str, actual: str, ok: bool) -> None:
    assert text_matches(expected, actual) is ok


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ({"a": 1}, {"a": 1.0, "b": 2}, True),
        ({"a": {"b": "X"}}, {"a": {"b": "x", "c": 1}}, True),
        ({"a": 1}, {"b": 1}, False),
        ([1, 2], [1, 2], True),
        ([1], [1, 2], False),
        ("Ada", "ada", True),
        ("Ada", "Adam", False),
        ("/^ad/", "Adam", True),
        (True, True, True),
        ("10", 10, True),
        (None, None, True),
        ({"a": 1}, None, False),
    ],
)
def test_subset(expected: object, actual: object, ok: bool) -> None:
    assert subset(expected, actual) is ok


def test_discover_finds_files_in_tests_directories_and_explicit_files(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "other").mkdir()
    inside = write(tmp_path / "tests", "x", "a.yaml")
    write(tmp_path / "other", "x", "b.yaml")
    explicit = write(tmp_path / "other", "x", "c.yml")
    assert discover([tmp_path]) == [inside]
    assert discover([explicit, tmp_path / "nothing-here"]) == [explicit]


# --- switchboard test -------------------------------------------------------------------------

runner = CliRunner()


def test_cli_test_exits_0_when_every_case_passes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["test", str(write(tmp_path, PASSING))])
    assert result.exit_code == 0, result.output
    assert "PASS conv.yaml :: completes the intake" in result.stdout
    assert "2 passed, 0 failed" in result.stdout


def test_cli_test_exits_1_and_shows_the_failure(tmp_path: Path) -> None:
    wrong = PASSING.replace("node: ask_phone", "node: ask_email")
    result = runner.invoke(app, ["test", str(write(tmp_path, wrong))])
    assert result.exit_code == 1
    assert "FAIL conv.yaml :: completes the intake" in result.stdout
    assert "turn 1 ('Ada Lovelace'): node 'ask_email' should be reached" in result.stdout
    assert "agent: Welcome to the intake desk." in result.stdout  # the transcript
    assert "[completed]" in result.stdout
    assert "1 passed, 1 failed" in result.stdout


def test_cli_test_reports_a_malformed_file_as_an_error(tmp_path: Path) -> None:
    good = write(tmp_path, PASSING, "good.yaml")
    bad = write(tmp_path, "graph: x.yaml\ncases: {}\n", "bad.yaml")
    result = runner.invoke(app, ["test", str(good), str(bad)])
    assert result.exit_code == 1
    assert f"ERROR {bad}" in result.stdout
    assert "2 passed, 1 failed" in result.stdout
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_test_reports_a_broken_graph_as_an_error(tmp_path: Path) -> None:
    graph = tmp_path / "broken.yaml"
    graph.write_text("schema: switchboard/v1\nid: broken\nnodes: 3\n", encoding="utf-8")
    conv = write(tmp_path, "graph: broken.yaml\ncases: [{name: c, turns: []}]\n")
    result = runner.invoke(app, ["test", str(conv)])
    assert result.exit_code == 1
    assert f"ERROR {conv}" in result.stdout
    assert "broken.yaml:" in result.stdout
    assert "Traceback" not in result.output


def test_cli_test_with_nothing_to_run_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["test", str(tmp_path)])
    assert result.exit_code == 1
    assert "no conversation tests found" in result.stderr
