"""Turn one step of a call (a caller turn and the events it produced) into
database rows, with the natural keys that make writing them idempotent.

Everything stored is made safe for both databases first: JSON values become
plain JSON (non-finite floats -> null, unknown objects -> their text), NUL
characters (which PostgreSQL rejects) are removed, and oversized values are cut.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from runtime.db.models import OUTCOMES
from runtime.session import CallEvent

log = logging.getLogger("switchboard.db")

MAX_TEXT_CHARS = 20_000
MAX_JSON_DEPTH = 32
MAX_JSON_ITEMS = 1_000


def clean_text(value: Any, limit: int = MAX_TEXT_CHARS) -> str:
    """`value` as text without NUL characters, at most `limit` characters."""
    return str(value).replace("\x00", "")[:limit]


def clean_name(value: Any, limit: int = 128) -> str:
    return clean_text(value, limit)


def jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-compatible copy of `value` that both databases accept."""
    if _depth > MAX_JSON_DEPTH:
        return "…"
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        items = list(value.items())[:MAX_JSON_ITEMS]
        return {clean_text(k, 256): jsonable(v, _depth + 1) for k, v in items}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, _depth + 1) for v in list(value)[:MAX_JSON_ITEMS]]
    if isinstance(value, datetime):
        return value.isoformat()
    return clean_text(value)


def clean_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float] | None:
    """Per-turn latencies: finite numbers (ms) by stage name; others dropped."""
    if not metrics:
        return None
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            log.warning("latency %r=%r is not a number; not recorded", key, value)
            continue
        if math.isfinite(value):
            out[clean_name(key, 64)] = float(value)
    return out or None


@dataclass
class StepRows:
    """The rows of one step; `heard` are (message_id, heard text) updates of
    earlier agent turns; `outcome` is (outcome, reason) when the call ended.
    `agents` are the `call_agents` rows of the agents active in the step (an
    agent that handed the call on has outcome `handed_off`); `outcome_agent`
    is the agent that ended the call in it, None when no agent was active
    before the outcome (a hang-up: the writer takes the call's latest agent)."""

    call_id: str
    step: int
    at: datetime
    ended_at: datetime | None
    agent: str | None = None
    turns: list[dict[str, Any]] = field(default_factory=list)
    visits: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    intents: list[dict[str, Any]] = field(default_factory=list)
    heard: list[tuple[str, str]] = field(default_factory=list)
    outcome: tuple[str, str | None] | None = None
    skipped: int = 0
    agents: list[dict[str, Any]] = field(default_factory=list)
    outcome_agent: str | None = None
    _events: int = 0

    def _keyed(self, rows: list[dict[str, Any]], **values: Any) -> None:
        rows.append({"call_id": self.call_id, "step": self.step, "seq": len(rows), **values})

    def add_turn(self, role: str, text: str, **values: Any) -> None:
        self._keyed(
            self.turns,
            role=role,
            text=clean_text(text),
            interrupted=False,
            heard_text=None,
            started_at=self.at,
            ended_at=self.ended_at,
            latencies=None,
            **{"agent": None, "node": None, "message_id": None, **values},
        )

    def active(self, agent: Any, outcome: str | None = None, *, taken_on: bool = False) -> None:
        """`agent` took part in this step at the current event (its position
        orders the step's agents); `outcome` is its own ending, if it had one;
        `taken_on`: it (again) takes the call on, so an earlier ending (it
        had handed the call on, which came back) no longer holds."""
        name = _opt(agent)
        if name is None:
            return
        row = next((r for r in self.agents if r["agent"] == name), None)
        if row is None:
            row = {"call_id": self.call_id, "agent": name, "first_step": self.step}
            row.update(outcome=None, outcome_step=None, turns=0)
            self.agents.append(row)
        row.update(last_step=self.step, last_seq=self._events)
        if outcome is not None or taken_on:
            row.update(outcome=outcome, outcome_step=self.step)

    def _latest_agent(self) -> str | None:
        if not self.agents:
            return None
        return str(max(self.agents, key=lambda r: int(r["last_seq"]))["agent"])

    def add_event(self, event: CallEvent) -> None:
        self._events += 1
        d = event.data
        if event.type in ("agent", "node", "waiting"):
            self.active(d.get("agent"))
        elif event.type == "handoff":
            self.active(d.get("from"), "handed_off")
            self._events += 1
            self.active(d.get("to"), taken_on=True)
        if event.type == "agent":
            self.agent = self.agent or _opt(d.get("agent"))
            self.add_turn(
                "agent",
                str(d["text"]),
                agent=_opt(d.get("agent")),
                node=_opt(d.get("node")),
                message_id=_opt(d.get("message_id"), 64),
            )
        elif event.type == "node":
            self.agent = self.agent or _opt(d.get("agent"))
            self._keyed(
                self.visits, agent=clean_name(d["agent"]), node=clean_name(d["node"]), at=self.at
            )
        elif event.type == "tool":
            args = d.get("args") or {}
            if not isinstance(args, Mapping):
                args = {"value": args}
            self._keyed(
                self.tools,
                name=clean_name(d["name"]),
                node=_opt(d.get("node")),
                arguments=jsonable(args),
                result=jsonable(d.get("result")),
                duration_ms=_number(d.get("duration_ms")),
                error=None if d.get("error") is None else clean_text(d["error"]),
                at=self.at,
            )
        elif event.type == "intent":
            self._keyed(
                self.intents,
                name=_opt(d.get("name")),
                node=_opt(d.get("node")),
                confidence=_number(d.get("confidence")) or 0.0,
                at=self.at,
            )
        elif event.type == "heard":
            self.heard.append((clean_name(d["message_id"], 64), clean_text(d.get("text", ""))))
        elif event.type == "outcome":
            outcome = str(d["outcome"])
            if outcome not in OUTCOMES:
                raise ValueError(f"unknown outcome {outcome!r}")
            reason = d.get("reason")
            self.outcome = (outcome, None if reason is None else clean_text(reason))
            self.outcome_agent = self._latest_agent()
            if self.outcome_agent is not None:
                self.active(self.outcome_agent, outcome)

    def attach_metrics(self, metrics: dict[str, float] | None) -> None:
        """Latencies belong to the step's first agent line (the response they
        measure), else to its caller line; a step with neither drops them."""
        if not metrics:
            return
        target = next((t for t in self.turns if t["role"] == "agent"), None)
        target = target or (self.turns[0] if self.turns else None)
        if target is None:
            log.debug("call %s step %d: latencies without a turn dropped", self.call_id, self.step)
            return
        target["latencies"] = metrics


def build_step(
    call_id: str,
    step: int,
    events: Sequence[CallEvent],
    *,
    at: datetime,
    ended_at: datetime | None = None,
    caller_text: str | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> StepRows:
    """The rows of one step. Events of types not stored (token, slot, waiting)
    are ignored; a malformed event is skipped with a warning, never raised."""
    rows = StepRows(call_id=call_id, step=step, at=at, ended_at=ended_at)
    if caller_text is not None:
        rows.add_turn("caller", caller_text)
    for event in events:
        try:
            rows.add_event(event)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            rows.skipped += 1
            log.warning("call %s: %s event not recorded (%s): %r", call_id, event.type, exc, event)
    rows.attach_metrics(clean_metrics(metrics))
    return rows


def _opt(value: Any, limit: int = 128) -> str | None:
    return None if value is None or value == "" else clean_name(value, limit)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
