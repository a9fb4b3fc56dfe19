"""A host that already compiles agents (the call service) shares them with the
voice WebSocket setup instead of compiling every graph a second time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runtime.compiler import CompiledCall
from runtime.convtest import compile_for_tests
from runtime.voice.providers import registry
from runtime.voice.websocket import CatalogCallSetup

GRAPHS = Path(__file__).resolve().parents[3] / "graphs"


async def test_voice_calls_use_the_host_compiled_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("make_vad", "make_stt", "make_tts"):
        monkeypatch.setattr(registry, name, lambda *a, **k: object())
    host = compile_for_tests(GRAPHS / "dental-booking.yaml")
    asked: list[str] = []

    async def compiler(graph_id: str) -> CompiledCall:
        asked.append(graph_id)
        return host

    setup = CatalogCallSetup(GRAPHS, compiler=compiler)
    first: Any = await setup("call-1", "dental-booking", None)
    second: Any = await setup("call-2", "dental-booking", None)
    assert asked == ["dental-booking", "dental-booking"]
    assert first.session.compiled is host and second.session.compiled is host
    assert setup.compiled("dental-booking") is host
