"""Helpers for pipeline tests: a scripted call on fake providers.

Tests marked `looptime` run in virtual time: every sleep, timeout and the
real-time pacing of audio cost no wall time, and every timing is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage

from runtime.session import CallSession
from runtime.voice.local import CallerLine, LocalTransport
from runtime.voice.pipeline import CallReport, VoicePipeline
from runtime.voice.providers.base import STTProvider, TTSProvider
from runtime.voice.stages.base import PipelineConfig
from tests.runtime.fixtures.calls import compile_graphs, graph, session
from tests.runtime.voice.fakes import Codebook, FakeCallerTTS, FakeSTT, FakeTTS, FakeVAD
from tools.registry import ToolRegistry


@dataclass
class VoiceCall:
    report: CallReport
    transport: LocalTransport
    session: CallSession
    pipeline: VoicePipeline
    tts: Any
    stt: Any

    async def ai_messages(self) -> list[AIMessage]:
        state = await self.session.state()
        return [m for m in state["messages"] if isinstance(m, AIMessage)]

    def said(self) -> list[str]:
        return [str(e["text"]) for e in self.report.of_type("agent")]

    def played_ms(self, message_id: str | None = None) -> float:
        total = sum(n for _, m, n in self.transport.played if message_id in (None, m))
        return 1000.0 * total / 2 / 16000


async def voice_call(
    flow: str,
    lines: list[CallerLine],
    *,
    tts: TTSProvider | None = None,
    stt: STTProvider | None = None,
    codebook: Codebook | None = None,
    caller_word_ms: float = 250.0,
    tools: ToolRegistry | None = None,
    llm: Any = None,
    wait_timeout_s: float = 120.0,
    **config: Any,
) -> VoiceCall:
    """Run one call of `flow` (graph YAML) with a scripted caller on fake
    providers; `config` overrides `PipelineConfig` fields."""
    spec = graph(flow)
    codebook = codebook or Codebook()
    call = session(compile_graphs(spec), tools=tools)
    if llm is not None:
        call.context.llm_factory = lambda settings: llm
    the_tts = tts or FakeTTS()
    the_stt = stt or FakeSTT(codebook)
    transport = LocalTransport(
        lines,
        caller_tts=FakeCallerTTS(codebook, word_ms=caller_word_ms),
        wait_timeout_s=wait_timeout_s,
    )
    pipeline = VoicePipeline(
        call,
        transport,
        vad=FakeVAD(),
        stt=the_stt,
        tts=the_tts,
        config=PipelineConfig.for_graph(spec, **config),
    )
    report = await pipeline.run()
    return VoiceCall(report, transport, call, pipeline, the_tts, the_stt)
