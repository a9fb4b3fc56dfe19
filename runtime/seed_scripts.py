"""Caller scripts for simulated demo calls, generated from templates.

Each example agent has scenarios; a scenario is a list of caller turns, each a
list of paraphrases to pick from. `plan_call` picks a scenario and a caller,
then varies it: a wrong or off-topic answer that makes the agent re-prompt, a
request for a human part-way (escalation), a hang-up mid-flow (abandoned), and
barge-ins (the caller talks over the agent's last line). A few calls fail on
the system's side (`fails_at`: the caller turn that finds the call's state
lost, as when the checkpoint store restarts without persistence); that draw
has a random stream of its own per call id, so the other draws, and every
call's script, do not depend on it. The phrasings are the
ones the example graphs' conversation tests exercise, so most calls take real
paths through the flows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

#: How often each example agent is called (relative weights).
AGENT_WEIGHTS: dict[str, int] = {
    "front-desk": 5,
    "dental-booking": 3,
    "billing-support": 3,
    "router-support": 3,
    "appointment-confirmation": 2,
}
#: Agents that call out rather than answer.
OUTBOUND = {"appointment-confirmation"}

#: Seeded customers (tools/store.py) and numbers the demo data does not know.
CUSTOMERS = ["+15551230001", "+15551230002", "+15551230003", "+15551230004", "+15551230005"]
STRANGERS = ["+15559990000", "+14155550132", "+12125550199"]

P_WRONG_ANSWER = 0.2
P_HUMAN = 0.1
P_HANGUP = 0.12
P_BARGE_IN = 0.1
P_STATE_LOST = 0.04

Script = list[list[str]]

HUMAN = [
    "can I just talk to a real person",
    "I want to speak to a human please",
    "get me a person, this isn't working",
    "can I talk to someone at the front desk",
]
CONFUSED = [
    "purple monkey dishwasher",
    "hmm, I'm not sure",
    "sorry, what?",
    "I'm driving right now",
    "what's the weather going to be like tomorrow",
]
DAYS = ["next tuesday", "next Friday", "monday", "Thursday please", "next wednesday"]
TIMES = ["ten in the morning", "at two in the afternoon", "nine am", "eleven", "3 pm"]
NAMES = ["Maria Garcia", "James Wilson", "Aisha Khan", "Tom Becker", "Linda Park"]
BYE = ["no thanks, that's all", "no that's all, thank you", "nope, that's it"]

SCENARIOS: dict[str, list[Script]] = {
    "dental-booking": [
        [
            ["I need a cleaning", "book an appointment", "I'd like to book a checkup"],
            DAYS,
            TIMES,
            NAMES,
        ],
        [["can I come in for a checkup next Tuesday", "a cleaning next friday please"], TIMES],
        [["when are you open?", "what are your hours on saturday"], BYE],
        [["I need to cancel my appointment", "please cancel my visit"], ["yes please"], BYE],
        [["I'd like to book an appointment"], ["Sunday"], ["Monday"], TIMES, NAMES],
    ],
    "billing-support": [
        [
            ["I was double billed for my internet", "I think I was charged twice this month"],
            ["yes please", "yeah go ahead"],
            BYE,
        ],
        [["hi, how much do I owe right now?", "what's my balance"], BYE],
        [
            ["there's a charge on my bill I don't recognise"],
            ["no, leave it for now"],
        ],
        [
            ["I was charged twice"],
            ["yes please"],
            ["hmm, can you refund that charge again?"],
            ["so what's my balance now"],
            BYE,
        ],
    ],
    "router-support": [
        [
            ["my zip code is nine four one one four", "it's 94114", "94114"],
            ["okay, done, it's unplugged", "yes"],
            ["yep, it's green now", "yes it's green"],
            ["yes it's working, thank you", "yeah, pages load now"],
        ],
        [["94114"], ["yes"], ["nope, the light's still orange"]],
        [["it's 94114"], ["yes"], ["yes"], ["no, pages still won't load"]],
        [["nine four one one four"], ["no, not yet"], ["okay, it's out now"], ["yes"], ["yes"]],
        [
            ["yeah it's nine four one zero three", "it's nine four one oh three"],
            ["okay, it's unplugged"],
            ["yes it's green"],
            ["yeah, pages load now"],
        ],
    ],
    "appointment-confirmation": [
        [["yeah, I'll be there, thanks", "yes, confirmed"]],
        [["oh, can we move it to next friday"], ["at ten please", "ten is fine"]],
        [["no, I'm not going to make it"], ["no, just cancel it"]],
        [["um, actually I need to cancel"], ["yes, another day would be good"], DAYS, TIMES],
        [["please don't call this number again"]],
        [["sorry, could you say that one more time?"], ["oh right, yes, I'll be there"]],
    ],
    "front-desk": [
        [["hi, I'd like to book a cleaning please"], DAYS, TIMES, NAMES],
        [["what time do you close today", "when is the clinic open on saturday"], BYE],
        [["yeah hi, I was charged twice last month"], ["yes please"], BYE],
        [
            ["my internet is down again", "the wifi keeps cutting out"],
            ["nine four one one four"],
            ["okay, it's unplugged"],
            ["yes it's green"],
            ["yeah, pages load now"],
        ],
        [["hello?"], ["oh sorry, I need to book a checkup"], DAYS, TIMES, NAMES],
        [["never mind, I'll call back later"]],
    ],
}
#: Which caller a scenario suits best (the rest: a random customer or stranger).
PREFERRED_CALLER = {
    ("billing-support", 0): "+15551230002",
    ("billing-support", 3): "+15551230002",
    ("front-desk", 2): "+15551230002",
    ("router-support", 0): "+15551230003",
    ("router-support", 4): "+15551230004",
    ("front-desk", 3): "+15551230003",
}


@dataclass(frozen=True)
class Turn:
    """One caller turn: what is said, after how long, and whether the caller
    talks over the agent's last line."""

    text: str
    pause_s: float
    barge_in: bool = False


@dataclass(frozen=True)
class CallPlan:
    call_id: str
    agent: str
    caller: str
    direction: str
    started_at: datetime
    turns: tuple[Turn, ...]
    scenario: int
    fails_at: int | None = None


def failure_point(call_id: str, turns: int) -> int | None:
    """The caller turn (index) at which call `call_id` loses its state, or
    None (most calls); from a random stream seeded by the call id alone."""
    rng = random.Random(f"{call_id}/state-lost")
    if turns < 1 or rng.random() >= P_STATE_LOST:
        return None
    return rng.randrange(turns)


def plan_call(rng: random.Random, call_id: str, agent: str, started_at: datetime) -> CallPlan:
    """A varied caller script for `agent` drawn from `rng` (see module docstring)."""
    scenarios = SCENARIOS[agent]
    index = rng.randrange(len(scenarios))
    texts = [rng.choice(options) for options in scenarios[index]]
    if rng.random() < P_WRONG_ANSWER:
        texts.insert(rng.randrange(len(texts) + 1), rng.choice(CONFUSED))
    if rng.random() < P_HUMAN:
        texts = [*texts[: rng.randrange(len(texts) + 1)], rng.choice(HUMAN)]
    elif rng.random() < P_HANGUP and len(texts) > 1:
        texts = texts[: rng.randrange(1, len(texts))]  # the call hangs up after these
    preferred = PREFERRED_CALLER.get((agent, index))
    if preferred is not None and rng.random() < 0.8:
        caller = preferred
    else:
        caller = rng.choice(CUSTOMERS if rng.random() < 0.8 else STRANGERS)
    turns = tuple(
        Turn(text, round(rng.uniform(3.0, 14.0), 1), barge_in=rng.random() < P_BARGE_IN)
        for text in texts
    )
    direction = "outbound" if agent in OUTBOUND else "inbound"
    fails_at = failure_point(call_id, len(turns))
    return CallPlan(call_id, agent, caller, direction, started_at, turns, index, fails_at)
