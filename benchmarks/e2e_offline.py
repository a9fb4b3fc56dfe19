"""Scripted voice calls on the example graphs with the embedded providers only
(Silero VAD, faster-whisper tiny.en, eSpeak NG): how long the caller waits for
the agent after each turn, and where that time goes.

Each call is `runtime.voice.local.run_local_call` on a graph in `graphs/`: the
caller's lines are synthesized with eSpeak NG and streamed at real-time pace
into the real pipeline, the agent's audio is paced out at real time. Per
caller turn:
- `end_of_speech_to_first_audio_ms`: the true end of the caller's speech
  (onset of the line in the stream plus the span of its audio at or above the
  onset level, known from the synthesized audio) -> the first agent audio the
  transport received after the turn was decided;
- `decision_to_first_audio_ms`: the end-of-turn decision (the pipeline's
  `caller` event, stamped on the loop clock when it is emitted) -> that audio;
- the stages, from the pipeline's own per-turn metrics
  (`runtime.voice.metrics`): `end_of_turn_wait_ms` (true end of speech ->
  decision: the VAD's end-of-segment detection and the `end_of_turn_ms`
  silence, or the STT final if that comes later), `stt_final_ms` (VAD end of
  speech -> final transcript), `graph_step_ms` (the whole graph step, which
  overlaps with the first audio: sentences go to TTS as they come),
  `tts_first_audio_ms` (first sentence to TTS -> its first audio) and the
  pipeline's own `end_to_end_ms` (VAD end of speech -> first audio out).
Shares are each stage's median over the median of the total it belongs to.
Calls run one after another (Whisper decodes on one worker per process).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import Settings, Skipped, distribution, ratio
from runtime.voice.audio import resample

DESCRIPTION = (
    "Scripted calls on the example graphs with Silero + Whisper tiny.en + eSpeak NG: end of "
    "speech / end-of-turn decision -> first agent audio, per stage"
)
GOALS = {
    "decision_to_first_audio_p50_ms_max": 300.0,
    "end_of_speech_to_first_audio_p50_ms_max": 800.0,
}
REFERENCE = {"end_to_end_median_ms_cloud": 1350.0}
GRAPHS_DIR = Path(__file__).resolve().parent.parent / "graphs"
RATE = 16000
ONSET_LEVEL = 500


@dataclass(frozen=True)
class Script:
    graph: str
    caller: str
    lines: tuple[str, ...]


SCRIPTS = (
    Script(
        "dental-booking.yaml",
        "+15551230001",
        ("I need a cleaning", "next Tuesday", "ten in the morning", "Maria Garcia"),
    ),
    Script(
        "front-desk.yaml",
        "+15551230002",
        ("yeah hi, I was charged twice last month", "yes please", "no that's all, thank you"),
    ),
    Script(
        "front-desk.yaml",
        "+15551230003",
        (
            "my internet is down again",
            "nine four one one four",
            "okay, it's unplugged",
            "yes it's green",
            "yeah, pages load now",
        ),
    ),
    Script(
        "front-desk.yaml",
        "+15551230001",
        ("hi, I'd like to book a cleaning please", "next Tuesday", "ten in the morning"),
    ),
)
#: `--quick`: the first two turns of the dental booking call.
QUICK_SCRIPTS = (Script(SCRIPTS[0].graph, SCRIPTS[0].caller, SCRIPTS[0].lines[:2]),)


async def speech_span_ms(text: str, tts: Any) -> float:
    """How long the caller's line is spoken: first to last sample at or above
    the onset level of its 16 kHz synthesized audio (as `LocalTransport` plays it)."""
    pcm = resample(await tts.render(text), tts.sample_rate, RATE)
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    loud = np.flatnonzero(samples >= ONSET_LEVEL)
    if loud.size == 0:
        raise ValueError(f"caller line {text!r} synthesizes to silence")
    return 1000.0 * (int(loud[-1]) - int(loud[0])) / RATE


def turn_figures(
    decisions: list[float],
    ends: list[float],
    played: list[tuple[float, str, int]],
    metrics: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Per caller turn: the measured intervals and the pipeline's stage metrics.
    `decisions[k]` and `ends[k]` are the k-th caller turn's decision and true
    end of speech (clock ms); `metrics` are the call's turns (0 is the opening)."""
    caller_turns = [m for m in metrics if m.get("caller_text") is not None]
    out = []
    for k, decided in enumerate(decisions):
        first = next((t for t, _, n in played if t >= decided and n > 0), None)
        turn = caller_turns[k] if k < len(caller_turns) else {}
        row: dict[str, Any] = {
            "caller_text": turn.get("caller_text"),
            "decision_to_first_audio_ms": None if first is None else first - decided,
            "end_of_speech_to_first_audio_ms": (
                None if first is None or k >= len(ends) else first - ends[k]
            ),
            "end_of_turn_wait_ms": None if k >= len(ends) else decided - ends[k],
        }
        for key in ("stt_final_ms", "graph_step_ms", "tts_first_audio_ms", "end_to_end_ms"):
            row[key] = turn.get(key)
        out.append(row)
    return out


async def run_script(script: Script, tts: Any) -> list[dict[str, Any]]:
    """One call of `script`; its caller turns' figures."""
    from runtime.voice.local import CallerLine, run_local_call

    loop = asyncio.get_running_loop()
    decisions: list[float] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("type") == "caller":
            decisions.append(loop.time() * 1000.0)

    spans = [await speech_span_ms(line, tts) for line in script.lines]
    call = await run_local_call(
        GRAPHS_DIR / script.graph,
        [CallerLine(text) for text in script.lines],
        caller=script.caller,
        caller_tts=tts,
        on_event=on_event,
    )
    onsets = call.transport.onsets
    ends = [onset + span for onset, span in zip(onsets, spans, strict=False)]
    rows = turn_figures(decisions, ends, call.transport.played, call.report.metrics)
    for row in rows:
        row["graph"] = script.graph
    return rows


def _values(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if r.get(key) is not None]


def summarise(rows: list[dict[str, Any]], *, end_of_turn_ms: float) -> dict[str, Any]:
    """Distributions, shares and goals of all turns."""
    keys = (
        "end_of_speech_to_first_audio_ms",
        "decision_to_first_audio_ms",
        "end_of_turn_wait_ms",
        "stt_final_ms",
        "graph_step_ms",
        "tts_first_audio_ms",
        "end_to_end_ms",
    )
    dists = {k: distribution(_values(rows, k), digits=1) for k in keys}

    def p50(key: str) -> float:
        return float(dists[key].get("p50", 0.0))

    total, decision = p50("end_of_speech_to_first_audio_ms"), p50("decision_to_first_audio_ms")
    return {
        **dists,
        "shares_of_end_of_speech_to_first_audio": {
            "end_of_turn_wait": ratio(p50("end_of_turn_wait_ms"), total),
            "decision_to_first_audio": ratio(decision, total),
        },
        "shares_of_decision_to_first_audio": {
            "graph_step": ratio(p50("graph_step_ms"), decision),
            "tts_first_audio": ratio(p50("tts_first_audio_ms"), decision),
        },
        "stt_final_over_end_of_turn_silence": ratio(p50("stt_final_ms"), end_of_turn_ms),
        "met": {
            "decision_to_first_audio_p50": 0
            < decision
            < GOALS["decision_to_first_audio_p50_ms_max"],
            "end_of_speech_to_first_audio_p50": 0
            < total
            < GOALS["end_of_speech_to_first_audio_p50_ms_max"],
        },
    }


async def run(settings: Settings) -> dict[str, Any]:
    """The per-turn latencies of the scripted calls (one call in quick mode)."""
    from runtime.voice.providers.espeak_tts import EspeakTTS
    from runtime.voice.providers.silero_vad import shared_session
    from runtime.voice.providers.whisper_stt import WhisperSTT

    try:
        tts = EspeakTTS()
        await asyncio.to_thread(shared_session)
        stt = WhisperSTT()
        t0 = time.perf_counter()
        await stt.load()
        load_s = time.perf_counter() - t0
    except Exception as exc:  # a provider that cannot start on this machine
        raise Skipped(f"embedded providers unavailable: {exc}") from exc
    scripts = QUICK_SCRIPTS if settings.quick else SCRIPTS
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for script in scripts:
        rows += await run_script(script, tts)
    wall = time.perf_counter() - t0
    from schemas.spec import VoiceSettings

    end_of_turn = float(VoiceSettings().end_of_turn_ms)
    return {
        "settings": {
            "calls": [{"graph": s.graph, "turns": len(s.lines)} for s in scripts],
            "providers": "Silero VAD v6, faster-whisper tiny.en int8 (interims every 500 ms), "
            "eSpeak NG; caller lines synthesized with eSpeak NG, real-time pace",
            "end_of_turn_ms": end_of_turn,
            "whisper_load_s": round(load_s, 3),
        },
        "turns": len(rows),
        **summarise(rows, end_of_turn_ms=end_of_turn),
        "per_turn": [
            {k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()} for r in rows
        ],
        "run_wall_s": round(wall, 1),
        "goals": GOALS,
        "baseline": {
            "reference_design": REFERENCE,
            "floor_note": "end of speech -> first audio includes the end_of_turn_ms silence "
            f"({end_of_turn:g} ms) the pipeline waits before deciding the caller is done",
        },
    }
