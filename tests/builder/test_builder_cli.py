"""`switchboard diff` (text and JSON) and `switchboard log` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder import versions
from builder.document import GraphDocument
from runtime.cli import app

runner = CliRunner()


@pytest.fixture
def edited(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The dental graph with a committed second version (greeting text) and an
    uncommitted change (ask_day prompt); SWITCHBOARD_GRAPHS_DIR points at it."""
    monkeypatch.setenv("SWITCHBOARD_GRAPHS_DIR", str(repo / "graphs"))
    path = repo / "graphs" / "dental-booking.yaml"
    doc = GraphDocument.open(path)
    doc.update_node("greeting", {"text": "Hi!"})
    doc.save()
    versions.commit_file(path, "Short greeting")
    versions.tag_release(path, "v2")
    doc.update_node("ask_day", {"prompt": "Which day?"})
    doc.save()
    return path


def test_diff_defaults_to_head_against_the_working_copy(edited: Path) -> None:
    done = runner.invoke(app, ["diff", "dental-booking"])
    assert done.exit_code == 0, done.output
    assert "dental-booking.yaml: HEAD -> working copy" in done.output
    assert "~ node ask_day changed" in done.output
    assert '    prompt: "Which day suits you?" -> "Which day?"' in done.output
    assert "greeting" not in done.output


def test_diff_between_two_revisions_as_json(edited: Path) -> None:
    done = runner.invoke(app, ["diff", str(edited), "HEAD~1", "v2", "--format", "json"])
    assert done.exit_code == 0, done.output
    body = json.loads(done.output)
    assert body["rev_a"] == "HEAD~1" and body["rev_b"] == "v2"
    assert body["highlights"] == {"greeting": "changed"}
    [node] = body["nodes"]["changed"]
    assert node["fields"] == [
        {
            "path": "text",
            "old": "Thanks for calling {clinic}. How can I help you today?",
            "new": "Hi!",
        }
    ]


def test_diff_errors_are_clear(edited: Path) -> None:
    done = runner.invoke(app, ["diff", "dental-booking", "no-such-tag"])
    assert done.exit_code == 2
    assert "unknown revision 'no-such-tag'" in done.output
    done = runner.invoke(app, ["diff", "dental-booking", "--format", "xml"])
    assert done.exit_code == 2


def test_log_lists_versions(edited: Path) -> None:
    done = runner.invoke(app, ["log", "dental-booking"])
    assert done.exit_code == 0, done.output
    lines = done.output.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("Dana Designer: Short greeting (v2)")
    assert lines[1].endswith("Dana Designer: first version")
    rows = json.loads(runner.invoke(app, ["log", str(edited), "--format", "json"]).output)
    assert [r["message"] for r in rows] == ["Short greeting", "first version"]
    assert rows[0]["tags"] == ["v2"] and len(rows[0]["commit"]) == 40


def test_log_outside_a_repository(tmp_path: Path, git_env: None) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("id: g\n")
    done = runner.invoke(app, ["log", str(path)])
    assert done.exit_code == 2
    assert "not inside a git repository" in done.output
