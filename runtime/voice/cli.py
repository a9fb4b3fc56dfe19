"""`switchboard call`: a voice call on this machine, no key and no network.

The caller's lines are synthesized with the embedded TTS (or read from WAV
files), streamed into the real pipeline (VAD, STT, turn-taking, the graph,
TTS) in real time, or faster with `--fast`. The transcript is printed as the
call goes, each caller turn with its latencies, and the whole call (both
sides on one timeline) can be written to a WAV file.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from runtime.cli import app, err, out, resolve_graph_path
from runtime.voice.local import CallerLine, CallerScriptError, LocalCall, run_local_call
from runtime.voice.providers.base import ProviderError
from schemas.diagnostics import GraphError

#: Playback speed of `--fast` (audio in both directions).
FAST_SPEED = 4.0


def _latency_line(metrics: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("stt_final_ms", "stt"),
        ("graph_step_ms", "graph"),
        ("llm_first_token_ms", "llm first token"),
        ("tts_first_audio_ms", "tts first audio"),
        ("end_to_end_ms", "end to end"),
        ("barge_in_onset_stop_ms", "barge-in stop"),
    ):
        value = metrics.get(key)
        if value is not None:
            parts.append(f"{label} {value:.0f} ms")
    return " · ".join(parts)


class _Printer:
    """Prints call events as a transcript (or as JSON lines)."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json

    def __call__(self, event: dict[str, Any]) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps(event, default=str) + "\n")
            sys.stdout.flush()
            return
        kind = event["type"]
        if kind == "agent":
            out.print(f"[bold cyan]agent:[/] {escape(str(event['text']))}")
        elif kind == "caller":
            out.print(f"[bold green]caller:[/] {escape(str(event['text']))}")
        elif kind == "heard":
            out.print(f"[yellow]  (cut off; heard: {escape(repr(event['text']))})[/]")
        elif kind == "barge_in":
            stop = event.get("onset_to_stop_ms") or 0.0
            out.print(f"[yellow]  barge-in: agent stopped {stop:.0f} ms after the caller began[/]")
        elif kind == "backchannel":
            out.print(f"[dim]  (backchannel: {escape(str(event['text']))})[/]")
        elif kind == "tool":
            status = f"error: {event['error']}" if event.get("error") else "ok"
            out.print(f"[dim]  tool {event['name']}({escape(str(event['args']))}) {status}[/]")
        elif kind == "metrics" and _latency_line(event):
            out.print(f"[dim]  turn {event['turn']}: {_latency_line(event)}[/]")
        elif kind == "error":
            err.print(f"[red]  {event['stage']} error: {escape(str(event['error']))}[/]")
        elif kind == "outcome":
            reason = f": {event['reason']}" if event.get("reason") else ""
            line = escape(f"[call {event['outcome']}{reason}]")
            err.print(f"[magenta]{line}[/]")


def _summary(call: LocalCall, wav_out: Path | None) -> None:
    report = call.report
    e2e = [m["end_to_end_ms"] for m in report.metrics if m.get("end_to_end_ms") is not None]
    line = f"outcome: {report.outcome or report.end_reason or 'unknown'}"
    if e2e:
        line += f" · end to end {min(e2e):.0f}-{max(e2e):.0f} ms over {len(e2e)} turn(s)"
    if wav_out is not None:
        line += f" · call recorded to {wav_out}"
    err.print(escape(line))


@app.command()
def call(
    graph: Annotated[str, typer.Argument(help="Graph file or id.")],
    say: Annotated[
        list[str] | None,
        typer.Option("--say", help="A caller line, spoken with the embedded TTS (repeatable)."),
    ] = None,
    wav_in: Annotated[
        list[Path] | None,
        typer.Option(
            "--wav-in", help="A caller turn from a WAV file (repeatable; after the --say lines)."
        ),
    ] = None,
    wav_out: Annotated[
        Path | None, typer.Option("--wav-out", help="Write the whole call to this WAV file.")
    ] = None,
    json_events: Annotated[bool, typer.Option("--json", help="One JSON event per line.")] = False,
    caller: Annotated[str | None, typer.Option(help="Caller phone number.")] = None,
    fast: Annotated[
        bool, typer.Option("--fast", help=f"Stream audio {FAST_SPEED:g}x faster than real time.")
    ] = False,
) -> None:
    """Place a voice call to an agent: caller lines are spoken, recognised and
    answered by the graph with speech. Prints the transcript with per-turn
    latencies; exit 1 when the graph is invalid, 2 when the call cannot start."""
    lines = [CallerLine(text=t) for t in say or []] + [CallerLine(wav=p) for p in wav_in or []]
    if not lines:
        err.print("[red]error:[/] give the caller something to say: --say TEXT or --wav-in FILE")
        raise typer.Exit(2)
    path = resolve_graph_path(graph)
    try:
        result = asyncio.run(
            run_local_call(
                path,
                lines,
                caller=caller,
                speed=FAST_SPEED if fast else 1.0,
                on_event=_Printer(as_json=json_events),
            )
        )
    except GraphError as exc:
        for d in exc.diagnostics:
            err.print(f"[red]{escape(d.format())}[/]")
        raise typer.Exit(1) from None
    except (ProviderError, CallerScriptError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if wav_out is not None:
        try:
            result.transport.write(wav_out)
        except OSError as exc:
            err.print(f"[red]error:[/] cannot write {escape(str(wav_out))}: {escape(str(exc))}")
            raise typer.Exit(2) from None
    _summary(result, wav_out)
