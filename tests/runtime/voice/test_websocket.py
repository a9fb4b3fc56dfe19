"""The WebSocket transport on fake providers: a call runs over
`/ws/call/{session_id}`, the client can hang up, and a malformed frame closes
that call alone, with a reason code, while another call goes on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import WebSocket, WebSocketException
from websockets.exceptions import InvalidStatus

from runtime.context import CallContext
from runtime.session import CallSession
from runtime.voice.stages.base import PipelineConfig
from runtime.voice.websocket import (
    CLOSE_BAD_FRAME,
    CLOSE_NOT_FOUND,
    CLOSE_TOO_BIG,
    CLOSE_UNSUPPORTED,
    GraphNotFound,
    VoiceCall,
    create_voice_app,
)
from tests.runtime.fixtures.calls import compile_graphs, fixed_clock, graph
from tests.runtime.voice.fakes import Codebook, FakeSTT, FakeTTS, FakeVAD, square_wave
from tests.runtime.voice.wsclient import VoiceClient, call, serve
from tools.registry import ToolRegistry

FLOW = """
schema: switchboard/v1
id: ws-test
name: WebSocket test
start: ask
voice: {end_of_turn_ms: 300}
nodes:
  ask: {type: collect, slot: name, kind: text, prompt: "Hello! What is your name?", next: bye}
  bye: {type: end, text: "Goodbye {name}."}
"""
CODEBOOK = Codebook()


async def fake_setup(session_id: str, graph_id: str | None, caller: str | None) -> VoiceCall:
    spec = graph(FLOW)
    if graph_id not in (None, spec.id):
        raise GraphNotFound(f"no graph with id {graph_id!r}")
    session = CallSession(
        compile_graphs(spec),
        call_id=session_id,
        caller=caller,
        context=CallContext(tools=ToolRegistry(), clock=fixed_clock),
    )
    return VoiceCall(
        session=session,
        vad=FakeVAD(),
        stt=FakeSTT(CODEBOOK),
        tts=FakeTTS(word_ms=300),
        # Agent audio 20x faster than real time: these tests are about framing.
        config=PipelineConfig.for_graph(spec, speed=20.0),
    )


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve(create_voice_app(setup=fake_setup, max_binary_bytes=6400)) as url:
        yield url


def caller_line(text: str) -> bytes:
    """Codebook speech for `text` followed by 600 ms of silence."""
    return square_wave(CODEBOOK.amplitude(text), 250 * len(text.split())) + b"\x00" * 19200


async def finish_call(client: VoiceClient, name: str = "Ana") -> None:
    await client.next_event("waiting")
    await client.send_audio(caller_line(name))
    await client.send_audio(b"\x00" * 32000)  # the caller's line stays open


async def test_a_call_runs_over_the_websocket(base_url: str) -> None:
    async with call(f"{base_url}/ws/call/c-1?graph=ws-test&caller=%2B15551230001") as client:
        ready = await client.next_event("ready")
        assert ready == {"type": "ready", "call_id": "c-1", "sample_rate": 16000, **_at(ready)}
        await finish_call(client)
        hangup = await client.next_event("hangup")
        assert hangup["reason"] == "completed"
        code, _ = await client.wait_closed()
    assert code == 1000
    kinds = [e["type"] for e in client.events]
    for kind in ("node", "agent", "transcript", "caller", "slot", "outcome", "metrics"):
        assert kind in kinds, kind
    assert [e["text"] for e in client.of_type("caller")] == ["Ana"]
    said = [e["text"] for e in client.of_type("agent")]
    assert said == ["Hello! What is your name?", "Goodbye Ana."]
    assert client.of_type("outcome")[0]["outcome"] == "completed"
    # Agent audio: 16-bit PCM, all of both lines (300 ms per word at 16 kHz).
    assert len(client.audio) % 2 == 0
    assert len(client.audio) == pytest.approx(7 * 0.3 * 32000, abs=64)
    turn = client.of_type("metrics")[-1]
    assert turn["caller_text"] == "Ana" and turn["end_to_end_ms"] >= 300


async def test_the_client_can_hang_up(base_url: str) -> None:
    async with call(f"{base_url}/ws/call/c-2?graph=ws-test") as client:
        await client.next_event("waiting")
        await client.ws.send(json.dumps({"type": "hangup"}))
        outcome = await client.next_event("outcome")
        code, _ = await client.wait_closed()
    assert outcome["outcome"] == "abandoned"
    assert code == 1000


BAD_FRAMES = {
    "not json": ("text", "hello there", CLOSE_BAD_FRAME, "not JSON"),
    "not an object": ("text", "[1, 2]", CLOSE_BAD_FRAME, '"type"'),
    "unknown event": ("text", '{"type": "dance"}', CLOSE_BAD_FRAME, "unknown event type 'dance'"),
    "odd length": ("bytes", b"\x01\x02\x03", CLOSE_UNSUPPORTED, "odd length"),
    "oversized": ("bytes", b"\x00" * 6402, CLOSE_TOO_BIG, "exceeds 6400 bytes"),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
async def test_a_malformed_frame_closes_only_that_call(base_url: str, case: str) -> None:
    kind, payload, want_code, want_reason = BAD_FRAMES[case]
    async with (
        call(f"{base_url}/ws/call/good-{kind}?graph=ws-test") as good,
        call(f"{base_url}/ws/call/bad-{kind}?graph=ws-test") as bad,
    ):
        await good.next_event("ready")
        await bad.next_event("waiting")
        await bad.ws.send(payload)
        code, reason = await bad.wait_closed()
        assert code == want_code
        assert want_reason in reason
        assert bad.of_type("outcome")[0]["outcome"] == "abandoned"
        # The other call is unaffected and runs to its end.
        await finish_call(good)
        assert (await good.next_event("outcome"))["outcome"] == "completed"
        good_code, _ = await good.wait_closed()
        assert good_code == 1000


async def test_an_unknown_graph_closes_with_4404(base_url: str) -> None:
    async with call(f"{base_url}/ws/call/c-3?graph=nope") as client:
        code, reason = await client.wait_closed()
    assert code == CLOSE_NOT_FOUND and "nope" in reason


async def test_a_bad_session_id_is_refused(base_url: str) -> None:
    async with call(f"{base_url}/ws/call/-bad?graph=ws-test") as client:
        code, reason = await client.wait_closed()
    assert code == CLOSE_BAD_FRAME and "session id" in reason


async def test_the_auth_hook_runs_before_the_call() -> None:
    seen: list[str] = []

    async def auth(websocket: WebSocket) -> None:
        token = websocket.query_params.get("token")
        if token != "secret":
            raise WebSocketException(code=4401, reason="bad token")
        seen.append(token)

    with serve(create_voice_app(setup=fake_setup, auth=auth)) as url:
        with pytest.raises(InvalidStatus) as refused:
            async with call(f"{url}/ws/call/c-4?graph=ws-test&token=wrong"):
                pass
        assert refused.value.response.status_code == 403
        async with call(f"{url}/ws/call/c-5?graph=ws-test&token=secret") as client:
            await client.next_event("ready")
            await client.ws.send(json.dumps({"type": "hangup"}))
            await client.wait_closed()
    assert seen == ["secret"]


def _at(event: dict[str, Any]) -> dict[str, Any]:
    return {"_at": event["_at"]}


async def test_a_client_that_goes_quiet_after_speaking_still_ends_its_turn(base_url: str) -> None:
    # No silence after the caller's words (push-to-talk style): the VAD and the
    # turn-taking end the segment and the turn by the clock.
    async with call(f"{base_url}/ws/call/c-6?graph=ws-test") as client:
        await client.next_event("waiting")
        await client.send_audio(square_wave(CODEBOOK.amplitude("Ana"), 500))
        caller = await client.next_event("caller", timeout_s=10)
        assert caller["text"] == "Ana"
        assert (await client.next_event("outcome"))["outcome"] == "completed"
