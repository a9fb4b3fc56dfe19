"""The graphs directory (`SWITCHBOARD_GRAPHS_DIR`, default `graphs/`): list, create
from a template, duplicate, rename and delete graph files.

Names given by the user never become paths as they are: `graph_path` accepts a
bare file name (letters, digits, `_` and `-`, optionally ending in `.yaml`,
`.yml` or `.json`), joins it to the directory and checks that the result is a
file directly inside it and not a symlink, so `..`, absolute paths, separators,
control characters and links can never read or write outside the directory.
Every function raises `GraphFileError` with a plain message on bad input.

API: `graphs_dir()`, `graph_path(name, directory)`, `list_graphs(directory)`,
`templates()`, `create_graph(name, template=..., title=..., directory=...)`,
`duplicate_graph(name, new_name, directory=...)`,
`rename_graph(name, new_name, directory=...)`,
`delete_graph(name, confirm=..., directory=...)`. All are blocking file I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from builder.document import DRAFT_MARKER, DocumentError, GraphDocument
from schemas.catalog import GRAPH_SUFFIXES, TOOL_FILE_NAMES, GraphCatalog, default_graphs_dir
from schemas.loader import load_graph_file

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
#: A new graph with one greeting and a goodbye (comments show where to go on).
BLANK_TEMPLATE = """\
# A new call flow: the caller hears the greeting, then the call ends.
# Add steps between them on the canvas.
schema: switchboard/v1
id: {id}
name: {title}
start: greeting
nodes:
  greeting:
    type: say
    text: Hello, thanks for calling.
    next: goodbye
  goodbye:
    type: end
    text: Goodbye!
"""


class GraphFileError(Exception):
    """A name is not allowed, a file is missing or already exists, or the
    confirmation does not match; the message says which."""


@dataclass(frozen=True)
class GraphFile:
    """One graph file: its file name and path, the graph's id and name when the
    file loads, whether it loads without errors, and whether it is a draft."""

    file_name: str
    path: Path
    graph_id: str | None
    title: str | None
    ok: bool
    draft: bool


def graphs_dir() -> Path:
    """The graphs directory (SWITCHBOARD_GRAPHS_DIR, default `graphs`), absolute."""
    return default_graphs_dir().resolve()


def _directory(directory: str | Path | None) -> Path:
    where = Path(directory).resolve() if directory is not None else graphs_dir()
    if not where.is_dir():
        raise GraphFileError(f"the graphs directory {where} does not exist")
    return where


def graph_path(
    name: str, directory: str | Path | None = None, *, exists: bool | None = None
) -> Path:
    """The path of graph file `name` inside the directory (`.yaml` added when the
    name has no suffix). `exists` True/False also requires the file to exist or
    not. GraphFileError for any name that is not a plain file name."""
    where = _directory(directory)
    if not isinstance(name, str):
        raise GraphFileError("a graph file name must be text")
    stem, suffix = name, ".yaml"
    for known in GRAPH_SUFFIXES:
        if name.endswith(known):
            stem, suffix = name[: -len(known)], known
            break
    if not _NAME.fullmatch(stem):
        raise GraphFileError(
            f"{name!r} is not a graph file name: use letters, digits, '_' and '-' "
            "(no paths), optionally ending in .yaml, .yml or .json"
        )
    file_name = stem + suffix
    if file_name in TOOL_FILE_NAMES:
        raise GraphFileError(f"{file_name} declares tools; it is not a graph file")
    path = where / file_name
    if path.is_symlink() or path.resolve().parent != where:
        raise GraphFileError(f"{file_name} is a link out of the graphs directory; refused")
    if exists is True and not path.is_file():
        raise GraphFileError(f"no graph file {file_name} in {where}")
    if exists is False and path.exists():
        raise GraphFileError(f"{file_name} already exists in {where}")
    return path


def list_graphs(directory: str | Path | None = None) -> list[GraphFile]:
    """Every graph file of the directory, by file name."""
    out = []
    for path in GraphCatalog(_directory(directory)).files():
        if path.is_symlink():
            continue
        loaded = load_graph_file(path)
        doc = loaded.document if isinstance(loaded.document, dict) else {}
        graph_id, title = doc.get("id"), doc.get("name")
        with path.open("rb") as fh:
            draft = fh.read(len(DRAFT_MARKER)).decode("utf-8", "replace") == DRAFT_MARKER
        out.append(
            GraphFile(
                file_name=path.name,
                path=path,
                graph_id=graph_id if isinstance(graph_id, str) else None,
                title=title if isinstance(title, str) else None,
                ok=loaded.ok,
                draft=draft,
            )
        )
    return out


def templates() -> list[str]:
    """Template names: `blank` and the example graphs shipped with Switchboard."""
    examples = sorted(
        p.name.rsplit(".", 1)[0]
        for p in resources.files("graphs").iterdir()
        if p.name.endswith(".yaml") and p.name not in TOOL_FILE_NAMES
    )
    return ["blank", *examples]


def _template_text(template: str, graph_id: str, title: str) -> str:
    if template == "blank":
        return BLANK_TEMPLATE.format(id=graph_id, title=title)
    if template not in templates():
        raise GraphFileError(f"no template {template!r}; templates: {', '.join(templates())}")
    return resources.files("graphs").joinpath(f"{template}.yaml").read_text("utf-8")


def _graph_id_for(stem: str) -> str:
    graph_id = re.sub(r"[^a-z0-9_-]", "-", stem.lower()).lstrip("-_") or "graph"
    return graph_id


def _retitle(text: str, file: str, graph_id: str, title: str | None) -> str:
    try:
        doc = GraphDocument(text, file)
        doc.set_setting("id", graph_id)
        if title is not None:
            doc.set_setting("name", title)
    except DocumentError as exc:
        raise GraphFileError(str(exc)) from None
    return doc.text


def create_graph(
    name: str,
    *,
    template: str = "blank",
    title: str | None = None,
    directory: str | Path | None = None,
) -> Path:
    """Create graph file `name` from `template` (see `templates()`), with the
    graph id taken from the file name and `title` as its name."""
    path = graph_path(name, directory, exists=False)
    stem = path.name.rsplit(".", 1)[0]
    graph_id = _graph_id_for(stem)
    shown = title or stem.replace("-", " ").replace("_", " ").capitalize()
    text = _retitle(_template_text(template, graph_id, shown), path.name, graph_id, shown)
    _write_new(path, text)
    return path


def duplicate_graph(name: str, new_name: str, *, directory: str | Path | None = None) -> Path:
    """Copy graph file `name` to `new_name`, giving the copy the id of its new
    file name (comments and layout kept)."""
    source = graph_path(name, directory, exists=True)
    target = graph_path(new_name, directory, exists=False)
    text = source.read_text("utf-8")
    stem = target.name.rsplit(".", 1)[0]
    _write_new(target, _retitle(text, target.name, _graph_id_for(stem), None))
    return target


def rename_graph(name: str, new_name: str, *, directory: str | Path | None = None) -> Path:
    """Rename graph file `name` to `new_name` (the graph id inside is kept, so
    handoffs to it still work)."""
    source = graph_path(name, directory, exists=True)
    target = graph_path(new_name, directory, exists=False)
    source.rename(target)
    return target


def delete_graph(name: str, *, confirm: str, directory: str | Path | None = None) -> None:
    """Delete graph file `name`; `confirm` must repeat its file name (as shown by
    `list_graphs`) or the name given."""
    path = graph_path(name, directory, exists=True)
    if confirm not in (name, path.name):
        raise GraphFileError(f"type {path.name!r} to confirm deleting it")
    path.unlink()


def _write_new(path: Path, text: str) -> None:
    try:
        with path.open("x", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except FileExistsError:
        raise GraphFileError(f"{path.name} already exists") from None
