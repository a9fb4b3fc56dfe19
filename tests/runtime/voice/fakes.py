"""Deterministic speech providers for pipeline tests.

- `FakeVAD`: speech wherever the mean absolute amplitude of a detector frame
  is at least `SPEECH_LEVEL` (digital silence is 0).
- `Codebook` + `FakeCallerTTS`: a caller line becomes a square wave whose
  amplitude encodes the line (one code per distinct text), `word_ms` per word.
- `FakeSTT`: decodes that amplitude back to the text; interim results give the
  words "heard" so far by duration. It can be slowed, made to fail or to hang.
- `FakeTTS`: the agent's voice, `word_ms` of a 440 Hz tone per word, streamed
  one word per chunk; it can fail for given texts or always.
- `SlowChatModel`: an LLM streaming scripted replies word by word.

All waiting is `asyncio.sleep`, so looptime tests run them in virtual time.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field

from runtime.voice.providers.base import ProviderError, Transcript

RATE = 16000
SPEECH_LEVEL = 1000
BASE_AMPLITUDE = 2000
STEP = 40


class FakeVAD:
    sample_rate = RATE
    frame_samples = 512

    def __init__(self) -> None:
        self.frames = 0

    def clone(self) -> FakeVAD:
        return FakeVAD()

    def speech_probability(self, frame: bytes) -> float:
        self.frames += 1
        samples = np.frombuffer(frame, dtype="<i2").astype(np.int32)
        return 1.0 if samples.size and np.abs(samples).mean() >= SPEECH_LEVEL else 0.0


class Codebook:
    """Text <-> square-wave amplitude, shared by the fake caller voice and STT."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._texts: dict[int, str] = {}

    def amplitude(self, text: str) -> int:
        if text not in self._codes:
            code = len(self._codes)
            self._codes[text] = code
            self._texts[code] = text
        return BASE_AMPLITUDE + STEP * self._codes[text]

    def text(self, amplitude: int) -> str | None:
        code, rest = divmod(amplitude - BASE_AMPLITUDE, STEP)
        return self._texts.get(code) if rest == 0 else None


def square_wave(amplitude: int, ms: float, rate: int = RATE) -> bytes:
    n = round(ms * rate / 1000)
    samples = np.where((np.arange(n) // 20) % 2 == 0, amplitude, -amplitude).astype("<i2")
    return samples.tobytes()


class FakeCallerTTS:
    """The simulated caller's voice: codebook audio, `word_ms` per word."""

    name = "fake-caller"
    sample_rate = RATE

    def __init__(self, codebook: Codebook, word_ms: float = 250.0) -> None:
        self.codebook = codebook
        self.word_ms = word_ms

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        words = len(text.split())
        yield square_wave(self.codebook.amplitude(text), words * self.word_ms)


class FakeSTTStream:
    def __init__(self, provider: FakeSTT) -> None:
        self.provider = provider
        self._audio = b""
        self._interim: asyncio.Queue[Transcript | None] = asyncio.Queue()
        self._interim_words = 0

    def _decode(self, pcm: bytes) -> str:
        samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
        loud = samples[samples >= SPEECH_LEVEL]
        if loud.size == 0:
            return ""
        values, counts = np.unique(loud, return_counts=True)
        return self.provider.codebook.text(int(values[counts.argmax()])) or ""

    async def send(self, pcm: bytes) -> None:
        self.provider.sent_bytes += len(pcm)
        self._audio += pcm
        text = self._decode(self._audio)
        samples = np.frombuffer(self._audio, dtype="<i2")
        speech_ms = 1000 * int((np.abs(samples.astype(np.int32)) >= SPEECH_LEVEL).sum()) / RATE
        words = min(len(text.split()), int(speech_ms // self.provider.word_ms))
        if text and words > self._interim_words:
            self._interim_words = words
            self._interim.put_nowait(Transcript(" ".join(text.split()[:words]), final=False))

    async def finalize(self) -> Transcript:
        provider = self.provider
        provider.finalized += 1
        if provider.finalize_delay_s:
            await asyncio.sleep(provider.finalize_delay_s)
        if provider.fail == "hang":
            await asyncio.Event().wait()
        if provider.fail == "raise":
            raise ProviderError("fake STT failure")
        text = self._decode(self._audio)
        self._audio = b""
        self._interim_words = 0
        provider.finals.append(text)
        return Transcript(text, final=True)

    async def interim(self) -> AsyncIterator[Transcript]:
        while True:
            item = await self._interim.get()
            if item is None:
                return
            yield item

    async def close(self) -> None:
        self._interim.put_nowait(None)


class FakeSTT:
    name = "fake"
    sample_rate = RATE

    def __init__(
        self,
        codebook: Codebook,
        *,
        word_ms: float = 250.0,
        finalize_delay_s: float = 0.05,
        fail: str | None = None,
    ) -> None:
        self.codebook = codebook
        self.word_ms = word_ms
        self.finalize_delay_s = finalize_delay_s
        self.fail = fail
        self.finals: list[str] = []
        self.finalized = 0
        self.sent_bytes = 0
        self.opened = 0

    async def open(self) -> FakeSTTStream:
        self.opened += 1
        return FakeSTTStream(self)


class FakeTTS:
    """The agent's voice: `word_ms` of tone per word, one chunk per word."""

    name = "fake-tts"

    def __init__(
        self,
        *,
        word_ms: float = 300.0,
        sample_rate: int = RATE,
        fail_on: set[str] | None = None,
        fail_all: bool = False,
        hang: bool = False,
    ) -> None:
        self.word_ms = word_ms
        self.sample_rate = sample_rate
        self.fail_on = fail_on or set()
        self.fail_all = fail_all
        self.hang = hang
        self.texts: list[str] = []
        #: Loop time (s) at which each text's synthesis began.
        self.started: list[float] = []

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.texts.append(text)
        self.started.append(asyncio.get_running_loop().time())
        if self.hang:
            await asyncio.Event().wait()
        if self.fail_all or text in self.fail_on:
            raise ProviderError(f"fake TTS cannot say {text!r}")
        n = round(self.word_ms * self.sample_rate / 1000)
        tone = (3000 * np.sin(2 * np.pi * 440 * np.arange(n) / self.sample_rate)).astype("<i2")
        for _ in text.split():
            await asyncio.sleep(0)
            yield tone.tobytes()


class SlowChatModel(BaseChatModel):
    """A chat model streaming scripted replies one word per `token_delay_s`."""

    replies: list[str]
    token_delay_s: float = 0.1
    calls: int = 0
    tokens_sent: int = 0
    #: Loop time (s) at which each token was produced.
    token_times: list[float] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "slow-fake"

    def bind_tools(self, tools: Any, **kwargs: Any) -> SlowChatModel:  # type: ignore[override]
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("streaming only")

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        text = self.replies[min(self.calls, len(self.replies) - 1)]
        self.calls += 1
        for token in re.findall(r"\S+\s*", text):
            await asyncio.sleep(self.token_delay_s)
            self.tokens_sent += 1
            self.token_times.append(asyncio.get_running_loop().time())
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))
