"""Sentiment scorers: the offline VADER lexicon, the LLM scorer against a
local OpenAI-compatible server (falling back to the lexicon on errors, bad
answers and timeouts), and the choice the service makes from configuration."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from runtime.llm import make_chat_model
from runtime.sentiment import (
    ENV_SENTIMENT,
    LEXICON_METHOD,
    LexiconScorer,
    LLMScorer,
    configured_scorer,
    describe_method,
    label_for,
    parse_llm_score,
)
from schemas.spec import LLMSettings
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    error,
    openai_server_fixture,  # noqa: F401
    reply,
)

ANGRY = ["this is useless, I hate this", "I want a human right now, this is terrible"]
HAPPY = ["great, thank you so much", "perfect, that's wonderful"]
FLAT = ["94114", "next tuesday", "ten in the morning"]


def vader(text: str) -> float:
    return float(SentimentIntensityAnalyzer().polarity_scores(text)["compound"])


async def test_the_lexicon_scores_caller_turns_and_labels_them() -> None:
    scorer = LexiconScorer()
    angry, happy, flat = [await scorer.score(t) for t in (ANGRY, HAPPY, FLAT)]
    assert (angry.label, happy.label, flat.label) == ("negative", "positive", "neutral")
    assert angry.score < -0.3 and happy.score > 0.3 and flat.score == 0.0
    assert {angry.method, happy.method, flat.method} == {LEXICON_METHOD} == {"lexicon:vader"}
    # the call's score is the mean over turns that carry sentiment, so neutral
    # answers (a zip code, a day) do not dilute it
    mixed = await scorer.score([*FLAT, HAPPY[0]])
    assert mixed.score == pytest.approx(vader(HAPPY[0]), abs=1e-4)
    both = await scorer.score([ANGRY[0], HAPPY[0]])
    assert both.score == pytest.approx((vader(ANGRY[0]) + vader(HAPPY[0])) / 2, abs=1e-4)


async def test_no_caller_words_is_neutral_and_long_calls_score_off_the_loop() -> None:
    scorer = LexiconScorer()
    assert await scorer.score([]) == await scorer.score(["", "  "])
    assert (await scorer.score([])).label == "neutral"
    long_call = HAPPY * 200  # over INLINE_CHARS: scored in a worker thread
    assert (await scorer.score(long_call)).score == pytest.approx(
        scorer.score_now(HAPPY).score, abs=1e-4
    )


@pytest.mark.parametrize(
    ("score", "label"),
    [(1.0, "positive"), (0.05, "positive"), (0.049, "neutral"), (-0.049, "neutral"),
     (-0.05, "negative"), (-1.0, "negative")],
)  # fmt: skip
def test_labels_use_vaders_thresholds(score: float, label: str) -> None:
    assert label_for(score) == label


@pytest.mark.parametrize(
    ("answer", "score"),
    [('{"score": 0.4}', 0.4), ('Sure! {"score": -0.75} hope that helps', -0.75),
     ("-0.2", -0.2), ('{"score": 3}', 1.0), ('{"score": -9.5}', -1.0)],
)  # fmt: skip
def test_model_answers_are_parsed_and_clamped(answer: str, score: float) -> None:
    assert parse_llm_score(answer) == score


@pytest.mark.parametrize("answer", ["they seemed happy", '{"score": "high"}', "{}", "NaN", ""])
def test_answers_without_a_score_are_rejected(answer: str) -> None:
    with pytest.raises(ValueError, match="no sentiment score"):
        parse_llm_score(answer)


def llm_scorer(server: FakeOpenAIServer, **options: Any) -> LLMScorer:
    settings = LLMSettings(base_url=server.base_url, model="sentiment-test")
    return LLMScorer(make_chat_model(settings, max_retries=0), "sentiment-test", **options)


async def test_the_llm_scores_the_callers_lines(openai_server: FakeOpenAIServer) -> None:
    openai_server.script(reply('{"score": -0.6}'))
    result = await llm_scorer(openai_server).score(["I was charged twice", "again!"])
    assert (result.score, result.label, result.method) == (-0.6, "negative", "llm:sentiment-test")
    request = openai_server.requests[0]
    assert "caller" in (request.system or "").lower()
    assert request.messages[-1]["content"] == "Caller: I was charged twice\nCaller: again!"


@pytest.mark.parametrize(
    "answer", [error(500, "model crashed"), error(429, "rate limited"), reply("no idea, sorry")]
)
async def test_llm_errors_and_bad_answers_fall_back_to_the_lexicon(
    openai_server: FakeOpenAIServer, answer: Any
) -> None:
    openai_server.script(answer)
    result = await llm_scorer(openai_server).score(ANGRY)
    assert result == await LexiconScorer().score(ANGRY)
    assert result.method == "lexicon:vader"


class NeverAnswers(BaseChatModel):
    """A chat model whose requests never finish."""

    @property
    def _llm_type(self) -> str:
        return "never"

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        raise NotImplementedError

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.mark.looptime
async def test_a_model_that_does_not_answer_in_time_falls_back() -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = await LLMScorer(NeverAnswers(), "slow", timeout_s=20.0).score(HAPPY)
    assert result.method == LEXICON_METHOD and result.label == "positive"
    assert loop.time() - began == pytest.approx(20.0, abs=0.5)  # virtual time


async def test_a_call_without_caller_words_is_not_sent_to_the_model(
    openai_server: FakeOpenAIServer,
) -> None:
    result = await llm_scorer(openai_server).score(["", " "])
    assert result.method == LEXICON_METHOD and result.label == "neutral"
    assert openai_server.requests == []


def _clear_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "SWITCHBOARD_LLM_BASE_URL", "OPENAI_BASE_URL", ENV_SENTIMENT):
        monkeypatch.delenv(name, raising=False)


def test_the_service_uses_the_lexicon_without_an_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_llm_env(monkeypatch)
    assert isinstance(configured_scorer(), LexiconScorer)
    monkeypatch.setenv(ENV_SENTIMENT, "llm")  # asked for, but none configured
    assert isinstance(configured_scorer(), LexiconScorer)
    monkeypatch.setenv(ENV_SENTIMENT, "off")
    assert configured_scorer() is None


def test_the_service_uses_a_configured_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_llm_env(monkeypatch)
    monkeypatch.setenv("SWITCHBOARD_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SWITCHBOARD_LLM_MODEL", "local-model")
    scorer = configured_scorer()
    assert isinstance(scorer, LLMScorer) and scorer.method == "llm:local-model"
    monkeypatch.setenv(ENV_SENTIMENT, "lexicon")
    assert isinstance(configured_scorer(), LexiconScorer)
    monkeypatch.setenv(ENV_SENTIMENT, "sometimes")
    with pytest.raises(ValueError, match="SWITCHBOARD_SENTIMENT"):
        configured_scorer()


@pytest.mark.parametrize(
    ("method", "described"),
    [("lexicon:vader", "offline lexicon (VADER)"), ("llm:gpt-4o-mini", "LLM (gpt-4o-mini)"),
     ("lexicon", "offline lexicon"), ("llm", "LLM"), (None, "unknown"), ("manual", "manual")],
)  # fmt: skip
def test_methods_are_described_for_readers(method: str | None, described: str) -> None:
    assert describe_method(method) == described
