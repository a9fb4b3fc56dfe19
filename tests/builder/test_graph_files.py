"""The graphs directory: list, create from a template, duplicate, rename, delete,
and names that would reach outside the directory refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.files import (
    GraphFileError,
    create_graph,
    delete_graph,
    duplicate_graph,
    graph_path,
    list_graphs,
    rename_graph,
    templates,
)
from schemas.loader import load_graph_file


def test_list_shows_graphs_but_not_the_tools_file(dental_file: Path) -> None:
    (dental_file.parent / "broken.yaml").write_text("schema: switchboard/v1\nid: broken\n")
    found = {g.file_name: g for g in list_graphs(dental_file.parent)}
    assert sorted(found) == ["broken.yaml", "dental-booking.yaml"]
    assert found["dental-booking.yaml"].graph_id == "dental-booking"
    assert found["dental-booking.yaml"].ok and not found["broken.yaml"].ok


def test_create_from_templates(tmp_path: Path) -> None:
    assert templates()[0] == "blank" and "dental-booking" in templates()
    blank = create_graph("my-flow", directory=tmp_path, title="My flow")
    spec = load_graph_file(blank).spec
    assert spec is not None and (spec.id, spec.name) == ("my-flow", "My flow")
    copied = create_graph("clinic.yaml", template="dental-booking", directory=tmp_path)
    text = copied.read_text()
    assert text.startswith("# Bright Smiles dental front desk")  # comments kept
    assert "\nid: clinic\n" in text
    with pytest.raises(GraphFileError, match="already exists"):
        create_graph("clinic", directory=tmp_path)
    with pytest.raises(GraphFileError, match="no template 'nope'"):
        create_graph("other", template="nope", directory=tmp_path)


def test_duplicate_rename_delete(dental_file: Path) -> None:
    where = dental_file.parent
    copy = duplicate_graph("dental-booking", "dental-copy", directory=where)
    assert "\nid: dental-copy\n" in copy.read_text()
    moved = rename_graph("dental-copy.yaml", "dental-two", directory=where)
    assert moved.name == "dental-two.yaml" and not copy.exists()
    assert "\nid: dental-copy\n" in moved.read_text()  # the id stays for handoffs
    with pytest.raises(GraphFileError, match="to confirm"):
        delete_graph("dental-two", confirm="yes", directory=where)
    assert moved.exists()
    delete_graph("dental-two", confirm="dental-two.yaml", directory=where)
    assert not moved.exists()
    with pytest.raises(GraphFileError, match="no graph file"):
        delete_graph("dental-two", confirm="dental-two", directory=where)


@pytest.mark.parametrize(
    "name",
    [
        "../outside",
        "..",
        "/etc/passwd",
        "sub/graph",
        "sub\\graph",
        "graph.yaml/..",
        ".hidden",
        "a b",
        "nul\x00",
        "x" * 300,
        "",
        "tools.yaml",
        "graph.txt",
    ],
)
def test_names_outside_the_directory_are_refused(tmp_path: Path, name: str) -> None:
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    (tmp_path / "outside.yaml").write_text("secret")
    with pytest.raises(GraphFileError):
        graph_path(name, graphs)
    with pytest.raises(GraphFileError):
        create_graph(name, directory=graphs)
    with pytest.raises(GraphFileError):
        delete_graph(name, confirm=name, directory=graphs)
    assert (tmp_path / "outside.yaml").read_text() == "secret"
    assert os.listdir(graphs) == []


def test_links_out_of_the_directory_are_refused(tmp_path: Path, dental_file: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("secret")
    (dental_file.parent / "link.yaml").symlink_to(secret)
    with pytest.raises(GraphFileError, match="link"):
        duplicate_graph("link", "copied", directory=dental_file.parent)
    with pytest.raises(GraphFileError, match="link"):
        delete_graph("link", confirm="link", directory=dental_file.parent)
    assert "link.yaml" not in {g.file_name for g in list_graphs(dental_file.parent)}
    assert secret.read_text() == "secret"
