"""The Calls page (Streamlit AppTest) against a database seeded by real
simulated calls: the list's figures, filters, pages and CSV are checked
against counts computed here with plain SQL; one call's detail shows its
transcript, barge-ins, tool calls, intents, path, latencies and recording."""

from __future__ import annotations

import csv
import io
import shutil
import sqlite3
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from builder.dashboard.call_list import all_calls, export_csv
from builder.dashboard.data import Database
from builder.dashboard.transcript import turn_markdown
from runtime.db.queries import CallFilter, TurnOut
from runtime.db.recorder import CallRecorder
from tests.builder.dashboard.dashdb import GRAPHS, ROOT, seed, sqlite_url

PAGE = str(ROOT / "builder" / "dashboard" / "calls_page.py")
TIMEOUT = 120  # generous: the machine is shared; AppTest runs are not timed
CALLS = 12


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database with 12 simulated calls (its file path)."""
    path = tmp_path_factory.mktemp("calls") / "calls.db"
    summary = seed(sqlite_url(path), CALLS)
    assert summary.calls == CALLS and summary.unwritten == 0
    return path


@pytest.fixture(scope="module")
def db(seeded: Path) -> Iterator[Database]:
    database = Database(sqlite_url(seeded))
    yield database
    database.run(lambda engine: engine.dispose())


def sql(path: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Plain SQL on the database file, independent of the code under test."""
    with sqlite3.connect(path) as conn:
        return list(conn.execute(query, args).fetchall())


def page_text(at: AppTest) -> str:
    parts = [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.header]
    metrics = [f"{m.label}: {m.value}" for m in at.metric]
    # captions and lines are Markdown with escaped punctuation
    return "\n".join([*(str(p.value) for p in parts), *metrics]).replace("\\", "")


def open_page(
    monkeypatch: pytest.MonkeyPatch, db_path: Path, graphs: Path = GRAPHS, call: str | None = None
) -> AppTest:
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", sqlite_url(db_path))
    monkeypatch.setenv("SWITCHBOARD_GRAPHS_DIR", str(graphs))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    if call is not None:
        at.query_params["call"] = call
    at.run()
    assert not at.exception, at.exception
    return at


def table_ids(at: AppTest) -> list[str]:
    assert at.dataframe, "no call table"
    return list(at.dataframe[0].value["id"])


def newest_first(path: Path, where: str = "1=1", *args: Any) -> list[str]:
    rows = sql(path, f"SELECT id FROM calls WHERE {where} ORDER BY started_at DESC, id DESC", *args)
    return [r[0] for r in rows]


def test_the_list_pages_through_every_call(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = newest_first(seeded)
    assert len(expected) == CALLS
    at = open_page(monkeypatch, seeded)
    assert f"**{CALLS} calls** match" in page_text(at)
    assert table_ids(at) == expected
    at.sidebar.selectbox(key="calls.size").select(10).run()
    assert "page 1 of 2" in page_text(at)
    assert table_ids(at) == expected[:10]
    at.number_input(key="calls.page").set_value(2).run()
    assert not at.exception, at.exception
    assert "showing 11–12 · page 2 of 2" in page_text(at)
    assert table_ids(at) == expected[10:]


def test_filters_match_independent_counts(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(monkeypatch, seeded)
    at.sidebar.selectbox(key="calls.agent").select("dental-booking").run()
    dental = newest_first(seeded, "agent = ?", "dental-booking")
    assert f"**{len(dental)} calls** match" in page_text(at)
    assert table_ids(at) == dental
    at.sidebar.selectbox(key="calls.agent").select("(any)").run()
    at.sidebar.selectbox(key="calls.outcome").select("completed").run()
    completed = newest_first(seeded, "outcome = ?", "completed")
    assert table_ids(at) == completed
    at.sidebar.selectbox(key="calls.outcome").select("(any)").run()
    at.sidebar.text_input(key="calls.text").input("appointment").run()
    found = newest_first(
        seeded, "id IN (SELECT call_id FROM turns WHERE lower(text) LIKE '%appointment%')"
    )
    assert found and len(found) < CALLS
    assert table_ids(at) == found
    at.sidebar.text_input(key="calls.text").input("zebra crossing").run()
    assert "No calls match these filters" in page_text(at)


def test_csv_export_holds_every_matching_call(seeded: Path, db: Database) -> None:
    data = export_csv(db, CallFilter(agent="billing-support"))
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert [r["id"] for r in rows] == newest_first(seeded, "agent = ?", "billing-support")
    durations = dict(sql(seeded, "SELECT id, duration_s FROM calls"))
    assert all(float(r["duration_s"]) == pytest.approx(durations[r["id"]]) for r in rows)
    everything = list(csv.DictReader(io.StringIO(export_csv(db, CallFilter()).decode())))
    assert len(everything) == CALLS
    # read a few at a time, the list is the same
    paged = db.run(lambda engine: all_calls(engine, CallFilter(), page_size=5))
    assert [c.id for c in paged] == newest_first(seeded)


def test_one_call_shows_transcript_barge_in_tools_intents_path_latencies(
    seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_id, planned, heard = sql(
        seeded,
        "SELECT t.call_id, t.text, t.heard_text FROM turns t JOIN tool_calls c "
        "ON c.call_id = t.call_id WHERE t.interrupted = 1 ORDER BY t.call_id LIMIT 1",
    )[0]
    at = open_page(monkeypatch, seeded, call=call_id)
    text = page_text(at)
    assert f"Call {call_id}" in text
    for (said,) in sql(
        seeded, "SELECT text FROM turns WHERE call_id = ? AND role='caller'", call_id
    ):
        assert said in text
    assert "barge-in" in text and heard in text and planned in text
    tools = at.dataframe[1].value  # the list, then tool calls
    expected_tools = sql(
        seeded, "SELECT name FROM tool_calls WHERE call_id=? ORDER BY step, seq", call_id
    )
    assert list(tools["tool"]) == [n for (n,) in expected_tools]
    intents = at.dataframe[2].value
    assert (
        len(intents) == sql(seeded, "SELECT count(*) FROM intents WHERE call_id=?", call_id)[0][0]
    )
    visits = [
        n
        for (n,) in sql(
            seeded, "SELECT node FROM node_visits WHERE call_id=? ORDER BY step, seq", call_id
        )
    ]
    assert " → ".join(visits) in text
    assert "(current)" in text  # the graph file is unchanged since the call
    latencies = at.dataframe[3].value
    assert "graph_ms" in latencies.columns and len(latencies) > 0
    assert "No recording." in text
    label, method = sql(
        seeded, "SELECT sentiment_label, sentiment_method FROM calls WHERE id=?", call_id
    )[0]
    if label is None:
        assert "sentiment: not scored" in text
    else:
        assert f"sentiment: {label} (" in text and f"{method})" in text


def _wav(path: Path, seconds: float = 0.5, rate: int = 16_000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x01" * int(seconds * rate))
    return path


async def _add_recordings(engine: Any, call_id: str, paths: list[Path]) -> None:
    recorder = CallRecorder(engine)
    for p in paths:
        await recorder.add_recording(call_id, str(p), duration_s=0.5, sample_rate=16_000)
    await recorder.close(timeout=60)


def test_the_recording_plays_and_a_missing_file_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: Path
) -> None:
    db_path = tmp_path / "copy.db"
    shutil.copy(seeded, db_path)
    call_id = newest_first(db_path)[0]
    wav = _wav(tmp_path / "call.wav")
    database = Database(sqlite_url(db_path))
    try:
        database.run(lambda e: _add_recordings(e, call_id, [wav, tmp_path / "gone.wav"]))
    finally:
        database.run(lambda engine: engine.dispose())
    at = open_page(monkeypatch, db_path, call=call_id)
    audio = at.get("audio")
    assert len(audio) == 1
    text = page_text(at)
    assert "call.wav · 0.5 s" in text
    assert "gone.wav is not readable here" in text
    assert "No recording." not in text


def test_a_call_whose_graph_file_is_gone_still_lists_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded: Path
) -> None:
    call_id, agent = sql(seeded, "SELECT id, agent FROM calls ORDER BY id LIMIT 1")[0]
    graphs = tmp_path / "graphs"
    shutil.copytree(GRAPHS, graphs)
    (graphs / f"{agent}.yaml").unlink()
    at = open_page(monkeypatch, seeded, graphs=graphs, call=call_id)
    text = page_text(at)
    assert f"No graph file for agent '{agent}'" in text
    first = sql(seeded, "SELECT node FROM node_visits WHERE call_id=? ORDER BY step, seq", call_id)
    assert first[0][0] in text


def test_an_unknown_call_id_says_so(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_page(monkeypatch, seeded, call="no-such-call")
    assert "No call 'no-such-call' in the database." in page_text(at)


def test_transcript_text_shows_as_said() -> None:
    turn = TurnOut(
        index=0,
        step=1,
        role="caller",
        agent=None,
        node=None,
        message_id=None,
        text="*not bold* <b>no html</b> [link](x)",
        interrupted=False,
        heard_text=None,
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        ended_at=None,
        latencies={"e2e_ms": 812.4, "stt_ms": 200.0},
    )
    line = turn_markdown(turn)
    assert line.startswith("`03:04:05` **🧑 Caller**: ")
    assert "\\*not bold\\*" in line and "\\<b\\>" in line and "\\[link\\]" in line
    assert "stt 200 ms · e2e 812 ms" in line  # stages in pipeline order
