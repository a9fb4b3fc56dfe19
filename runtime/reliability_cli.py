"""`switchboard reliability`: run the fault, hostile-input, security and soak
suites and print their report as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from runtime.cli import app, err


@app.command()
def reliability(
    quick: Annotated[
        bool, typer.Option("--quick", help="The short variants (what CI runs), not the full ones.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the JSON report here.")
    ] = None,
) -> None:
    """Run tests/reliability (from a source checkout) and print, as JSON, the
    faults injected and survived, inputs tried per surface, security checks,
    soak figures and records lost. Exit 1 unless everything held."""
    from reliability.run import SuitesNotFound, run_suites

    try:
        report = run_suites(quick=quick)
    except SuitesNotFound as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    text = report.as_json()
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
    print(text)
    if not report.ok:
        err.print("[red]reliability: not ok[/] (see the report's totals and pytest summary)")
        raise typer.Exit(1)
