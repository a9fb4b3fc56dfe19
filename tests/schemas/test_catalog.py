"""The graph catalogue: ids come from file contents, and a reference from a
graph file can never make it read outside its directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.catalog import GraphCatalog, default_graphs_dir
from schemas.diagnostics import GraphError

GRAPH = """\
schema: switchboard/v1
id: {id}
name: {id}
start: bye
nodes:
  bye: {{type: end, text: Bye from {id}.}}
"""


def put(directory: Path, filename: str, graph_id: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(GRAPH.format(id=graph_id), encoding="utf-8")
    return path


@pytest.fixture
def graphs(tmp_path: Path) -> Path:
    inner = tmp_path / "agents" / "graphs"
    put(inner, "main-desk.yaml", "front-desk")
    put(inner, "b.yml", "billing")
    (inner / "c.json").write_text(
        '{"schema": "switchboard/v1", "id": "json-agent", "name": "J", "start": "e",'
        ' "nodes": {"e": {"type": "end"}}}',
        encoding="utf-8",
    )
    put(inner, ".hidden.yaml", "hidden")
    put(inner, "notes.txt", "not-a-graph-file")
    (inner / "broken.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    (inner / "tests").mkdir()
    put(inner / "tests", "nested.yaml", "nested")
    # Valid graphs outside the catalogue's directory.
    put(tmp_path / "agents", "outside.yaml", "outside")
    put(tmp_path, "passwd", "passwd")
    return inner


def test_ids_come_from_file_contents_not_file_names(graphs: Path) -> None:
    catalog = GraphCatalog(graphs)
    assert catalog.ids() == ["billing", "front-desk", "json-agent"]
    assert catalog.index()["front-desk"] == graphs / "main-desk.yaml"
    assert catalog.resolve("front-desk").id == "front-desk"
    with pytest.raises(KeyError):
        catalog.resolve("main-desk")


def test_hidden_nested_broken_and_other_files_are_not_indexed(graphs: Path) -> None:
    catalog = GraphCatalog(graphs)
    names = [p.name for p in catalog.files()]
    assert names == ["b.yml", "broken.yaml", "c.json", "main-desk.yaml"]
    for graph_id in ("hidden", "nested", "not-a-graph-file", "broken"):
        with pytest.raises(KeyError):
            catalog.resolve(graph_id)


@pytest.mark.parametrize(
    "ref",
    [
        "../outside",
        "../outside.yaml",
        "../../passwd",
        "../../../../../../etc/passwd",
        "/etc/passwd",
        "outside",
        "passwd",
        "tests/nested",
        "tests/nested.yaml",
        "./main-desk.yaml",
        "main-desk.yaml",
        "",
        ".",
        "..",
    ],
)
def test_a_reference_cannot_reach_outside_the_directory(graphs: Path, ref: str) -> None:
    catalog = GraphCatalog(graphs)
    with pytest.raises(KeyError):
        catalog.resolve(ref)
    assert all(p.parent == graphs for p in catalog._loaded)


def test_an_absolute_path_to_a_real_graph_is_not_a_reference(graphs: Path) -> None:
    outside = graphs.parent / "outside.yaml"
    with pytest.raises(KeyError):
        GraphCatalog(graphs).resolve(str(outside))


def test_a_pinned_version_needs_the_git_catalogue(graphs: Path) -> None:
    with pytest.raises(GraphError) as info:
        GraphCatalog(graphs).resolve("billing@v2")
    assert [d.code for d in info.value.diagnostics] == ["E209"]


def test_the_first_file_wins_a_duplicated_id(tmp_path: Path) -> None:
    put(tmp_path, "a.yaml", "same")
    put(tmp_path, "b.yaml", "same")
    assert GraphCatalog(tmp_path).index() == {"same": tmp_path / "a.yaml"}


def test_files_are_loaded_once(graphs: Path) -> None:
    catalog = GraphCatalog(graphs)
    first = catalog.resolve("billing")
    (graphs / "b.yml").write_text("garbage: [\n", encoding="utf-8")
    assert catalog.resolve("billing") is first


def test_a_missing_directory_is_an_empty_catalogue(tmp_path: Path) -> None:
    catalog = GraphCatalog(tmp_path / "nope")
    assert catalog.ids() == []
    with pytest.raises(KeyError):
        catalog.resolve("anything")


def test_the_default_directory_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_GRAPHS_DIR", str(tmp_path))
    assert default_graphs_dir() == tmp_path
    monkeypatch.delenv("SWITCHBOARD_GRAPHS_DIR")
    assert default_graphs_dir() == Path("graphs")
