"""Names and paths: graph ids, file names and git revisions holding `..`,
absolute paths, separators, option-like or odd characters never read or write
outside the graphs directory — through the REST API, the voice WebSocket, the
builder's file operations and the CLI."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from builder.files import (
    GraphFileError,
    create_graph,
    delete_graph,
    duplicate_graph,
    graph_path,
    rename_graph,
)
from reliability.report import record_surface
from runtime.cli import app
from runtime.service import ServiceSettings, create_app

REPO_GRAPHS = Path(__file__).resolve().parents[2] / "graphs"

HOSTILE_NAMES = [
    "..",
    "../outside",
    "../outside.yaml",
    "../../etc/passwd",
    "/etc/passwd",
    "/tmp/outside.yaml",
    "sub/dir.yaml",
    "..\\outside",
    "C:\\windows\\win.ini",
    "outside\x00.yaml",
    "front-desk\n",
    " front-desk",
    "-rf",
    "--output=/tmp/pwned",
    "~root/.ssh/id_rsa",
    "%2e%2e%2foutside",
    "tools.yaml",
    "tools",
    "link-out",
    "ａｂｃ",  # full-width letters
    "x" * 300,
    "",
]
HOSTILE_REVS = ["--output=/tmp/pwned-rev", "-p", "HEAD;touch /tmp/pwned", "../../x", "@{-1}", ""]

TRIED: Counter[str] = Counter()
REFUSED: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    for surface, tried in TRIED.items():
        record_surface(f"names-{surface}", tried=tried, refused=REFUSED[surface])


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A graphs directory with the example graphs, a sibling `outside.yaml`
    holding a valid graph, and a symlink from the directory to it."""
    graphs = tmp_path / "graphs"
    shutil.copytree(REPO_GRAPHS, graphs, ignore=shutil.ignore_patterns("tests", "__*"))
    outside = tmp_path / "outside.yaml"
    outside.write_text((graphs / "front-desk.yaml").read_text().replace("front-desk", "outside"))
    (graphs / "link-out.yaml").symlink_to(outside)
    return graphs, outside


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_builder_file_operations_refuse_hostile_names(layout: tuple[Path, Path]) -> None:
    graphs, outside = layout
    before = _snapshot(graphs.parent)
    for name in HOSTILE_NAMES:
        for op in (
            lambda n: graph_path(n, graphs, exists=True),
            lambda n: create_graph(n, directory=graphs),
            lambda n: duplicate_graph("front-desk", n, directory=graphs),
            lambda n: duplicate_graph(n, "copy-of-it", directory=graphs),
            lambda n: rename_graph(n, "renamed", directory=graphs),
            lambda n: rename_graph("front-desk", n, directory=graphs),
            lambda n: delete_graph(n, confirm=n, directory=graphs),
        ):
            with pytest.raises(GraphFileError):
                op(name)
            TRIED["builder-files"] += 1
            REFUSED["builder-files"] += 1
    assert _snapshot(graphs.parent) == before
    assert outside.exists() and not Path("/tmp/pwned").exists()


def test_api_and_websocket_resolve_ids_only_inside_the_graphs_directory(
    layout: tuple[Path, Path],
) -> None:
    graphs, _outside = layout
    settings = ServiceSettings(
        jwt_secret=SecretStr("p" * 48),
        admin_user="admin",
        admin_password=SecretStr("pw-for-paths"),
        graphs_dir=graphs,
        checkpoint_url="memory://",
        database_url=f"sqlite:///{graphs.parent / 'calls.db'}",
        redis_url=None,
        call_start_rate_limit="100000/minute",
    )
    before = _snapshot(graphs)
    ids = [*HOSTILE_NAMES, "outside", *(f"front-desk@{rev}" for rev in HOSTILE_REVS)]
    with TestClient(create_app(settings)) as client:
        login = client.post(
            "/api/auth/login", json={"username": "admin", "password": "pw-for-paths"}
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        for agent in ids:
            r = client.post("/api/calls", json={"agent": agent}, headers=headers)
            # "outside" is a valid graph, but only through a link out of the directory.
            assert r.status_code in (404, 422, 503), (agent, r.status_code, r.text)
            TRIED["api"] += 1
            REFUSED["api"] += 1
        for agent in ("../outside", "outside", "/etc/passwd", "link-out"):
            with (
                pytest.raises(WebSocketDisconnect) as closed,
                client.websocket_connect(
                    "/ws/call/ws-path-1", params={"graph": agent}, headers=headers
                ) as ws,
            ):
                ws.receive_text()
            assert closed.value.code == 4404, (agent, closed.value.code)
            TRIED["websocket"] += 1
            REFUSED["websocket"] += 1
        assert client.get("/api/agents", headers=headers).status_code == 200
        listed = {a["id"] for a in client.get("/api/agents", headers=headers).json()}
    assert "outside" not in listed
    assert _snapshot(graphs) == before
    assert not Path("/tmp/pwned").exists() and not Path("/tmp/pwned-rev").exists()


def test_cli_ids_and_revisions_stay_inside(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    graphs, _outside = layout
    monkeypatch.setenv("SWITCHBOARD_GRAPHS_DIR", str(graphs))
    monkeypatch.chdir(graphs.parent / "..")  # relative names do not hit files by accident
    runner = CliRunner()
    for name in ["outside", "link-out", "../outside-missing", "--output=/tmp/pwned"]:
        result = runner.invoke(app, ["show", "--", name])
        assert result.exit_code != 0 and "Traceback" not in result.output, (name, result.output)
        TRIED["cli"] += 1
        REFUSED["cli"] += 1
    for rev in HOSTILE_REVS[:4]:
        result = runner.invoke(app, ["diff", "front-desk", "--", rev])
        assert "Traceback" not in result.output, (rev, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        TRIED["cli"] += 1
        REFUSED["cli"] += result.exit_code != 0
    assert not Path("/tmp/pwned").exists() and not Path("/tmp/pwned-rev").exists()
