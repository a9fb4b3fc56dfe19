"""`switchboard seed-demo`: demo business data and simulated calls for the dashboard."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from runtime.cli import app, err, out
from runtime.db.engine import DatabaseURLError, describe_url
from runtime.seed import DEFAULT_CALLS, DEFAULT_DAYS, DEFAULT_SEED, SeedError, seed_demo


@app.command("seed-demo")
def seed_demo_command(
    calls: Annotated[
        int, typer.Option("--calls", "-n", min=0, help="Simulated calls to record.")
    ] = DEFAULT_CALLS,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Database URL (default: $SWITCHBOARD_DATABASE_URL, $DATABASE_URL, "
            "else an SQLite file in the data directory).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same calls.")] = (
        DEFAULT_SEED
    ),
    days: Annotated[
        int, typer.Option(min=1, help="Spread the calls over this many past days.")
    ] = DEFAULT_DAYS,
    graphs: Annotated[
        Path | None, typer.Option(help="Graphs directory (default: the example graphs).")
    ] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json")] = "text",
) -> None:
    """Migrate the database, seed the built-in tools' business data and record
    simulated calls on the example graphs (calls already recorded are skipped)."""
    if format not in ("text", "json"):
        err.print(f"[red]error:[/] --format must be text or json, not {escape(format)!r}")
        raise typer.Exit(2)
    try:
        summary = asyncio.run(
            seed_demo(database_url, calls=calls, seed=seed, days=days, graphs_dir=graphs)
        )
    except DatabaseURLError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except (SeedError, SQLAlchemyError, OSError) as exc:
        where = describe_url(database_url) if database_url else "the configured database"
        err.print(f"[red]error:[/] cannot seed {escape(where)}: {escape(str(exc).splitlines()[0])}")
        raise typer.Exit(1) from None
    if format == "json":
        payload = {
            "business_rows_inserted": summary.business.inserted,
            "calls": summary.calls,
            "skipped": summary.skipped,
            "steps": summary.steps,
            "barge_ins": summary.barge_ins,
            "unwritten": summary.unwritten,
            "per_agent": summary.per_agent(),
        }
        out.print(json.dumps(payload, indent=2, sort_keys=True))
        return
    out.print(
        f"business data: {summary.business.total} rows inserted"
        + (" (already seeded)" if summary.business.total == 0 else "")
    )
    outcomes = sorted({o for per in summary.per_agent().values() for o in per})
    table = Table("agent", "calls", *outcomes, title="simulated calls recorded")
    for agent, per in summary.per_agent().items():
        table.add_row(agent, str(sum(per.values())), *(str(per.get(o, 0)) for o in outcomes))
    out.print(table)
    out.print(
        f"{summary.calls} calls, {summary.steps} steps, {summary.barge_ins} barge-ins; "
        f"{summary.skipped} already recorded"
    )
    if summary.unwritten:
        err.print(f"[yellow]warning:[/] {summary.unwritten} writes could not be recorded")
        raise typer.Exit(1)
