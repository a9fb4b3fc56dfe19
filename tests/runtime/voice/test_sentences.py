"""Sentence chunking of agent text for speech synthesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.voice.sentences import SentenceChunker, first_words, split_sentences


def test_split_keeps_abbreviations_times_and_numbers_together() -> None:
    text = "Dr. Smith sees you at 3.30 p.m. on Tuesday. It costs $45.50, e.g. for a cleaning! Ok?"
    assert split_sentences(text) == [
        "Dr. Smith sees you at 3.30 p.m. on Tuesday.",
        "It costs $45.50, e.g. for a cleaning!",
        "Ok?",
    ]


def test_split_collapses_whitespace_and_drops_empty_text() -> None:
    assert split_sentences("  Hello   there.\n\nBye.  ") == ["Hello there.", "Bye."]
    assert split_sentences("   ") == []


def stream(chunker: SentenceChunker, tokens: list[str]) -> list[tuple[int, str]]:
    """(index of the token after which each sentence came out, sentence)."""
    out = []
    for i, token in enumerate(tokens):
        out += [(i, s) for s in chunker.push(token)]
    out += [(len(tokens), s) for s in chunker.flush()]
    return out


def test_a_sentence_is_released_as_soon_as_the_next_one_begins() -> None:
    tokens = ["We are", " open", " from 9", " to 5", ".", " On", " Saturdays", " too", "."]
    out = stream(SentenceChunker(), tokens)
    assert out == [(5, "We are open from 9 to 5."), (9, "On Saturdays too.")]


def test_a_period_inside_a_number_or_abbreviation_does_not_release() -> None:
    chunker = SentenceChunker()
    assert chunker.push("It costs 3.") == []
    assert chunker.push("5 dollars at Dr. ") == []
    assert chunker.push("Smith's. Then") == ["It costs 3.5 dollars at Dr. Smith's."]
    assert chunker.pending == "Then"


def test_a_long_run_on_is_released_at_a_word_boundary() -> None:
    chunker = SentenceChunker(max_chars=40)
    out = chunker.push("and then we can also look at " * 3)
    assert out and all(len(s) <= 40 for s in out)
    assert all(not s.startswith(" ") and not s.endswith(" ") for s in out)
    rest = chunker.flush()
    assert " ".join(out + rest) == " ".join(("and then we can also look at " * 3).split())


def test_reset_forgets_pending_text() -> None:
    chunker = SentenceChunker()
    chunker.push("Half a sent")
    chunker.reset()
    assert chunker.flush() == []


def test_max_chars_must_be_sensible() -> None:
    with pytest.raises(ValueError, match="at least 20"):
        SentenceChunker(max_chars=5)


def test_first_words() -> None:
    assert first_words("one  two three", 2) == "one two"
    assert first_words("one two", 0) == ""
    assert first_words("one two", 9) == "one two"


words = st.sampled_from(["the", "clinic", "Dr.", "3.5", "open", "e.g.", "yes", "10:30", "a.m."])
ends = st.sampled_from(["", "", "", ".", "?", "!", ","])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(words, ends), min_size=1, max_size=30),
    st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=30),
)
def test_streamed_text_is_never_lost_or_duplicated(
    pieces: list[tuple[str, str]], cuts: list[int]
) -> None:
    text = " ".join(w + e for w, e in pieces)
    tokens, i, k = [], 0, 0
    while i < len(text):
        n = cuts[k % len(cuts)]
        tokens.append(text[i : i + n])
        i, k = i + n, k + 1
    sentences = [s for _, s in stream(SentenceChunker(max_chars=60), tokens)]
    assert all(s == s.strip() and s for s in sentences)
    assert " ".join(sentences) == " ".join(text.split())
