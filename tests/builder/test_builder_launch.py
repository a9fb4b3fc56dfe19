"""`switchboard builder`: argument checks and the streamlit command it runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder import launch
from builder.launch import APP_FILE, builder_command
from runtime.cli import app


def test_missing_graphs_dir_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["builder", "--graphs-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_bad_port_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["builder", "--graphs-dir", str(tmp_path), "--port", "0"])
    assert result.exit_code == 2
    assert "--port" in result.output


def test_command_runs_the_app_on_the_directory(tmp_path: Path) -> None:
    cmd = builder_command(tmp_path, 8600, headless=True)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4] == str(APP_FILE)
    assert cmd[cmd.index("--server.port") + 1] == "8600"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[-2:] == ["--graphs-dir", str(tmp_path)]
    assert APP_FILE.is_file()


def test_host_defaults_to_localhost_and_is_passed_to_streamlit(tmp_path: Path) -> None:
    assert _address(_launched(tmp_path, [])) == "127.0.0.1"
    cmd = _launched(tmp_path, ["--host", "0.0.0.0", "--port", "8501"])
    assert _address(cmd) == "0.0.0.0" and cmd[cmd.index("--server.port") + 1] == "8501"
    assert _address(_launched(tmp_path, ["--host", "::"])) == "::"


def test_bad_host_is_refused(tmp_path: Path) -> None:
    for bad in ("", "http://0.0.0.0", "a host", "0.0.0.0:8501/x"):
        result = CliRunner().invoke(app, ["builder", "--graphs-dir", str(tmp_path), "--host", bad])
        assert result.exit_code == 2, bad
        assert "--host" in result.output


def _address(cmd: list[str]) -> str:
    return cmd[cmd.index("--server.address") + 1]


def _launched(tmp_path: Path, args: list[str]) -> list[str]:
    """The command `switchboard builder ARGS` would replace itself with."""
    seen: list[list[str]] = []

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        assert env["SWITCHBOARD_GRAPHS_DIR"] == str(tmp_path.resolve())
        seen.append(argv)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(launch.os, "execve", execve)
        result = CliRunner().invoke(app, ["builder", "--graphs-dir", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    (cmd,) = seen
    return cmd
