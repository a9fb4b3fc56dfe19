"""Fixtures for the builder's file, document and version tests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DENTAL = ROOT / "graphs" / "dental-booking.yaml"

#: Comments added around the example graph, so edits can be checked for keeping them.
EXTRA_COMMENTS = (
    ("nodes:\n", "# The call flow, one node per step.\nnodes:  # keep greeting first\n"),
    ("\n  hours:\n", "\n  # Opening hours, read out as one line.\n  hours:\n"),
    ("    slot: day\n", "    slot: day  # the caller's preferred day\n"),
    ("  escalate:\n", "\n  # Anything we cannot do goes to a person.\n  escalate:\n"),
)


@pytest.fixture(autouse=True)
def _private_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Builder test calls are recorded: into a database and recordings directory
    of this test's own, never the user's data directory or CI's shared database.
    A test that wants another database sets SWITCHBOARD_DATABASE_URL itself."""
    data = tmp_path_factory.mktemp("switchboard-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite:///{data / 'calls.db'}")
    monkeypatch.setenv("SWITCHBOARD_RECORDINGS_DIR", str(data / "recordings"))


def commented_dental_text() -> str:
    text = DENTAL.read_text("utf-8")
    for old, new in EXTRA_COMMENTS:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text + "# end of file\n"


@pytest.fixture
def dental_file(tmp_path: Path) -> Path:
    """A copy of graphs/dental-booking.yaml (with extra comments) and the example
    tools file, in a temporary graphs directory."""
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    (graphs / "dental-booking.yaml").write_text(commented_dental_text(), "utf-8")
    shutil.copy(ROOT / "graphs" / "tools.yaml", graphs / "tools.yaml")
    return graphs / "dental-booking.yaml"


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git with a known identity and no user or system configuration."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Dana Designer")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "dana@example.com")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def git(git_env: None) -> Callable[..., str]:
    """Run git in a repository (with the test identity); its stdout, stripped."""
    return _git


@pytest.fixture
def repo(git: Callable[..., str], tmp_path: Path, dental_file: Path) -> Path:
    """`tmp_path` as a repository (branch main) whose graphs/ directory holds the
    dental graph, committed once as "first version"."""
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first version")
    return tmp_path
