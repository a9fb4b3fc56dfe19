"""The `switchboard` command line: validate, show and chat, their exit codes,
JSON output, and errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pydot
import pytest
from typer.testing import CliRunner

from runtime.cli import app

REPO = Path(__file__).resolve().parents[2]
GRAPHS = REPO / "graphs"
FIXTURES = Path(__file__).parent / "fixtures" / "graphs"
INTAKE = FIXTURES / "intake.yaml"
ACCOUNT = FIXTURES / "account.yaml"
DIAGNOSTIC_KEYS = {"code", "severity", "file", "line", "column", "node", "pointer", "message"}

# Line 10 sends `next` to a node that does not exist; line 12 is a node nothing reaches.
SEEDED = """\
# seeded defects
schema: switchboard/v1
id: seeded
name: Seeded defects
start: hello
nodes:
  hello:
    type: say
    text: Hello.
    next: nowhere
  orphan:
    type: end
"""

runner = CliRunner()


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    path = tmp_path / "seeded.yaml"
    path.write_text(SEEDED, encoding="utf-8")
    return path


def no_traceback(output: str) -> None:
    assert "Traceback" not in output
    assert "╭─" not in output  # rich's boxed traceback


# --- validate ---------------------------------------------------------------------------------


def test_validate_the_example_graphs_exits_0() -> None:
    result = runner.invoke(app, ["validate", str(GRAPHS)])
    assert result.exit_code == 0, result.output
    count = len([p for p in GRAPHS.iterdir() if p.suffix == ".yaml"])
    assert f"{count} file(s) checked: valid (0 errors" in result.stdout


def test_validate_json_lists_each_diagnostic_with_its_line(seeded: Path) -> None:
    result = runner.invoke(app, ["validate", str(seeded), "--format", "json"])
    assert result.exit_code == 1
    diagnostics = json.loads(result.stdout)
    assert isinstance(diagnostics, list)
    assert all(set(d) == DIAGNOSTIC_KEYS for d in diagnostics)
    by_code = {d["code"]: d for d in diagnostics}
    assert by_code["E201"] == {
        **by_code["E201"],
        "severity": "error",
        "file": str(seeded),
        "line": 10,
        "node": "hello",
        "pointer": "/nodes/hello/next",
    }
    assert by_code["E201"]["column"] == 11
    assert "'nowhere'" in by_code["E201"]["message"]
    assert by_code["W202"]["line"] == 11
    assert by_code["W202"]["severity"] == "warning"
    assert by_code["W202"]["node"] == "orphan"


def test_validate_json_is_an_empty_list_for_a_clean_file() -> None:
    result = runner.invoke(app, ["validate", str(INTAKE), "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_validate_text_names_file_line_code_and_node(seeded: Path) -> None:
    result = runner.invoke(app, ["validate", str(seeded)])
    assert result.exit_code == 1
    assert f"{seeded}:10:11: error E201 [node hello] (/nodes/hello/next):" in result.stdout
    assert "1 file(s) checked: invalid (1 errors, 1 warnings)" in result.stdout


def test_validate_strict_fails_on_warnings(tmp_path: Path) -> None:
    path = tmp_path / "warn.yaml"
    path.write_text(SEEDED.replace("next: nowhere", "next: orphan") + "  spare: {type: end}\n")
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0
    assert runner.invoke(app, ["validate", str(path), "--strict"]).exit_code == 1


@pytest.mark.parametrize(
    ("text", "code", "line"),
    [
        ("schema: switchboard/v1\nid: x\nname: X\nstart: a\nnodes:\n  a: {type: say\n", "E101", 7),
        (
            "schema: switchboard/v1\nid: x\nname: X\nstart: a\nnodes:\n  a: {type: sing}\n",
            "E113",
            6,
        ),
    ],
)
def test_validate_broken_files_report_a_line_not_a_traceback(
    tmp_path: Path, text: str, code: str, line: int
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path), "--format", "json"])
    assert result.exit_code == 1
    no_traceback(result.output)
    [diagnostic] = json.loads(result.stdout)
    assert (diagnostic["code"], diagnostic["line"], diagnostic["severity"]) == (code, line, "error")


def test_validate_a_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 1
    no_traceback(result.output)
    assert "absent.yaml:1:1: error" in result.stdout


# --- show -------------------------------------------------------------------------------------


def test_show_mermaid_by_file() -> None:
    result = runner.invoke(app, ["show", str(GRAPHS / "dental-booking.yaml")])
    assert result.exit_code == 0
    assert result.stdout.startswith("flowchart TD\n")
    assert "n_route -->|intent:book| n_ask_day" in result.stdout


@pytest.mark.filterwarnings("ignore:.*deprecated - use:DeprecationWarning")
def test_show_dot_by_graph_id() -> None:
    result = runner.invoke(
        app,
        ["show", "dental-booking", "--format", "dot"],
        env={"SWITCHBOARD_GRAPHS_DIR": str(GRAPHS)},
    )
    assert result.exit_code == 0, result.output
    parsed = pydot.graph_from_dot_data(result.stdout)
    assert parsed is not None
    [dot] = parsed
    assert str(dot.get_name()).strip('"') == "dental-booking"
    names = {str(n.get_name()).strip('"') for n in dot.get_nodes()}
    assert names >= {"route", "ask_day", "confirm"}


def test_show_rejects_an_unknown_format() -> None:
    result = runner.invoke(app, ["show", str(INTAKE), "--format", "png"])
    assert result.exit_code == 2
    assert "--format must be mermaid or dot" in result.stderr


def test_an_unknown_graph_id_exits_2_with_the_known_ids() -> None:
    for command in (["show", "no-such-graph"], ["chat", "no-such-graph"]):
        result = runner.invoke(app, command, env={"SWITCHBOARD_GRAPHS_DIR": str(GRAPHS)}, input="")
        assert result.exit_code == 2
        assert "no graph file 'no-such-graph'" in result.stderr
        assert "dental-booking" in result.stderr
        no_traceback(result.output)


# --- chat -------------------------------------------------------------------------------------


def test_chat_with_piped_stdin_prints_the_agent_lines() -> None:
    lines = "Ada Lovelace\n415 555 0134\nada at example dot com\nyes\n"
    result = runner.invoke(app, ["chat", str(INTAKE)], input=lines)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Welcome to the intake desk.",
        "What is your name?",
        "Thanks Ada Lovelace. What is your phone number?",
        "And your email address?",
        "So that's Ada Lovelace, +14155550134, ada@example.com. Is that right?",
        "Thank you Ada Lovelace, goodbye.",
    ]
    assert "[call completed]" in result.stderr


def test_chat_hangs_up_at_the_end_of_input() -> None:
    result = runner.invoke(app, ["chat", str(INTAKE)], input="Ada\n")
    assert result.exit_code == 0
    assert "[call abandoned: caller hung up]" in result.stderr


def test_chat_prints_caller_supplied_text_verbatim() -> None:
    result = runner.invoke(app, ["chat", str(INTAKE)], input="[/red] Ada [bold]\n")
    assert result.exit_code == 0, result.output
    assert "Thanks [/red] Ada [bold]. What is your phone number?" in result.stdout.splitlines()


def test_chat_json_prints_one_event_per_line() -> None:
    result = runner.invoke(
        app, ["chat", str(ACCOUNT), "--json", "--caller", "+15551230001"], input="AC-1001\n"
    )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert {"agent", "node", "slot", "tool", "outcome", "waiting"} <= set(types)
    assert events[0] == {"type": "node", "agent": "account-check", "node": "ask_account"}
    assert {"type": "slot", "name": "account", "value": "AC-1001"} in events
    [tool] = [e for e in events if e["type"] == "tool"]
    assert tool["name"] == "accounts.lookup"
    assert tool["args"] == {"account_number": "AC-1001"}
    assert tool["error"] is None and tool["result"]["first_name"] == "Maria"
    agent = [e["text"] for e in events if e["type"] == "agent"]
    # The demo store is process-wide here: its balance may have moved, the name not.
    assert agent[0] == "What is your account number?"
    assert agent[1].startswith("Hello Maria, your balance is $")
    assert len(agent) == 2
    assert events[-1] == {"type": "outcome", "outcome": "completed", "reason": None}
    assert types.index("tool") < types.index("outcome")


def test_chat_on_a_broken_graph_exits_1_with_file_line_diagnostics(seeded: Path) -> None:
    result = runner.invoke(app, ["chat", str(seeded)], input="hi\n")
    assert result.exit_code == 1
    assert f"{seeded}:10:11: error E201 [node hello]" in result.stderr
    assert result.stdout == ""
    no_traceback(result.output)


def test_chat_on_an_unparsable_graph_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("nodes: [\n", encoding="utf-8")
    result = runner.invoke(app, ["chat", str(path)], input="hi\n")
    assert result.exit_code == 1
    assert f"{path}:" in result.stderr
    no_traceback(result.output)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("foo://x", "unsupported checkpointer URL"),
        ("sqlite:///", "malformed SQLite URL"),
        ("redis://127.0.0.1:1/0", "cannot use Redis"),
    ],
)
def test_chat_with_an_unusable_checkpointer_exits_2(url: str, message: str) -> None:
    result = runner.invoke(app, ["chat", str(INTAKE), "--checkpoint", url], input="hi\n")
    assert result.exit_code == 2
    assert message in result.stderr
    no_traceback(result.output)


def test_chat_keeps_a_call_open_and_resumes_it_by_id(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'calls.db'}"
    args = ["chat", str(INTAKE), "--checkpoint", url, "--call-id", "c1", "--keep-open"]
    first = runner.invoke(app, args, input="Ada\n")
    assert first.exit_code == 0
    assert "call" not in first.stderr  # no outcome: the call is still open
    second = runner.invoke(app, args, input="415 555 0134\n")
    assert second.exit_code == 0
    assert "(resuming call c1)" in second.stderr
    assert second.stdout.splitlines() == ["And your email address?"]
