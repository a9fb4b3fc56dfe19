"""Example phrases of route intents and global intents: too few to generalise
from (W212), or one phrase claimed by two intents (W213)."""

from __future__ import annotations

from schemas.checks._report import Reporter, node_pointer
from schemas.source import pointer
from schemas.spec import GlobalIntent, GraphSpec, Intent, RouteNode

MIN_EXAMPLES = 2


def normalize(phrase: str) -> str:
    """Case- and space-insensitive form of an example phrase."""
    return " ".join(phrase.split()).casefold()


def check_intents(spec: GraphSpec, rep: Reporter) -> None:
    """W212 for every intent with fewer than two examples; W213 for a phrase shared
    by two intents of one route node, two global intents, or a route intent and a
    global intent (reported at the route's or the later occurrence)."""
    global_owner: dict[str, str] = {}
    for name, gi in spec.global_intents.items():
        where = pointer("global_intents", name, "examples")
        _few(gi, f"global intent {name!r}", where, None, rep)
        _claim(gi, f"global intent {name!r}", where, global_owner, None, rep)
    for node_id, node in spec.nodes.items():
        if not isinstance(node, RouteNode):
            continue
        owner: dict[str, str] = {}
        for name, intent in node.intents.items():
            where = node_pointer(node_id, pointer("intents", name, "examples"))
            _few(intent, f"intent {name!r} of route node {node_id!r}", where, node_id, rep)
            _claim(intent, f"intent {name!r}", where, owner, node_id, rep, also=global_owner)


def _few(
    intent: Intent | GlobalIntent, label: str, where: str, node: str | None, rep: Reporter
) -> None:
    count = len(intent.examples)
    if count < MIN_EXAMPLES:
        rep.add(
            "W212",
            f"{label} has {count} example{'s' if count != 1 else ''}; give at least "
            f"{MIN_EXAMPLES} differently worded ones so the classifier can generalise",
            where,
            node=node,
        )


def _claim(
    intent: Intent | GlobalIntent,
    label: str,
    where: str,
    owners: dict[str, str],
    node: str | None,
    rep: Reporter,
    *,
    also: dict[str, str] | None = None,
) -> None:
    """Record `label` as owner of each of its phrases; W213 at every phrase that
    `owners` or `also` already gives to another intent."""
    for i, phrase in enumerate(intent.examples):
        key = normalize(phrase)
        rivals = [o for o in (owners.get(key), (also or {}).get(key)) if o and o != label]
        for other in rivals:
            rep.add(
                "W213",
                f"example {phrase!r} of {label} is also an example of {other}; the classifier "
                "cannot tell them apart, keep the phrase in one intent only",
                f"{where}/{i}",
                node=node,
            )
        owners.setdefault(key, label)
