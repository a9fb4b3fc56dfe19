"""Sentiment of a call from what the caller said.

Two scorers give a `Sentiment(score, label, method)` for a call's caller turns:

- `LexiconScorer`: offline, the VADER lexicon and rules (`vaderSentiment`,
  lexicon shipped with the package). Each caller turn gets VADER's compound
  score in [-1, 1]; the call's score is the mean over turns that carry any
  sentiment (compound != 0), 0.0 when none does. Method `lexicon:vader`.
- `LLMScorer`: asks a chat model (configured as in `runtime.llm`) for a score
  in [-1, 1] over the caller's lines. Method `llm:<model>`. Any model error,
  unusable answer or timeout falls back to the lexicon (whose method the
  result then carries, so a stored sentiment always says what produced it).

The label is derived from the score with VADER's usual thresholds (>= 0.05
positive, <= -0.05 negative, else neutral) for both scorers, so labels mean
the same whatever the method. `configured_scorer()` picks the LLM when one is
configured, else the lexicon; `$SWITCHBOARD_SENTIMENT` (auto, lexicon, llm,
off) overrides the choice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from runtime.db.recorder import Sentiment
from runtime.llm import LLMUnavailable, make_chat_model
from schemas.spec import LLMSettings

log = logging.getLogger("switchboard.sentiment")

LEXICON_METHOD = "lexicon:vader"
LLM_METHOD_PREFIX = "llm:"
POSITIVE_AT = 0.05
NEGATIVE_AT = -0.05
ENV_SENTIMENT = "SWITCHBOARD_SENTIMENT"
MODES = ("auto", "lexicon", "llm", "off")
#: Scoring more text than this runs in a worker thread, off the event loop.
INLINE_CHARS = 2_000
#: The most recent caller text an LLM sees (characters).
LLM_MAX_CHARS = 8_000
DEFAULT_LLM_TIMEOUT_S = 20.0

LLM_PROMPT = (
    "You rate how a caller felt during a phone call with an automated agent. "
    "You get only the caller's lines, in order. Answer with JSON only, like "
    '{"score": 0.4}, where score is a number from -1 (very negative: angry, '
    "frustrated) through 0 (neutral) to 1 (very positive: pleased, thankful)."
)
_JSON_OBJECT = re.compile(r"\{.*?\}", re.DOTALL)


class SentimentScorer(Protocol):
    """Scores a call from its caller turns (in order)."""

    method: str

    async def score(self, texts: Sequence[str]) -> Sentiment: ...


def label_for(score: float) -> str:
    """`positive`, `neutral` or `negative` for a score in [-1, 1]."""
    if score >= POSITIVE_AT:
        return "positive"
    if score <= NEGATIVE_AT:
        return "negative"
    return "neutral"


def describe_method(method: str | None) -> str:
    """A reader's name for a sentiment method: `lexicon:vader` -> `offline
    lexicon (VADER)`, `llm:<model>` -> `LLM (<model>)`, others as they are."""
    if not method:
        return "unknown"
    if method == LEXICON_METHOD:
        return "offline lexicon (VADER)"
    if method.startswith("lexicon"):
        return "offline lexicon"
    if method.startswith(LLM_METHOD_PREFIX):
        return f"LLM ({method[len(LLM_METHOD_PREFIX) :]})"
    if method == "llm":
        return "LLM"
    return method


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def lexicon_score(texts: Sequence[str]) -> float:
    """The VADER score of caller turns: the mean compound score of the turns
    with any sentiment, 0.0 when none has any. Always in [-1, 1]."""
    analyzer = _analyzer()
    scores = [float(analyzer.polarity_scores(t)["compound"]) for t in texts if t and t.strip()]
    carrying = [s for s in scores if s != 0.0]
    if not carrying:
        return 0.0
    return max(-1.0, min(1.0, sum(carrying) / len(carrying)))


class LexiconScorer:
    """Offline VADER scoring (see module docstring); method `lexicon:vader`."""

    method = LEXICON_METHOD

    def score_now(self, texts: Sequence[str]) -> Sentiment:
        """Score synchronously (CPU only, milliseconds per call)."""
        score = round(lexicon_score(texts), 4)
        return Sentiment(score=score, label=label_for(score), method=self.method)

    async def score(self, texts: Sequence[str]) -> Sentiment:
        """Score; long transcripts are scored in a worker thread."""
        if sum(len(t) for t in texts) > INLINE_CHARS:
            return await asyncio.to_thread(self.score_now, list(texts))
        return self.score_now(texts)


def parse_llm_score(answer: str) -> float:
    """The score in a model's answer (`{"score": x}`, or a bare number),
    clamped to [-1, 1]. ValueError when there is none."""
    candidates = [m.group(0) for m in _JSON_OBJECT.finditer(answer)] or [answer.strip()]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            value = value.get("score")
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return max(-1.0, min(1.0, float(value)))
    raise ValueError(f"no sentiment score in the model's answer {answer[:200]!r}")


class LLMScorer:
    """Scores with a chat model; falls back to `fallback` (the lexicon) on any
    error, an answer without a score, or after `timeout_s`."""

    def __init__(
        self,
        model: BaseChatModel,
        model_name: str,
        *,
        timeout_s: float = DEFAULT_LLM_TIMEOUT_S,
        fallback: LexiconScorer | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.model = model
        self.method = f"{LLM_METHOD_PREFIX}{model_name}"
        self.timeout_s = timeout_s
        self.fallback = fallback or LexiconScorer()

    async def score(self, texts: Sequence[str]) -> Sentiment:
        """The model's score, or the lexicon's when the model fails."""
        lines = [t.strip() for t in texts if t and t.strip()]
        if not lines:
            return await self.fallback.score(lines)
        transcript = "\n".join(f"Caller: {line}" for line in lines)[-LLM_MAX_CHARS:]
        messages = [SystemMessage(LLM_PROMPT), HumanMessage(transcript)]
        try:
            async with asyncio.timeout(self.timeout_s):
                reply = await self.model.ainvoke(messages)
            score = round(parse_llm_score(_text(reply.content)), 4)
        except Exception as exc:
            log.warning("LLM sentiment failed (%s: %s); using the lexicon", type(exc).__name__, exc)
            return await self.fallback.score(lines)
        return Sentiment(score=score, label=label_for(score), method=self.method)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def configured_scorer(settings: LLMSettings | None = None) -> SentimentScorer | None:
    """The scorer the service uses: `$SWITCHBOARD_SENTIMENT` = `off` -> None;
    `lexicon` -> the lexicon; `llm` or `auto` (default) -> the LLM when one is
    configured (an API key or base URL, see `runtime.llm`), else the lexicon.
    The model name is `$SWITCHBOARD_LLM_MODEL` or the settings' model."""
    mode = (os.environ.get(ENV_SENTIMENT) or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"${ENV_SENTIMENT} must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "off":
        return None
    if mode == "lexicon":
        return LexiconScorer()
    settings = settings or LLMSettings()
    try:
        model = make_chat_model(settings)
    except LLMUnavailable as exc:
        if mode == "llm":
            log.warning("no LLM for sentiment (%s); using the offline lexicon", exc)
        return LexiconScorer()
    name = str(getattr(model, "model_name", None) or settings.model)
    return LLMScorer(model, name, timeout_s=min(DEFAULT_LLM_TIMEOUT_S, max(settings.timeout_s, 1)))
