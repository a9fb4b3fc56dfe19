"""The stage queue: order, coalescing of queued caller audio, flush and timeouts."""

from __future__ import annotations

import asyncio

import pytest

from runtime.voice.frames import AgentAudioFrame, EndFrame, SpeechStartedFrame, UserAudioFrame
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


class _Recorder(Stage):
    """Notes which task processed each frame; a frame with `hold` set keeps
    process() suspended until it is released; `arm_s` sets the wait timeout."""

    def __init__(self) -> None:
        super().__init__(CallShared(config=PipelineConfig(), emit=_nothing, interrupt=_nothing))
        self.seen: list[tuple[bytes, asyncio.Task[object] | None]] = []
        self.hold: asyncio.Event | None = None
        self.arm_s: float | None = None
        self.timeouts: list[float] = []

    async def process(self, frame: object) -> None:
        if isinstance(frame, UserAudioFrame):
            self.seen.append((frame.pcm, asyncio.current_task()))
            if self.hold is not None:
                await self.hold.wait()
        await super().process(frame)  # type: ignore[arg-type]

    def wait_timeout_s(self) -> float | None:
        return self.arm_s

    async def on_timeout(self) -> None:
        self.timeouts.append(LoopClock()())
        self.arm_s = None


async def test_audio_fed_to_an_idle_stage_is_processed_in_the_feeding_task() -> None:
    stage = _Recorder()
    task = asyncio.create_task(stage.run())
    await asyncio.sleep(0.01)
    await stage.feed(_audio(1))
    assert stage.seen == [(_audio(1).pcm, asyncio.current_task())]
    # Anything but caller audio is queued for the stage's own task.
    await stage.feed(SpeechStartedFrame(onset_ms=1.0))
    assert stage.qsize() == 1
    stage.put(EndFrame())
    await asyncio.wait_for(task, 1.0)
    assert stage.qsize() == 0


async def test_frames_fed_while_a_stage_is_busy_queue_and_keep_their_order() -> None:
    stage = _Recorder()
    task = asyncio.create_task(stage.run())
    await asyncio.sleep(0.01)
    stage.hold = asyncio.Event()
    inline = asyncio.create_task(stage.feed(_audio(1)))
    await asyncio.sleep(0.01)  # process() of frame 1 is suspended inline
    await stage.feed(_audio(2))  # busy: queued, not run alongside
    await stage.feed(_audio(3))
    assert [pcm for pcm, _ in stage.seen] == [_audio(1).pcm]
    stage.hold.set()
    await asyncio.wait_for(inline, 1.0)
    await asyncio.sleep(0.01)
    # Frames 2 and 3 waited in the queue (joined) for the stage's own task.
    assert [pcm for pcm, _ in stage.seen] == [_audio(1).pcm, _audio(2).pcm + _audio(3).pcm]
    assert stage.seen[0][1] is inline and stage.seen[1][1] is task
    stage.put(EndFrame())
    await asyncio.wait_for(task, 1.0)


async def test_a_wait_timeout_set_by_inline_work_still_fires_on_the_clock() -> None:
    stage = _Recorder()
    task = asyncio.create_task(stage.run())
    await asyncio.sleep(0.01)
    clock = LoopClock()
    stage.arm_s = 0.3  # as a VAD entering speech: time out if audio stops
    await stage.feed(_audio(1))
    fed_at = clock()
    await asyncio.sleep(0.2)
    await stage.feed(_audio(2))  # more audio moves the deadline on
    fed_again = clock()
    assert fed_again - fed_at == pytest.approx(200.0, abs=1.0)
    await asyncio.sleep(1.0)
    assert len(stage.timeouts) == 1
    assert stage.timeouts[0] - fed_again == pytest.approx(300.0, abs=1.0)
    stage.put(EndFrame())
    await asyncio.wait_for(task, 1.0)
