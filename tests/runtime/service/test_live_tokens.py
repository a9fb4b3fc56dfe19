"""LLM tokens reach the live feed joined per sentence (or per 100 ms), in order
with the other events, and their texts add up to the reply."""

from __future__ import annotations

from typing import Any

from runtime.service.live_tokens import TokenCoalescer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def token(text: str, message_id: str = "m1", node: str = "chat") -> dict[str, Any]:
    return {"type": "token", "text": text, "message_id": message_id, "node": node, "agent": "a"}


def test_tokens_are_joined_until_a_sentence_ends() -> None:
    joiner = TokenCoalescer(clock=FakeClock())
    out: list[dict[str, Any]] = []
    for word in ["Sure, ", "I ", "can ", "help. ", "Anything ", "else?"]:
        out += joiner.add(token(word))
    out += joiner.flush()
    assert out == [token("Sure, I can help. "), token("Anything else?")]


def test_a_token_older_than_max_age_goes_out_with_the_next_one() -> None:
    clock = FakeClock()
    joiner = TokenCoalescer(clock=clock, max_age_s=0.1)
    assert joiner.add(token("Let ")) == []
    clock.now += 0.05
    assert joiner.add(token("me ")) == []
    clock.now += 0.06
    assert joiner.add(token("see ")) == [token("Let me see ")]
    assert joiner.add(token("now")) == []
    assert joiner.flush() == [token("now")]
    assert joiner.flush() == []


def test_other_events_keep_their_place_after_the_tokens_before_them() -> None:
    joiner = TokenCoalescer(clock=FakeClock())
    node = {"type": "node", "node": "book"}
    assert joiner.add(token("One ")) == []
    assert joiner.add(token("two")) == []
    assert joiner.add(node) == [token("One two"), node]
    assert joiner.add(node) == [node]


def test_tokens_of_another_message_are_not_joined_to_the_previous_one() -> None:
    joiner = TokenCoalescer(clock=FakeClock())
    assert joiner.add(token("First ", message_id="m1")) == []
    assert joiner.add(token("second ", message_id="m2")) == [token("First ", message_id="m1")]
    assert joiner.flush() == [token("second ", message_id="m2")]
