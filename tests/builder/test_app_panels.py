"""The builder app's files, versions and test-call panels (Streamlit AppTest)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from builder.views.session import KEY as EDITOR_KEY

APP = str(Path(__file__).resolve().parents[2] / "builder" / "app.py")
TIMEOUT = 120  # generous: the machine is shared; AppTest runs are not timed


def start(directory: Path, monkeypatch: pytest.MonkeyPatch, graph: str) -> AppTest:
    monkeypatch.setenv("SWITCHBOARD_GRAPHS_DIR", str(directory))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["graph"] = graph
    at.run()
    assert not at.exception
    return at


def widget(elements: Any, label: str) -> Any:
    found = [w for w in elements if w.label == label]
    assert found, f"no widget labelled {label!r}"
    return found[0]


def click(at: AppTest, label: str) -> None:
    widget(at.button, label).click().run()
    assert not at.exception, at.exception


def texts(at: AppTest) -> str:
    parts = [*at.markdown, *at.caption, *at.success, *at.error, *at.warning, *at.info, *at.code]
    return "\n".join(str(p.value) for p in parts)


def open_file_name(at: AppTest) -> str:
    ed = at.session_state[EDITOR_KEY]
    return ed.path.name


def test_files_create_duplicate_rename_delete(
    dental_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graphs = dental_file.parent
    at = start(graphs, monkeypatch, "dental-booking")
    at.sidebar.text_input(key="files.new.name").input("date-of-birth").run()
    at.sidebar.selectbox(key="files.new.template").select("blank").run()
    click(at, "Create")
    assert (graphs / "date-of-birth.yaml").is_file()
    assert open_file_name(at) == "date-of-birth.yaml"
    at.sidebar.text_input(key="files.copy.name").input("dob-copy").run()
    click(at, "Duplicate")
    assert (graphs / "dob-copy.yaml").is_file() and open_file_name(at) == "dob-copy.yaml"
    assert "id: dob-copy" in (graphs / "dob-copy.yaml").read_text("utf-8")
    at.sidebar.text_input(key="files.copy.name").input("dob-second").run()
    click(at, "Rename")
    assert not (graphs / "dob-copy.yaml").exists() and (graphs / "dob-second.yaml").is_file()
    # delete needs the file name typed back
    at.sidebar.text_input(key="files.delete.confirm").input("wrong").run()
    click(at, "Delete")
    assert (graphs / "dob-second.yaml").is_file()
    assert any("confirm" in e.value for e in at.sidebar.error)
    at.sidebar.text_input(key="files.delete.confirm").input("dob-second.yaml").run()
    click(at, "Delete")
    assert not (graphs / "dob-second.yaml").exists()
    # a name with a path in it is refused with a message, nothing written
    at.sidebar.text_input(key="files.new.name").input("../escape").run()
    click(at, "Create")
    assert any("not a graph file name" in e.value for e in at.sidebar.error)
    assert not (graphs.parent / "escape.yaml").exists()


def test_versions_commit_diff_restore_and_tag(
    repo: Path, git: Callable[..., str], dental_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start(dental_file.parent, monkeypatch, "dental-booking")
    assert "first version" in str(at.dataframe[0].value)
    # edit, save, commit
    widget(at.selectbox, "Edit").select("hours").run()
    widget(at.text_area, "text *").input("Open 8 to 6 on weekdays.").run()
    click(at, "Save")
    widget(at.text_input, "Commit message").input("Longer hours").run()
    click(at, "Commit")
    assert git(repo, "log", "-1", "--format=%s") == "Longer hours"
    assert "Longer hours" in str(at.dataframe[0].value)
    # semantic diff of the previous version against the working copy
    versions = widget(at.selectbox, "From").options
    widget(at.selectbox, "From").select(next(o for o in versions if "first version" in o)).run()
    click(at, "Show differences")
    shown = texts(at)
    assert "~ node hours changed" in shown and "Open 8 to 6 on weekdays." in shown
    ed = at.session_state[EDITOR_KEY]
    assert ed.diff == {"hours": "changed"}
    assert ed.flow is not None
    hours = next(n for n in ed.flow.nodes if n.id == "hours")
    assert "changed" in hours.data["content"]
    # tag, then restore the first version as a new commit
    first = next(o for o in widget(at.selectbox, "Version").options if "first version" in o)
    widget(at.selectbox, "Version").select(first).run()
    widget(at.text_input, "Tag name").input("v1").run()
    click(at, "Tag this version")
    assert git(repo, "tag", "--list") == "v1"
    click(at, "Restore as a new commit")
    assert git(repo, "log", "-1", "--format=%s").startswith("Restore dental-booking.yaml")
    assert "Monday to Friday from 9 to 5" in dental_file.read_text("utf-8")
    assert int(git(repo, "rev-list", "--count", "HEAD")) == 3


def test_versions_panel_outside_a_repository_offers_init(
    dental_file: Path, git: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIT_CEILING_DIRECTORIES keeps git from finding a repository above tmp_path
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(dental_file.parent.parent))
    at = start(dental_file.parent, monkeypatch, "dental-booking")
    assert "not in a git repository" in texts(at)
    click(at, "Start a git repository here")
    assert (dental_file.parent / ".git").is_dir()
    assert "No commits of this file yet." in texts(at)
    _ = subprocess  # git runs through builder.versions


def test_test_call_shows_agent_lines_nodes_and_slots(
    dental_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start(dental_file.parent, monkeypatch, "dental-booking")
    click(at, "Start test call")
    shown = texts(at)
    assert "How can I help you today?" in "\n".join(
        str(m.value) for msg in at.chat_message for m in msg.markdown
    )
    assert "nodes greeting" in shown
    at.chat_input[0].set_value("I need a cleaning").run()
    assert not at.exception
    lines = "\n".join(str(m.value) for msg in at.chat_message for m in msg.markdown)
    assert "I need a cleaning" in lines
    assert "intent book" in texts(at)
    ed = at.session_state[EDITOR_KEY]
    assert ed.call_path[:2] == ["greeting", "route"] and "ask_day" in ed.call_path
    assert any(e.animated for e in ed.flow.edges)  # the path lights up on the canvas
    click(at, "Hang up")
    assert "Call ended." in texts(at)


def test_conversation_tests_run_from_the_panel(monkeypatch: pytest.MonkeyPatch) -> None:
    graphs = Path(__file__).resolve().parents[2] / "graphs"
    at = start(graphs, monkeypatch, "router-support")
    click(at, "Run conversation tests")
    assert any(s.value.startswith("PASS") for s in at.success), texts(at)
    assert not [e.value for e in at.error if e.value.startswith("FAIL")]
