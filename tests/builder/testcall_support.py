"""Shared by the builder test-call tests: the app under AppTest with a
temporary call database, and direct reads of that database."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "builder" / "app.py")
TIMEOUT = 120  # a hang guard: the machine is shared; AppTest runs are not timed


@pytest.fixture
def call_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary SQLite call database and recordings directory, no live feed."""
    db = tmp_path / "calls.db"
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("SWITCHBOARD_RECORDINGS_DIR", str(tmp_path / "recordings"))
    for name in ("DATABASE_URL", "SWITCHBOARD_REDIS_URL", "SWITCHBOARD_CHECKPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    return db


def start_app(graphs: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("SWITCHBOARD_GRAPHS_DIR", str(graphs))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["graph"] = "dental-booking"
    at.run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, label: str) -> None:
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}"
    found[0].click().run()
    assert not at.exception, at.exception


def say(at: AppTest, text: str) -> None:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception


def rows(db: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    """Read the database directly, as another process (the dashboard) would."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return list(conn.execute(sql, args))
