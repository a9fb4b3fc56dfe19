"""`seed-demo`: simulated calls through the real runtime, recorded, with a mix
of outcomes; running it twice duplicates neither business data nor calls."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from runtime.cli import app
from runtime.db.business_models import BusinessAccount, BusinessCharge, BusinessRefund
from runtime.db.engine import make_engine
from runtime.db.models import Call, CallAgent, ToolCall, Turn
from runtime.seed import plan_calls, seed_demo

NOW = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
runner = CliRunner()


async def _count(url: str, table: type[object]) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            stmt = select(func.count()).select_from(table)
            return int((await conn.execute(stmt)).scalar_one())
    finally:
        await engine.dispose()


async def test_seed_demo_records_varied_calls_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    summary = await seed_demo(url, calls=20, seed=7, now=NOW)
    assert summary.calls == 20 and summary.skipped == 0 and summary.unwritten == 0
    assert summary.business.total > 0
    outcomes = {o for _, o in summary.recorded}
    assert len(outcomes) >= 2, summary.recorded
    assert len({a for a, _ in summary.recorded}) >= 3

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            calls = (
                await conn.execute(
                    select(
                        Call.outcome,
                        Call.ended_at,
                        Call.graph_hash,
                        Call.started_at,
                        Call.direction,
                    )
                )
            ).all()
            caller_turns = (
                await conn.execute(select(func.count()).where(Turn.role == "caller"))
            ).scalar_one()
            agent_turns = (
                await conn.execute(select(func.count()).where(Turn.role == "agent"))
            ).scalar_one()
            cut = (await conn.execute(select(func.count()).where(Turn.interrupted))).scalar_one()
            tools = (await conn.execute(select(func.count()).select_from(ToolCall))).scalar_one()
            accounts = (
                await conn.execute(select(func.count()).select_from(BusinessAccount))
            ).scalar_one()
            charges = (
                await conn.execute(select(func.count()).select_from(BusinessCharge))
            ).scalar_one()
    finally:
        await engine.dispose()
    assert len(calls) == 20
    assert all(c.outcome is not None and c.ended_at is not None for c in calls)
    assert {c.outcome for c in calls} == outcomes
    assert all(c.graph_hash for c in calls)  # the agent version is recorded
    assert all(NOW - timedelta(days=31) <= c.started_at <= NOW for c in calls)
    assert len({c.started_at.date() for c in calls}) > 5  # spread over the month
    assert {c.direction for c in calls} == {"inbound", "outbound"}
    assert caller_turns >= 20 and agent_turns > caller_turns
    assert tools > 0
    assert (cut > 0) == (summary.barge_ins > 0)
    assert (accounts, charges) == (5, 9)

    again = await seed_demo(url, calls=20, seed=7, now=NOW)
    assert again.business.total == 0
    assert again.skipped == 20 and again.calls == 0
    assert await _count(url, Call) == 20
    assert await _count(url, BusinessAccount) == 5
    assert await _count(url, BusinessCharge) == 9
    assert await _count(url, BusinessRefund) <= 2  # the seeded one and at most one more


async def test_seed_demo_records_failed_calls_and_each_agents_outcome(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'parts.db'}"
    summary = await seed_demo(url, calls=20, seed=7, now=NOW)
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            parts = (await conn.execute(select(CallAgent.agent, CallAgent.outcome))).all()
            failed = (
                await conn.execute(
                    select(Call.agent, Call.outcome_reason, Call.id).where(Call.outcome == "failed")
                )
            ).all()
            lost_lines = (
                await conn.execute(
                    select(func.count()).where(Turn.message_id.startswith("state-lost:"))
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    # A call whose state was lost ends failed with the service's reason and
    # the agent's fallback line.
    assert failed and all(
        r.outcome_reason == "call state lost by the checkpoint store" for r in failed
    )
    assert (
        lost_lines
        == len(failed)
        == sum(n for (_, o), n in summary.recorded.items() if o == "failed")
    )
    # Every agent's own ending is recorded as the runtime saw it: the front
    # desk hands calls on, the failed call's agent failed.
    got = Counter((a, o) for a, o in parts)
    assert got == summary.agent_parts
    assert got[("front-desk", "handed_off")] > 0
    assert sum(n for (_, o), n in got.items() if o == "failed") == len(failed)
    assert None not in {o for _, o in parts}  # every part of a finished call has its ending


def test_plans_are_deterministic_per_seed_and_varied() -> None:
    agents = ["front-desk", "dental-booking", "billing-support", "router-support"]
    one = plan_calls(60, seed=3, now=NOW, days=30, agents=agents)
    assert one == plan_calls(60, seed=3, now=NOW, days=30, agents=agents)
    assert one != plan_calls(60, seed=4, now=NOW, days=30, agents=agents)
    assert [p.started_at for p in one] == sorted(p.started_at for p in one)
    texts = [t.text for p in one for t in p.turns]
    assert any("person" in t or "human" in t for t in texts)  # escalations
    assert any(t.barge_in for p in one for t in p.turns)
    assert len(set(texts)) > 30  # paraphrases


def test_seed_demo_command_prints_a_summary_and_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    done = runner.invoke(app, ["seed-demo", "--calls", "3", "--database-url", url])
    assert done.exit_code == 0, done.output
    assert "3 calls" in done.output and "business data: 34 rows inserted" in done.output
    again = runner.invoke(
        app, ["seed-demo", "-n", "3", "--database-url", url, "--seed", "8", "-f", "json"]
    )
    assert again.exit_code == 0, again.output
    payload = json.loads(again.output)
    assert payload["calls"] == 3 and sum(payload["business_rows_inserted"].values()) == 0


def test_seed_demo_command_reports_a_bad_url_without_traceback() -> None:
    bad = runner.invoke(app, ["seed-demo", "--database-url", "mysql://u:pw@h/db"])
    assert bad.exit_code == 2
    assert "unsupported database 'mysql'" in bad.output and "Traceback" not in bad.output
