"""`switchboard builder`: argument checks and the streamlit command it runs."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

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
