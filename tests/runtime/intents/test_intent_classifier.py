"""IntentSet behaviour: paraphrases, out-of-scope, confidence, fast path, errors."""

from __future__ import annotations

import asyncio
import threading

import pytest

from runtime.intents import (
    DEFAULT_THRESHOLD,
    IntentConfigError,
    IntentMatch,
    IntentSet,
    make_intent_set,
    normalise,
)
from runtime.intents.classifier import confidence_of

FRONT_DESK = {
    "book": ["book an appointment", "I need a cleaning"],
    "billing": ["question about my bill"],
}


@pytest.fixture(scope="module")
def front_desk() -> IntentSet:
    return IntentSet(FRONT_DESK)


def best(match: IntentMatch) -> str:
    return max(match.scores, key=lambda name: match.scores[name])


def test_paraphrase_without_shared_keywords_matches(front_desk: IntentSet) -> None:
    match = front_desk.classify_sync("can I come in to get my teeth cleaned")
    assert match.name == "book"
    assert match.confidence >= DEFAULT_THRESHOLD
    assert match.scores["book"] > match.scores["billing"] + 0.2


def test_billing_paraphrase_matches_with_two_examples() -> None:
    billing = IntentSet(
        {**FRONT_DESK, "billing": ["question about my bill", "I think I was overcharged"]}
    )
    match = billing.classify_sync("why was I charged twice")
    assert match.name == "billing"
    assert match.confidence > 0.8


def test_single_example_intent_ranks_paraphrase_first(front_desk: IntentSet) -> None:
    # One example generalises less (see the classifier's "Known limit"): the right
    # intent is ranked first by a wide gap, and a node threshold of 0.3 routes it.
    match = front_desk.classify_sync("why was I charged twice")
    assert best(match) == "billing"
    assert match.scores["billing"] - match.scores["book"] > 0.15
    lenient = IntentSet(FRONT_DESK, threshold=0.3)
    assert lenient.classify_sync("why was I charged twice").name == "billing"


@pytest.mark.parametrize(
    "text", ["what's the weather like", "who won the game last night", "my cat is sick"]
)
def test_out_of_scope_is_rejected(front_desk: IntentSet, text: str) -> None:
    match = front_desk.classify_sync(text)
    assert match.name is None
    assert match.confidence < DEFAULT_THRESHOLD


@pytest.mark.parametrize(
    "text",
    ["can I come in to get my teeth cleaned", "what's the weather like", "I need a cleaning", ""],
)
def test_confidence_and_scores_are_bounded(front_desk: IntentSet, text: str) -> None:
    match = front_desk.classify_sync(text)
    assert 0.0 <= match.confidence <= 1.0
    assert set(match.scores) == {"book", "billing"}
    assert all(-1.0 <= s <= 1.0 for s in match.scores.values())


def test_confidence_is_monotone_in_similarity() -> None:
    values = [confidence_of(s / 10) for s in range(-10, 11)]
    assert values == sorted(values)
    assert 0.0 <= values[0] < 0.01 and 0.99 < values[-1] <= 1.0


def test_exact_example_after_normalisation_has_full_confidence(front_desk: IntentSet) -> None:
    match = front_desk.classify_sync("  I NEED a cleaning!! ")
    assert match == IntentMatch("book", 1.0, match.scores)
    assert match.scores["book"] == 1.0
    assert normalise("I'd like, to   BOOK.") == "id like to book"


def test_example_shared_by_two_intents_is_left_to_the_model() -> None:
    shared = IntentSet({"a": ["help me", "book an appointment"], "b": ["help me", "goodbye"]})
    assert shared.classify_sync("help me").confidence < 1.0
    assert ("a", "b", 1.0) in shared.confusable_pairs()


def test_blank_turn_is_out_of_scope_without_the_model(front_desk: IntentSet) -> None:
    assert front_desk.classify_sync("  ...  ") == IntentMatch(
        None, 0.0, {"book": 0.0, "billing": 0.0}
    )


def test_threshold_controls_acceptance() -> None:
    strict = IntentSet(FRONT_DESK, threshold=0.99)
    loose = IntentSet(FRONT_DESK, threshold=0.0)
    text = "can I come in to get my teeth cleaned"
    assert strict.classify_sync(text).name is None
    assert loose.classify_sync(text).name == "book"
    assert loose.classify_sync("what's the weather like").name is not None


def test_margin_rejects_a_near_tie() -> None:
    tied = IntentSet(
        {"a": ["book an appointment"], "b": ["book an appointment please"]}, margin=0.5
    )
    match = tied.classify_sync("I want to make an appointment")
    assert match.name is None
    assert match.confidence >= DEFAULT_THRESHOLD


async def test_classify_runs_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    intent_set = IntentSet(FRONT_DESK)
    real = intent_set.classify_sync

    def recording(text: str) -> IntentMatch:
        seen.append(threading.get_ident())
        return real(text)

    intent_set.classify_sync = recording  # type: ignore[method-assign]
    matches = await asyncio.gather(
        intent_set.classify("can I come in to get my teeth cleaned"),
        intent_set.classify("what's the weather like"),
    )
    assert [m.name for m in matches] == ["book", None]
    assert seen and loop_thread not in seen


def test_make_intent_set_matches_the_factory_signature() -> None:
    intent_set = make_intent_set({"hours": ["what are your hours"], "bye": ["goodbye"]}, 0.6)
    assert intent_set.threshold == 0.6
    assert make_intent_set({"hours": ["when are you open"]}, None).threshold == DEFAULT_THRESHOLD
    assert intent_set.classify_sync("how late are you open today").name == "hours"


def test_confusable_pairs_flag_close_intents_only() -> None:
    intents = IntentSet(
        {
            "book": ["book an appointment"],
            "reschedule": ["change my appointment"],
            "cancel": ["cancel my appointment"],
            "hours": ["when are you open", "what are your hours"],
        }
    )
    pairs = intents.confusable_pairs()
    flagged = {frozenset(p[:2]) for p in pairs}
    assert frozenset(("book", "cancel")) in flagged
    assert frozenset(("reschedule", "cancel")) in flagged
    assert not any("hours" in p for p in flagged)
    assert [p[2] for p in pairs] == sorted((p[2] for p in pairs), reverse=True)
    assert intents.confusable_pairs(min_similarity=0.99) == []


@pytest.mark.parametrize(
    ("intents", "threshold", "message"),
    [
        ({}, None, "at least one intent"),
        ({"book": []}, None, "has no examples"),
        ({"book": "book an appointment"}, None, "must be a list"),
        ({"book": ["ok", "  !! "]}, None, "example 1"),
        ({"book": ["ok", None]}, None, "example 1"),
        ({"": ["ok"]}, None, "intent name"),
        ({"book": ["ok"]}, 1.5, "between 0 and 1"),
        ({"book": ["ok"]}, "high", "must be a number"),
        ({"book": ["ok"]}, True, "must be a number"),
    ],
)
def test_bad_configuration_is_a_specific_error(
    intents: dict[str, object], threshold: object, message: str
) -> None:
    with pytest.raises(IntentConfigError, match=message):
        IntentSet(intents, threshold=threshold)  # type: ignore[arg-type]


def test_non_string_turn_is_a_type_error(front_desk: IntentSet) -> None:
    with pytest.raises(TypeError, match="takes a string"):
        front_desk.classify_sync(None)  # type: ignore[arg-type]
