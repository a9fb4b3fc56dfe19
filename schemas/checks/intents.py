"""Example phrases of route intents and global intents: too few to generalise
from (W212), or one phrase claimed by two intents (W213)."""

from __future__ import annotations

from schemas.checks._report import Reporter, node_pointer
from schemas.source import pointer
from schemas.spec import GlobalIntent, GraphSpec, Intent, RouteNode

MIN_EXAMPLES = 2

#: A phrase's owner: (description for messages, pointer of its examples list).
Owner = tuple[str, str]


def normalize(phrase: str) -> str:
    """Case- and space-insensitive form of an example phrase."""
    return " ".join(phrase.split()).casefold()


def check_intents(spec: GraphSpec, rep: Reporter) -> None:
    """W212 for every intent with fewer than two examples; W213 for a phrase shared
    by two intents of one route node, two global intents, or a route intent and a
    global intent (reported at the route's or the later occurrence)."""
    global_owner: dict[str, Owner] = {}
    for name, gi in spec.global_intents.items():
        where = pointer("global_intents", name, "examples")
        _few(gi, f"global intent {name!r}", where, None, rep)
        _claim(gi, (f"global intent {name!r}", where), global_owner, None, rep)
    for node_id, node in spec.nodes.items():
        if not isinstance(node, RouteNode):
            continue
        owner: dict[str, Owner] = {}
        for name, intent in node.intents.items():
            where = node_pointer(node_id, pointer("intents", name, "examples"))
            _few(intent, f"intent {name!r} of route node {node_id!r}", where, node_id, rep)
            _claim(intent, (f"intent {name!r}", where), owner, node_id, rep, also=global_owner)


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
    me: Owner,
    owners: dict[str, Owner],
    node: str | None,
    rep: Reporter,
    *,
    also: dict[str, Owner] | None = None,
) -> None:
    label, where = me
    for i, phrase in enumerate(intent.examples):
        key = normalize(phrase)
        rivals = [o for o in (owners.get(key), (also or {}).get(key)) if o and o[0] != label]
        for other, _ in rivals:
            rep.add(
                "W213",
                f"example {phrase!r} of {label} is also an example of {other}; the classifier "
                "cannot tell them apart, keep the phrase in one intent only",
                f"{where}/{i}",
                node=node,
            )
        owners.setdefault(key, me)
