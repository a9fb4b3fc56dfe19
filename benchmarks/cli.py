"""`switchboard bench [NAME...] [--quick] [--out FILE]`: run the benchmarks and
print one JSON document (see `benchmarks.harness`). Exit 1 when a benchmark
errors (timings never fail the command), 2 on bad arguments."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from benchmarks.harness import BENCHMARKS, Settings, UnknownBenchmark, failed, run_sync
from runtime.cli import app, err


@app.command()
def bench(
    names: Annotated[
        list[str] | None,
        typer.Argument(help=f"Benchmarks to run (default: all): {', '.join(BENCHMARKS)}."),
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Small samples: the whole run takes under 2 minutes.")
    ] = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Also write the JSON document to this file.")
    ] = None,
    audio_dir: Annotated[
        Path | None,
        typer.Option(
            "--audio-dir", help="stt_quality: WAV recordings with .txt transcripts beside them."
        ),
    ] = None,
) -> None:
    """Measure speed and quality; print the figures as one JSON document."""
    if audio_dir is not None and not audio_dir.is_dir():
        err.print(f"[red]error:[/] --audio-dir {escape(str(audio_dir))} is not a directory")
        raise typer.Exit(2)
    settings = Settings.from_env(quick=quick, audio_dir=audio_dir)
    try:
        document = run_sync(names or [], settings)
    except UnknownBenchmark as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    text = json.dumps(document, indent=2, default=str)
    sys.stdout.write(text + "\n")
    if out_file is not None:
        try:
            out_file.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            err.print(f"[red]error:[/] cannot write {escape(str(out_file))}: {escape(str(exc))}")
            raise typer.Exit(2) from None
    broken = failed(document)
    if broken:
        for name in broken:
            reason = document["benchmarks"][name].get("reason", "")
            err.print(f"[red]benchmark {name} failed:[/] {escape(str(reason))}")
        raise typer.Exit(1)
