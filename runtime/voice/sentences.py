"""Agent text in sentence-sized pieces for speech synthesis.

Sentence boundaries come from pySBD (rule-based, abbreviation- and number-aware:
"Dr. Smith", "3.30 p.m." and "e.g." do not end sentences). `SentenceChunker`
takes LLM tokens as they stream and releases each sentence as soon as the next
one has begun, so synthesis of the first sentence overlaps generation of the
rest. A run-on stretch without punctuation is released at a word boundary once
it passes `max_chars`, so speech never waits for a period that does not come.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

import pysbd

#: Longest text held back waiting for the end of a sentence.
DEFAULT_MAX_CHARS = 220
#: A sentence end followed by the start of more text: only then can a boundary
#: be final, since the tail may still grow ("3." -> "3.5").
_MAYBE_BOUNDARY = re.compile(r"[.!?…;:][\"'”’)\]]*\s+\S")


@lru_cache(maxsize=1)
def _segmenter() -> tuple[pysbd.Segmenter, threading.Lock]:
    # pySBD keeps per-call state on the segmenter object: one lock guards it.
    return pysbd.Segmenter(language="en", clean=False), threading.Lock()


def _segments(text: str) -> list[str]:
    """pySBD's segments, merged where it split without whitespace between
    them ("Dr.." -> one), so that sentences joined by spaces give the text."""
    segmenter, lock = _segmenter()
    with lock:
        raw = [str(s) for s in segmenter.segment(text)]
    out: list[str] = []
    for segment in raw:
        if out and not out[-1][-1:].isspace() and not segment[:1].isspace():
            out[-1] += segment
        else:
            out.append(segment)
    return out


def split_sentences(text: str) -> list[str]:
    """The sentences of a complete agent line, stripped, none empty; their
    concatenation with single spaces equals the line with whitespace runs
    collapsed."""
    text = " ".join(text.split())
    if not text:
        return []
    return [s.strip() for s in _segments(text) if s.strip()]


def word_count(text: str) -> int:
    return len(text.split())


def first_words(text: str, count: int) -> str:
    """The first `count` words of `text` (whitespace collapsed)."""
    if count <= 0:
        return ""
    return " ".join(text.split()[:count])


class SentenceChunker:
    """Accumulates streamed text and returns whole sentences as they complete.

    `push()` returns the sentences completed by the new text (possibly none);
    `flush()` returns what is left at the end of the stream. Every character
    pushed ends up in exactly one returned sentence (whitespace collapsed).
    """

    def __init__(self, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        if max_chars < 20:
            raise ValueError(f"max_chars must be at least 20, got {max_chars}")
        self.max_chars = max_chars
        self._buffer = ""

    @property
    def pending(self) -> str:
        """Text received but not yet released."""
        return self._buffer

    def push(self, text: str) -> list[str]:
        self._buffer += text
        out: list[str] = []
        if _MAYBE_BOUNDARY.search(self._buffer):
            parts = _segments(self._buffer)
            if len(parts) > 1:
                out += [p.strip() for p in parts[:-1] if p.strip()]
                self._buffer = parts[-1]
        while len(self._buffer) > self.max_chars:
            cut = self._buffer.rfind(" ", 0, self.max_chars)
            if cut <= 0:
                cut = self.max_chars
            head, self._buffer = self._buffer[:cut], self._buffer[cut:].lstrip()
            if head.strip():
                out.append(" ".join(head.split()))
        return [" ".join(s.split()) for s in out]

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer, ""
        return split_sentences(rest)

    def reset(self) -> None:
        """Forget pending text (after a barge-in)."""
        self._buffer = ""
