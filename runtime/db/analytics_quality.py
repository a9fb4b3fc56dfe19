"""Aggregates on how calls went for the caller: sentiment, and intents that
sent callers the wrong way.

Like `runtime.db.analytics`, every function takes a `CallFilter`.

Sentiment is the one stored on each call (see `runtime.sentiment`), with the
method that produced it. A *rerouted* intent classification is one after which
the same call came back to the same routing node and was classified again:
the caller had to be asked again, so the route taken was likely wrong (or the
flow loops back by design, e.g. a greeting intent; the node tells which).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.db.models import Call, IntentRecord, NodeVisit
from runtime.db.queries import CallFilter, call_conditions

LABELS = ("positive", "neutral", "negative")
MAX_CALL_ROWS = 10_000


class AgentSentiment(BaseModel):
    """Per agent: calls with a sentiment, by label and by method, and their mean score."""

    agent: str
    calls: int
    scored: int
    mean_score: float | None
    labels: dict[str, int]
    methods: dict[str, int]


class CallSentiment(BaseModel):
    id: str
    agent: str
    started_at: datetime
    outcome: str | None
    score: float
    label: str
    method: str


class IntentReroute(BaseModel):
    """Classifications of one intent at one routing node of an agent, and how many of them
    were followed by the same node classifying that call again."""

    agent: str
    node: str | None
    intent: str
    classifications: int
    rerouted: int
    reroute_rate: float


async def sentiment_by_agent(
    engine: AsyncEngine, f: CallFilter | None = None
) -> list[AgentSentiment]:
    """Per agent (by name): sentiment label and method counts and the mean
    score over its calls that have a sentiment."""
    stmt = select(Call.agent, Call.sentiment_score, Call.sentiment_label, Call.sentiment_method)
    stmt = stmt.where(*call_conditions(f, engine.dialect.name))
    calls: Counter[str] = Counter()
    scores: dict[str, list[float]] = defaultdict(list)
    labels: dict[str, Counter[str]] = defaultdict(Counter)
    methods: dict[str, Counter[str]] = defaultdict(Counter)
    async with engine.connect() as conn:
        for agent, score, label, method in await conn.execute(stmt):
            calls[agent] += 1
            if score is None or label is None:
                continue
            scores[agent].append(float(score))
            labels[agent][label] += 1
            methods[agent][method or "unknown"] += 1
    return [
        AgentSentiment(
            agent=agent,
            calls=calls[agent],
            scored=len(scores[agent]),
            mean_score=sum(scores[agent]) / len(scores[agent]) if scores[agent] else None,
            labels={label: labels[agent].get(label, 0) for label in LABELS}
            | {k: v for k, v in labels[agent].items() if k not in LABELS},
            methods=dict(sorted(methods[agent].items())),
        )
        for agent in sorted(calls)
    ]


async def call_sentiments(
    engine: AsyncEngine, f: CallFilter | None = None, *, limit: int = MAX_CALL_ROWS
) -> list[CallSentiment]:
    """Calls with a sentiment, newest first, at most `limit` (1..10000)."""
    if not 1 <= limit <= MAX_CALL_ROWS:
        raise ValueError(f"limit must be in 1..{MAX_CALL_ROWS}, got {limit}")
    stmt = (
        select(
            Call.id,
            Call.agent,
            Call.started_at,
            Call.outcome,
            Call.sentiment_score,
            Call.sentiment_label,
            Call.sentiment_method,
        )
        .where(
            *call_conditions(f, engine.dialect.name),
            Call.sentiment_score.is_not(None),
            Call.sentiment_label.is_not(None),
        )
        .order_by(Call.started_at.desc(), Call.id)
        .limit(limit)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [
        CallSentiment(
            id=r.id,
            agent=r.agent,
            started_at=r.started_at,
            outcome=r.outcome,
            score=float(r.sentiment_score),
            label=r.sentiment_label,
            method=r.sentiment_method or "unknown",
        )
        for r in rows
    ]


def _intent_agents(
    visits: list[tuple[int, str, str]], intents: list[tuple[int, str | None]]
) -> list[str | None]:
    """The agent of each intent classification of one call. A classification
    at node N in step s was made either where the call was waiting when the
    step began (the last node visited before s) or at a visit of N within s
    (a handoff's entry node): the classifications at N in s are matched to
    those candidates in order. Visits are (step, agent, node) in order,
    intents (step, node) in order; None where no visit matches."""
    out: list[str | None] = []
    used: Counter[tuple[int, str | None]] = Counter()
    for step, node in intents:
        before = [v for v in visits if v[0] < step]
        waiting = [before[-1]] if before and before[-1][2] == node else []
        candidates = waiting + [v for v in visits if v[0] == step and v[2] == node]
        k = used[(step, node)]
        used[(step, node)] += 1
        out.append(candidates[k][1] if k < len(candidates) else None)
    return out


async def intent_reroutes(engine: AsyncEngine, f: CallFilter | None = None) -> list[IntentReroute]:
    """Per (agent, routing node, intent): classifications and how many were
    rerouted (see module docstring); fallbacks (no intent) are left out. Most
    rerouted first."""
    where = call_conditions(f, engine.dialect.name)
    intents_stmt = (
        select(IntentRecord.call_id, IntentRecord.step, IntentRecord.node, IntentRecord.name)
        .join(Call, Call.id == IntentRecord.call_id)
        .where(*where)
        .order_by(IntentRecord.call_id, IntentRecord.step, IntentRecord.seq)
    )
    visits_stmt = (
        select(NodeVisit.call_id, NodeVisit.step, NodeVisit.agent, NodeVisit.node)
        .join(Call, Call.id == NodeVisit.call_id)
        .where(*where, NodeVisit.call_id.in_(select(IntentRecord.call_id)))
        .order_by(NodeVisit.call_id, NodeVisit.step, NodeVisit.seq)
    )
    async with engine.connect() as conn:
        intent_rows = (await conn.execute(intents_stmt)).all()
        visit_rows = (await conn.execute(visits_stmt)).all()
        agents = dict((await conn.execute(select(Call.id, Call.agent).where(*where))).all())
    visits: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for row in visit_rows:
        visits[row.call_id].append((int(row.step), str(row.agent), str(row.node)))
    by_call: dict[str, list[tuple[int, str | None, str | None]]] = defaultdict(list)
    for intent_row in intent_rows:
        by_call[intent_row.call_id].append((int(intent_row.step), intent_row.node, intent_row.name))
    total: Counter[tuple[str, str | None, str]] = Counter()
    again: Counter[tuple[str, str | None, str]] = Counter()
    for call_id, sequence in by_call.items():
        owners = _intent_agents(visits[call_id], [(s, n) for s, n, _ in sequence])
        where_at: list[tuple[str, str | None]] = [
            (owner or str(agents.get(call_id, "?")), at_node)
            for owner, (_, at_node, _) in zip(owners, sequence, strict=True)
        ]
        for i, (_, _, intent) in enumerate(sequence):
            if intent is None:
                continue
            key = (*where_at[i], intent)
            total[key] += 1
            if where_at[i] in where_at[i + 1 :]:
                again[key] += 1
    out = [
        IntentReroute(
            agent=agent,
            node=node,
            intent=name,
            classifications=n,
            rerouted=again[(agent, node, name)],
            reroute_rate=again[(agent, node, name)] / n,
        )
        for (agent, node, name), n in total.items()
    ]
    out.sort(key=lambda r: (-r.rerouted, -r.classifications, r.agent, r.node or "", r.intent))
    return out
