"""The stage queue: order, coalescing of queued caller audio, flush and timeouts."""

from __future__ import annotations

import asyncio

import pytest

from runtime.voice.frames import AgentAudioFrame, SpeechStartedFrame, UserAudioFrame
from runtime.voice.metrics import LoopClock
from runtime.voice.stages.base import CallShared, PipelineConfig, Stage

pytestmark = pytest.mark.looptime

FRAME = 640  # 20 ms of 16 kHz 16-bit PCM


async def _nothing(*_: object) -> None:
    return None


def _stage() -> Stage:
    return Stage(CallShared(config=PipelineConfig(), emit=_nothing, interrupt=_nothing))


def _audio(byte: int) -> UserAudioFrame:
    return UserAudioFrame(pcm=bytes([byte]) * FRAME, sample_rate=16000)


async def test_queued_caller_audio_is_joined_up_to_100_ms_and_never_across_other_frames() -> None:
    stage = _stage()
    for i in range(7):
        stage.put(_audio(i))
    stage.put(SpeechStartedFrame(onset_ms=1.0))
    stage.put(_audio(9))
    first = await stage.next_frame()
    assert isinstance(first, UserAudioFrame)
    assert first.pcm == b"".join(bytes([i]) * FRAME for i in range(5))  # 100 ms
    second = await stage.next_frame()
    assert isinstance(second, UserAudioFrame)
    assert second.pcm == bytes([5]) * FRAME + bytes([6]) * FRAME
    assert isinstance(await stage.next_frame(), SpeechStartedFrame)
    last = await stage.next_frame()
    assert isinstance(last, UserAudioFrame) and last.pcm == bytes([9]) * FRAME
    assert stage.qsize() == 0


async def test_a_frame_alone_is_handed_on_as_it_is() -> None:
    stage = _stage()
    frame = _audio(1)
    stage.put(frame)
    assert await stage.next_frame() is frame


async def test_flush_drops_data_frames_and_keeps_the_rest_in_order() -> None:
    stage = _stage()
    stage.put(_audio(1))
    stage.put(AgentAudioFrame(pcm=b"\0\0"))
    stage.put(SpeechStartedFrame())
    assert stage.flush() == 1
    assert isinstance(await stage.next_frame(), UserAudioFrame)
    assert isinstance(await stage.next_frame(), SpeechStartedFrame)


async def test_a_wait_times_out_on_the_clock_and_a_flushed_wake_up_keeps_waiting() -> None:
    stage = _stage()
    clock = LoopClock()
    start = clock()
    assert await stage.next_frame(0.5) is None
    assert clock() - start == pytest.approx(500.0, abs=1.0)

    waiting = asyncio.create_task(stage.next_frame())
    await asyncio.sleep(0.01)
    stage.put(AgentAudioFrame(pcm=b"\0\0"))
    stage.flush()  # the waiter was woken, but its frame is gone
    await asyncio.sleep(0.01)
    assert not waiting.done()
    frame = _audio(3)
    stage.put(frame)
    assert await asyncio.wait_for(waiting, 1.0) is frame
