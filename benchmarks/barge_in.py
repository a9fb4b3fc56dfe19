"""Barge-in through the real pipeline: how fast caller speech stops the agent,
and whether short backchannels leave it talking.

Each call runs a graph whose agent reads a long paragraph (eSpeak NG, the
embedded TTS, through the real TTS and output stages, paced at real time to
the transport) and waits; the simulated caller talks over it. Caller audio is
synthesized once with eSpeak NG (resampled to 16 kHz, kept in memory) and
streamed in 20 ms frames at real-time pace, silence included, into the real
Silero VAD. The caller either interrupts ("sorry, can I stop you there") a
random 0.4-1.8 s after the agent's reply began, or says a backchannel
("uh-huh") over it. Barge-in is confirmed by speech duration
(`barge_in_min_speech_ms`, default thresholds of the graph schema), so the
recogniser does not take part in it: STT is a stand-in that returns a fixed
transcript at once.

The transport timestamps every piece of outbound audio and the moment its
buffer is cleared (`clear()`: the outbound audio stopped). Per interruption:
- `onset_to_stop_ms`: the caller's speech onset (the clock time of the first
  sample >= 500 of the utterance in the stream, known exactly because the
  benchmark placed it there) -> the transport's clear;
- `detect_to_stop_ms`: the pipeline's own figure, barge-in confirmed ->
  clear returned.
A clear during a backchannel (before the next caller line) is a false
interruption; an interruption with no clear is a miss. Backchannels are said
at two rates: "short" ones (speech under the threshold, which must never
interrupt) and "natural" ones at the caller's normal rate, whose speech lasts
longer than the threshold (a duration-only rule is expected to take those as
interruptions; they are counted separately to show that limit).

Several calls run concurrently on one event loop (as in the service) to fit
200 interruptions in about two minutes; the concurrency is reported.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.harness import Settings, Skipped, distribution
from runtime.voice.audio import bytes_for_ms, resample
from runtime.voice.frames import AgentAudioFrame, UserAudioFrame
from runtime.voice.metrics import loop_clock
from runtime.voice.providers.base import VAD, Transcript

DESCRIPTION = (
    "Caller speech over the agent through the real pipeline (Silero VAD, eSpeak NG, real-time "
    "audio): onset/detection -> outbound audio stopped, false interruptions by backchannels"
)
GOALS = {"detect_to_stop_p99_ms_max": 20.0, "onset_to_stop_p50_ms_max": 250.0}
REFERENCE = {"detect_to_stop_mean_ms": 47.0, "detect_to_stop_max_ms": 70.0}

RATE = 16000
FRAME_MS = 20.0
#: A sample at least this loud (of 32768) is the start of caller speech.
ONSET_LEVEL = 500
PARAGRAPH = (
    "Thanks for calling the Bright Smiles clinic. Before we start, let me tell you about our "
    "opening hours and our new services. We are open every weekday from nine in the morning "
    "to five in the afternoon, and on Saturday mornings from nine to noon. We now offer "
    "teeth whitening, evening appointments on Thursdays, and a reminder by text message the "
    "day before your visit. Parking is free behind the building, next to the park."
)
FLOW = f"""
schema: switchboard/v1
id: bench-barge-in
name: Barge-in benchmark
start: talk
nodes:
  talk: {{type: collect, slot: reply, kind: text, prompt: "{PARAGRAPH}", next: talk}}
"""
INTERRUPTIONS = (
    "sorry, can I stop you there",
    "wait, I have a question",
    "hold on a second",
    "actually, I just need to book a visit",
    "excuse me, can you help me",
)
#: (text, eSpeak rate in words per minute, kind)
BACKCHANNELS = (
    ("uh-huh", 260, "short"),
    ("yeah", 260, "short"),
    ("right", 260, "short"),
    ("uh-huh", 160, "natural"),
    ("okay", 160, "natural"),
)
CALLER_RATE = 160
#: The caller interrupts this long after the agent's reply began (uniform, ms).
INTERRUPT_AFTER_MS = (400.0, 1800.0)
#: A backchannel comes this long after the reply began, and the next line
#: this long after the backchannel ended (uniform, ms).
BACKCHANNEL_AFTER_MS = (300.0, 900.0)
AFTER_BACKCHANNEL_MS = (500.0, 1200.0)
#: The caller gives up waiting for the agent after this long (a hang guard).
WAIT_LIMIT_S = 30.0

FULL = {"interruptions": 200, "backchannels": 40, "concurrency": 5}
QUICK = {"interruptions": 12, "backchannels": 4, "concurrency": 4}


@dataclass(frozen=True)
class Utterance:
    """Caller speech at 16 kHz with the offset of its first loud sample."""

    text: str
    pcm: bytes
    onset_sample: int
    speech_ms: float
    kind: str = "interrupt"
    rate: int = CALLER_RATE


def utterance(text: str, pcm: bytes, kind: str = "interrupt", rate: int = CALLER_RATE) -> Utterance:
    """Wrap 16 kHz PCM: where its speech starts and how long it lasts (first
    to last sample at or above `ONSET_LEVEL`). ValueError when it is silent."""
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    loud = np.flatnonzero(samples >= ONSET_LEVEL)
    if loud.size == 0:
        raise ValueError(f"synthesized caller line {text!r} is silent")
    speech_ms = 1000.0 * (int(loud[-1]) - int(loud[0])) / RATE
    return Utterance(text, pcm, int(loud[0]), speech_ms, kind, rate)


_voices: dict[tuple[str, int], Utterance] = {}


async def caller_voice(text: str, rate: int = CALLER_RATE, kind: str = "interrupt") -> Utterance:
    """`text` said by eSpeak NG at `rate` words per minute (synthesized once per
    process, then served from memory)."""
    key = (text, rate)
    if key not in _voices:
        from runtime.voice.providers.espeak_tts import EspeakTTS

        tts = EspeakTTS(rate=rate)
        pcm = resample(await tts.render(text), tts.sample_rate, RATE)
        _voices[key] = utterance(text, pcm, kind, rate)
    found = _voices[key]
    return found if found.kind == kind else Utterance(**{**found.__dict__, "kind": kind})


# --- providers ----------------------------------------------------------------------


class _StandInStream:
    def __init__(self) -> None:
        self._closed = asyncio.Event()
        self.sent = 0

    async def send(self, pcm: bytes) -> None:
        self.sent += len(pcm)

    async def finalize(self) -> Transcript:
        seconds = self.sent / (2 * RATE)
        self.sent = 0
        return Transcript(f"caller speech of {seconds:.1f} seconds", final=True)

    async def interim(self) -> AsyncIterator[Transcript]:
        await self._closed.wait()
        return
        yield  # an async generator with no interim results

    async def close(self) -> None:
        self._closed.set()


class CountingVAD:
    """A VAD that counts the audio it has judged: where the pipeline's VAD
    stage is in the caller's stream (its clone per call is `live`)."""

    def __init__(self, inner: VAD) -> None:
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self.frame_samples = inner.frame_samples
        self.samples = 0
        self.live: CountingVAD | None = None

    def clone(self) -> CountingVAD:
        twin = CountingVAD(self.inner.clone())
        self.live = twin
        return twin

    def speech_probability(self, frame: bytes) -> float:
        self.samples += self.frame_samples
        return self.inner.speech_probability(frame)

    def position(self) -> int:
        """Samples of the stream the call's detector has judged so far."""
        return self.live.samples if self.live is not None else 0


class StandInSTT:
    """STT stand-in: a fixed final transcript at once, no interim results (the
    barge-in rule used here does not read transcripts)."""

    name = "stand-in"
    sample_rate = RATE

    async def open(self) -> _StandInStream:
        return _StandInStream()


# --- the caller's side ----------------------------------------------------------------


@dataclass
class Line:
    """One caller line of the script and what the transport saw of it."""

    voice: Utterance
    after_ms: float
    onset_at: float | None = None
    end_at: float | None = None
    #: Sample index of the onset in the caller's stream.
    onset_pos: int | None = None


@dataclass
class BenchTransport:
    """Streams the scripted caller at real-time pace and timestamps the agent's
    outbound audio: every piece played and every clear (audio stopped)."""

    lines: list[Line]
    vad: CountingVAD | None = None
    name: str = "bench"
    sample_rate: int = RATE
    played: list[tuple[float, str]] = field(default_factory=list)
    cleared: list[float] = field(default_factory=list)
    #: For each clear: the stream position (samples) the VAD had judged, and
    #: the audio sent but not yet judged (ms), the pipeline's backlog.
    cleared_at_pos: list[int] = field(default_factory=list)
    backlog_ms: list[float] = field(default_factory=list)
    #: Pieces of a cut message played after its clear (must stay 0).
    late_plays: int = 0
    gave_up: bool = False
    closed: str | None = None

    def __post_init__(self) -> None:
        self._agent_started: float | None = None
        self._cut: set[str] = set()
        self._last_id = ""
        self._ended = asyncio.Event()
        self._next_at = 0.0
        self._sent = 0  # samples of caller audio handed over

    async def incoming(self) -> AsyncIterator[UserAudioFrame]:
        clock = loop_clock
        self._next_at = clock()
        step = bytes_for_ms(FRAME_MS, RATE)
        silence = b"\x00" * step
        last_end: float | None = None
        for line in self.lines:
            deadline = clock() + WAIT_LIMIT_S * 1000.0
            while not self._ready(line, last_end):
                if self._ended.is_set():
                    return
                if clock() > deadline:
                    self.gave_up = True
                    return
                yield await self._paced(silence)
            pcm = line.voice.pcm
            onset_byte = line.voice.onset_sample * 2
            for i in range(0, len(pcm), step):
                piece = pcm[i : i + step]
                frame = await self._paced(piece + b"\x00" * (step - len(piece)))
                if i <= onset_byte < i + step:
                    # The frame is handed over when its last sample is spoken.
                    line.onset_at = clock() - FRAME_MS + 1000.0 * (onset_byte - i) / 2 / RATE
                    line.onset_pos = self._sent - (step - (onset_byte - i)) // 2
                yield frame
            line.end_at = last_end = clock()
        for _ in range(int(300 / FRAME_MS)):  # let the last barge-in land
            yield await self._paced(silence)

    def _ready(self, line: Line, last_end: float | None) -> bool:
        started = self._agent_started
        if started is None:
            return False
        since = max(started, last_end or started)
        return loop_clock() >= since + line.after_ms

    async def _paced(self, pcm: bytes) -> UserAudioFrame:
        self._next_at += FRAME_MS
        delay = self._next_at - loop_clock()
        if delay > 0:
            await asyncio.sleep(delay / 1000.0)
        self._sent += len(pcm) // 2
        return UserAudioFrame(pcm=pcm, sample_rate=RATE, ts_ms=loop_clock())

    async def play(self, frame: AgentAudioFrame) -> None:
        now = loop_clock()
        if frame.message_id in self._cut:
            self.late_plays += 1
        if self._agent_started is None:
            self._agent_started = now
        self._last_id = frame.message_id
        self.played.append((now, frame.message_id))

    async def clear(self) -> None:
        self.cleared.append(loop_clock())
        judged = self.vad.position() if self.vad is not None else self._sent
        self.cleared_at_pos.append(judged)
        self.backlog_ms.append(1000.0 * max(0, self._sent - judged) / RATE)
        self._cut.add(self._last_id)
        self._agent_started = None

    async def event(self, name: str, data: dict[str, object]) -> None:
        if name == "hangup":
            self._ended.set()

    async def close(self, reason: str = "") -> None:
        self.closed = reason
        self._ended.set()


# --- one call -------------------------------------------------------------------------


async def script(rng: random.Random, interruptions: int, backchannels: int) -> list[Line]:
    """A caller script: `interruptions` interruptions with `backchannels`
    backchannels spread among them (each just before an interruption)."""
    lines: list[Line] = []
    slots = sorted(rng.sample(range(interruptions), min(backchannels, interruptions)))
    extra = backchannels - len(slots)
    slots += [rng.randrange(interruptions) for _ in range(extra)]
    per_slot = {i: slots.count(i) for i in set(slots)}
    for i in range(interruptions):
        for n in range(per_slot.get(i, 0)):
            text, rate, kind = BACKCHANNELS[rng.randrange(len(BACKCHANNELS))]
            after = rng.uniform(*(BACKCHANNEL_AFTER_MS if n == 0 else AFTER_BACKCHANNEL_MS))
            lines.append(Line(await caller_voice(text, rate, kind), after))
        after = rng.uniform(*(INTERRUPT_AFTER_MS if i not in per_slot else AFTER_BACKCHANNEL_MS))
        text = INTERRUPTIONS[rng.randrange(len(INTERRUPTIONS))]
        lines.append(Line(await caller_voice(text), after))
    return lines


@dataclass
class CallResult:
    onset_to_stop: list[float] = field(default_factory=list)
    detect_to_stop: list[float] = field(default_factory=list)
    pipeline_onset_to_stop: list[float] = field(default_factory=list)
    missed: int = 0
    false_by_kind: dict[str, int] = field(default_factory=dict)
    backchannels_by_kind: dict[str, int] = field(default_factory=dict)
    late_plays: int = 0
    gave_up: bool = False
    errors: list[str] = field(default_factory=list)
    backlog_ms: list[float] = field(default_factory=list)


def _owner(spoken: list[Line], at: float, pos: int | None) -> int | None:
    """Index of the last line whose onset precedes the stream position `pos`
    (or, without one, the clock time `at`)."""
    found = None
    for i, line in enumerate(spoken):
        reached = (
            line.onset_pos is not None and line.onset_pos <= pos
            if pos is not None
            else line.onset_at is not None and line.onset_at <= at
        )
        if reached:
            found = i
    return found


def score(
    lines: list[Line], transport: BenchTransport, barge_ins: list[dict[str, Any]]
) -> CallResult:
    """Match every clear to the caller line it happened in and turn the call
    into figures. The owner is the last line whose onset the VAD had reached
    when the agent was cut (the stream position, so a pipeline running behind
    real time still charges the right line)."""
    result = CallResult(
        late_plays=transport.late_plays,
        gave_up=transport.gave_up,
        backlog_ms=list(transport.backlog_ms),
    )
    spoken = [line for line in lines if line.onset_at is not None and line.onset_pos is not None]
    clears: dict[int, list[float]] = {}
    positions: list[int | None] = list(transport.cleared_at_pos)
    if len(positions) != len(transport.cleared):
        positions = [None] * len(transport.cleared)
    for at, pos in zip(transport.cleared, positions, strict=True):
        owner = _owner(spoken, at, pos)
        if owner is None:
            result.errors.append("the agent was cut before the caller spoke")
            continue
        clears.setdefault(owner, []).append(at)
    for i, line in enumerate(spoken):
        assert line.onset_at is not None
        kind = line.voice.kind
        stops = clears.get(i, [])
        if kind == "interrupt":
            if stops:
                result.onset_to_stop.append(stops[0] - line.onset_at)
            else:
                result.missed += 1
        else:
            result.backchannels_by_kind[kind] = result.backchannels_by_kind.get(kind, 0) + 1
            if stops:
                result.false_by_kind[kind] = result.false_by_kind.get(kind, 0) + 1
    for event in barge_ins:
        if event.get("detect_to_stop_ms") is not None:
            result.detect_to_stop.append(float(event["detect_to_stop_ms"]))
        if event.get("onset_to_stop_ms") is not None:
            result.pipeline_onset_to_stop.append(float(event["onset_to_stop_ms"]))
    return result


def compile_flow() -> Any:
    """The benchmark graph, compiled on an in-memory checkpointer."""
    from langgraph.checkpoint.memory import InMemorySaver

    from runtime.compiler import compile_call
    from schemas.loader import load_graph_text

    loaded = load_graph_text(FLOW, file="barge_in.yaml")
    if loaded.spec is None:
        raise RuntimeError("; ".join(d.format() for d in loaded.diagnostics))
    return compile_call(loaded.spec, checkpointer=InMemorySaver())


async def run_call(compiled: Any, lines: list[Line], vad: Any, tts: Any) -> CallResult:
    """One call of the benchmark graph with `lines` as the caller."""
    from runtime.context import CallContext
    from runtime.session import CallSession
    from runtime.voice.pipeline import VoicePipeline
    from runtime.voice.stages.base import PipelineConfig

    session = CallSession(compiled, context=CallContext())
    counting = CountingVAD(vad)
    transport = BenchTransport(lines, vad=counting)
    pipeline = VoicePipeline(
        session,
        transport,
        vad=counting,
        stt=StandInSTT(),
        tts=tts,
        config=PipelineConfig.for_graph(compiled.root),
    )
    report = await pipeline.run()
    return score(lines, transport, report.of_type("barge_in"))


async def measure(
    interruptions: int, backchannels: int, concurrency: int, seed: int = 7
) -> dict[str, Any]:
    """Run `interruptions` interruptions and `backchannels` backchannels over
    `concurrency` simultaneous calls; the figures of the run."""
    from runtime.voice.providers.espeak_tts import EspeakTTS
    from runtime.voice.providers.silero_vad import SileroVAD

    if interruptions < 1 or concurrency < 1 or backchannels < 0:
        raise ValueError("need at least one interruption and one call, backchannels >= 0")
    try:
        vad = SileroVAD()
        tts = EspeakTTS()
        vad.speech_probability(b"\x00" * vad.frame_bytes)  # load and warm the model
    except Exception as exc:
        raise Skipped(f"embedded VAD/TTS unavailable: {exc}") from exc
    compiled = await asyncio.to_thread(compile_flow)
    calls = min(concurrency, interruptions)
    rng = random.Random(seed)
    scripts = []
    for c in range(calls):
        n_int = interruptions // calls + (1 if c < interruptions % calls else 0)
        n_bc = backchannels // calls + (1 if c < backchannels % calls else 0)
        scripts.append(await script(rng, n_int, n_bc))
    t0 = time.perf_counter()
    results = await asyncio.gather(*(run_call(compiled, s, vad, tts) for s in scripts))
    wall = time.perf_counter() - t0
    return summarise(results, scripts, calls, wall)


def summarise(
    results: list[CallResult], scripts: list[list[Line]], calls: int, wall_s: float
) -> dict[str, Any]:
    """The JSON figures of a run."""
    onset: list[float] = []
    detect: list[float] = []
    pipeline_onset: list[float] = []
    backlog: list[float] = []
    false: dict[str, int] = {}
    said: dict[str, int] = {}
    errors: list[str] = []
    for r in results:
        onset += r.onset_to_stop
        detect += r.detect_to_stop
        pipeline_onset += r.pipeline_onset_to_stop
        backlog += r.backlog_ms
        for k, v in r.false_by_kind.items():
            false[k] = false.get(k, 0) + v
        for k, v in r.backchannels_by_kind.items():
            said[k] = said.get(k, 0) + v
        errors += r.errors
    speech: dict[str, list[float]] = {}
    for lines in scripts:
        for line in lines:
            speech.setdefault(line.voice.kind, []).append(line.voice.speech_ms)
    p50 = distribution(onset).get("p50")
    p99 = distribution(detect).get("p99")
    return {
        "settings": {
            "calls_concurrent": calls,
            "interruptions_scripted": sum(
                1 for s in scripts for line in s if line.voice.kind == "interrupt"
            ),
            "backchannels_scripted": sum(
                1 for s in scripts for line in s if line.voice.kind != "interrupt"
            ),
            "barge_in_rule": "default graph thresholds: min_speech_ms 250, min_words 0",
            "vad": "Silero VAD v6 (onnxruntime)",
            "agent_tts": "eSpeak NG through the TTS and output stages, real-time pacing",
            "caller_audio": f"eSpeak NG at {CALLER_RATE} wpm, 16 kHz, 20 ms frames, real time",
            "stt": "stand-in (fixed transcript, no interims): the barge-in rule used does "
            "not read transcripts",
            "caller_speech_ms": {k: distribution(v, digits=1) for k, v in speech.items()},
        },
        "interruptions": len(onset),
        "missed_interruptions": sum(r.missed for r in results),
        "onset_to_stop_ms": distribution(onset, digits=1),
        "detect_to_stop_ms": distribution(detect, digits=2),
        "pipeline_onset_to_stop_ms": distribution(pipeline_onset, digits=1),
        "vad_backlog_at_stop_ms": distribution(backlog, digits=1),
        "backchannels": said,
        "false_interruptions": {k: false.get(k, 0) for k in said},
        "late_audio_pieces_after_clear": sum(r.late_plays for r in results),
        "calls_gave_up": sum(1 for r in results if r.gave_up),
        "errors": errors[:10],
        "run_wall_s": round(wall_s, 1),
        "goals": GOALS,
        "met": {
            "detect_to_stop_p99": p99 is not None and p99 < GOALS["detect_to_stop_p99_ms_max"],
            "onset_to_stop_p50": p50 is not None and p50 < GOALS["onset_to_stop_p50_ms_max"],
            "short_backchannels_never_interrupt": false.get("short", 0) == 0,
        },
        "baseline": {
            "reference_design": REFERENCE,
            "floor_note": "onset -> stop cannot be below min_speech_ms (250 ms) plus the "
            "VAD's onset delay: the rule waits for that much speech before it interrupts",
        },
    }


async def run(settings: Settings) -> dict[str, Any]:
    """The barge-in figures with the quick or full settings."""
    sizes = QUICK if settings.quick else FULL
    return await measure(
        sizes["interruptions"], sizes["backchannels"], sizes["concurrency"], seed=settings.seed
    )
