"""Handoff targets pinned to a git ref (`graph: helper@v1`): reading a graph file as
committed at a tag, branch or commit (by its id, not its file name), clear errors,
and a call in which the pinned and the working-copy versions of one graph id run
side by side, each commit recorded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from runtime.compiler import compile_call
from runtime.gitrefs import GitRefError, check_ref, snapshot
from schemas.catalog import GraphCatalog
from schemas.diagnostics import GraphError
from schemas.spec import PinnedGraphSpec
from schemas.validate import validate_file
from tests.runtime.fixtures.calls import exact_intents, of_type, said, session

ROOT = """\
schema: switchboard/v1
id: root
name: Root
start: menu
nodes:
  menu:
    type: route
    prompt: Old or new?
    intents:
      old: {examples: [the old one, old please], next: to_old}
      new: {examples: [the new one, new please], next: to_new}
      done: {examples: [nothing else, all done], next: bye}
    fallback: menu
  to_old: {type: handoff, graph: helper@v1, return_to: menu}
  to_new: {type: handoff, graph: helper, return_to: menu}
  bye: {type: end, text: Bye.}
"""


def helper(line: str) -> str:
    return f"""\
schema: switchboard/v1
id: helper
name: Helper
start: speak
nodes:
  speak: {{type: say, text: "{line}", next: back}}
  back: {{type: return, otherwise: done}}
  done: {{type: end}}
"""


#: A fixed identity and no signing, whatever the machine's git configuration says.
IDENTITY = (
    *("-c", "user.name=T", "-c", "user.email=t@example.com"),
    *("-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"),
)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *IDENTITY, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose graphs/ held helper v1 (tagged, in a file named
    differently from its id), then helper v2 (committed on main), and now an
    uncommitted working copy saying "version three"."""
    git(tmp_path, "init", "-q", "-b", "main")
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    (graphs / "root.yaml").write_text(ROOT)
    (graphs / "old-name.yaml").write_text(helper("version one"))
    (graphs / "notes.txt").write_text("not a graph")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "v1")
    git(tmp_path, "tag", "v1")
    git(tmp_path, "mv", "graphs/old-name.yaml", "graphs/helper.yaml")
    (graphs / "helper.yaml").write_text(helper("version two"))
    git(tmp_path, "commit", "-q", "-am", "v2")
    (graphs / "helper.yaml").write_text(helper("version three"))
    return tmp_path


def test_snapshot_lists_the_graph_files_of_the_directory_at_the_ref(repo: Path) -> None:
    snap = snapshot(repo / "graphs", "v1")
    assert snap.commit == git(repo, "rev-parse", "v1^{commit}")
    assert snap.prefix == "graphs/"
    assert sorted(f.path for f in snap.files) == ["graphs/old-name.yaml", "graphs/root.yaml"]
    by_path = {f.path: f.data for f in snap.files}
    assert b"version one" in by_path["graphs/old-name.yaml"]
    assert snapshot(repo / "graphs", "main").commit == git(repo, "rev-parse", "main")
    short = git(repo, "rev-parse", "--short", "v1")
    assert snapshot(repo / "graphs", short).commit == snap.commit


def test_the_catalog_finds_a_pinned_graph_by_its_id_not_its_file_name(repo: Path) -> None:
    catalog = GraphCatalog(repo / "graphs")
    old = catalog.resolve("helper@v1")
    assert isinstance(old, PinnedGraphSpec)
    assert (old.id, old.ref, old.path) == ("helper", "v1", "graphs/old-name.yaml")
    assert old.commit == git(repo, "rev-parse", "v1")
    assert catalog.resolve("helper@v1") is old  # read from git once
    main = catalog.resolve("helper@main")
    assert isinstance(main, PinnedGraphSpec) and main.path == "graphs/helper.yaml"
    assert "version two" in str(main.nodes["speak"])
    assert "version three" in str(catalog.resolve("helper").nodes["speak"])


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("helper@v9", "unknown git ref 'v9'"),
        ("nobody@v1", "no graph file in graphs/ has id 'nobody' at v1"),
    ],
)
def test_unknown_refs_and_ids_are_E209_with_the_reason(repo: Path, ref: str, expected: str) -> None:
    with pytest.raises(GraphError) as info:
        GraphCatalog(repo / "graphs").resolve(ref)
    [d] = info.value.diagnostics
    assert d.code == "E209" and expected in d.message


def test_outside_a_repository_a_pinned_graph_is_E209(tmp_path: Path) -> None:
    (tmp_path / "helper.yaml").write_text(helper("x"))
    with pytest.raises(GraphError) as info:
        GraphCatalog(tmp_path).resolve("helper@v1")
    [d] = info.value.diagnostics
    assert d.code == "E209" and "is not inside a git repository" in d.message


def test_an_invalid_graph_at_the_ref_reports_its_own_diagnostics(repo: Path) -> None:
    (repo / "graphs" / "helper.yaml").write_text(helper("v4").replace("start: speak", "start: 7"))
    git(repo, "commit", "-q", "-am", "broken")
    git(repo, "tag", "broken")
    with pytest.raises(GraphError) as info:
        GraphCatalog(repo / "graphs").resolve("helper@broken")
    d = info.value.diagnostics[0]
    assert d.file == "graphs/helper.yaml@broken" and d.code == "E111" and d.line == 4


@pytest.mark.parametrize("ref", ["-rf", "a..b", "x y", "v1;ls", "", "HEAD.lock", "x" * 300])
def test_malformed_refs_are_refused_before_git_runs(ref: str) -> None:
    with pytest.raises(GitRefError, match="not a valid git tag, branch or commit name"):
        check_ref(ref)


def test_validate_checks_pinned_targets(repo: Path) -> None:
    root = repo / "graphs" / "root.yaml"
    assert [d for d in validate_file(root).diagnostics if d.severity == "error"] == []
    root.write_text(ROOT.replace("helper@v1", "helper@v9"))
    [d] = [d for d in validate_file(root).diagnostics if d.severity == "error"]
    assert (d.code, d.node, d.pointer) == ("E209", "to_old", "/nodes/to_old/graph")
    assert "unknown git ref 'v9'" in d.message


async def test_pinned_and_working_copy_versions_run_side_by_side_in_one_call(
    repo: Path,
) -> None:
    catalog = GraphCatalog(repo / "graphs")
    compiled = compile_call(
        catalog.resolve("root"),
        resolve=catalog.resolve,
        checkpointer=InMemorySaver(),
        intent_sets=exact_intents,
    )
    assert set(compiled.agents) == {"root", "helper@v1", "helper"}
    call = session(compiled)
    await call.start()
    events = await call.send("the old one")
    assert said(events) == ["version one", "Old or new?"]
    [to_old, back] = of_type(events, "handoff")
    commit = git(repo, "rev-parse", "v1")
    assert (to_old["to"], to_old["commit"]) == ("helper@v1", commit)
    assert (back["from"], back["to"], back["kind"]) == ("helper@v1", "root", "return")
    events = await call.send("the new one")
    assert said(events) == ["version three", "Old or new?"]
    await call.send("all done")
    state = await call.state()
    assert state["agents"] == ["root", "helper@v1", "root", "helper", "root"]
    assert state["agent_commits"] == {"helper@v1": commit}
    assert "helper@v1/speak" in state["visited"] and "helper/speak" in state["visited"]
    assert state["outcome"] == "completed"
