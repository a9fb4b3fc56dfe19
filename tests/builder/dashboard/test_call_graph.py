"""Which graph a recorded call's path is drawn on: the file as it was at the
call (from git when it has changed since), else the current one with a note."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from builder.dashboard.call_graph import call_graph, graph_index
from runtime.db.agent_version import describe_graph_file
from tests.builder.dashboard.dashdb import GRAPHS


def _graphs(tmp_path: Path) -> Path:
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    shutil.copy(GRAPHS / "dental-booking.yaml", graphs)
    shutil.copy(GRAPHS / "tools.yaml", graphs)
    return graphs


def test_a_changed_file_is_drawn_as_it_was_at_the_call(
    git: Callable[..., str], tmp_path: Path
) -> None:
    graphs = _graphs(tmp_path)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    file = graphs / "dental-booking.yaml"
    version = describe_graph_file(file, graph_id="dental-booking")
    assert version.git_commit is not None
    file.write_text(file.read_text().replace("Thanks for calling", "Hello from"))
    index = graph_index(graphs)

    then = call_graph(
        index,
        "dental-booking",
        ["greeting", "route"],
        content_hash=version.content_hash,
        git_commit=version.git_commit,
    )
    assert then.document is not None
    assert then.document["nodes"]["greeting"]["text"].startswith("Thanks for calling")
    assert then.source == f"dental-booking.yaml at commit {version.git_commit[:10]}"
    assert "has changed since this call" in then.notes[0]
    assert then.missing == []

    # without a commit the old version cannot be found: the current file, with a warning
    now = call_graph(index, "dental-booking", ["greeting"], content_hash=version.content_hash)
    assert now.document is not None
    assert now.document["nodes"]["greeting"]["text"].startswith("Hello from")
    assert "not in git" in now.notes[0]


def test_unchanged_missing_and_unknown(tmp_path: Path) -> None:
    graphs = _graphs(tmp_path)
    current = hashlib.sha256((graphs / "dental-booking.yaml").read_bytes()).hexdigest()
    index = graph_index(graphs)
    same = call_graph(index, "dental-booking", ["greeting", "gone_node"], content_hash=current)
    assert same.source == "dental-booking.yaml (current)"
    assert same.missing == ["gone_node"]
    assert same.notes == ["Visited nodes not in the drawn graph: gone_node."]
    nothing = call_graph(index, "billing-support", ["start"])
    assert nothing.document is None and nothing.path == ["start"]
    assert "No graph file for agent 'billing-support'" in nothing.notes[0]
    assert graph_index(tmp_path / "nowhere") == {}
