"""`switchboard db ...`: migrate the call database and show its revision."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from alembic.util import CommandError
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from runtime.cli import app, err, out
from runtime.db.engine import DatabaseURLError, database_url, describe_url, make_engine

T = TypeVar("T")

db_app = typer.Typer(
    name="db",
    no_args_is_help=True,
    help="Migrate the call database (SQLite by default; PostgreSQL via DATABASE_URL).",
)
app.add_typer(db_app, name="db")

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Database URL (default: $SWITCHBOARD_DATABASE_URL, $DATABASE_URL, "
        "else an SQLite file in the data directory).",
    ),
]


def _run(url: str | None, action: Callable[[AsyncEngine], Awaitable[T]]) -> tuple[str, T]:
    """Run `action` on an engine for `url`; exit 2 on a bad URL, 1 when the
    database cannot be reached or migrated."""
    try:
        target = database_url(url)
        engine = make_engine(target)
    except DatabaseURLError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None

    async def go() -> T:
        try:
            return await action(engine)
        finally:
            await engine.dispose()

    try:
        return describe_url(target), asyncio.run(go())
    except (SQLAlchemyError, OSError, CommandError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        err.print(
            f"[red]error:[/] database {escape(describe_url(target))}: "
            f"{escape(type(exc).__name__)}: {escape(reason)}"
        )
        raise typer.Exit(1) from None


@db_app.command("upgrade")
def upgrade_cmd(
    url: UrlOption = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Migrate the database to the newest revision (or --revision)."""
    from runtime.db.migrations import current_revisions, upgrade

    async def action(engine: AsyncEngine) -> tuple[str, ...]:
        await upgrade(engine, revision)
        return await current_revisions(engine)

    where, revisions = _run(url, action)
    out.print(f"{escape(where)}: at revision {', '.join(revisions) or 'base'}")


@db_app.command("current")
def current_cmd(url: UrlOption = None) -> None:
    """Show the database's revision and whether it is the newest."""
    from runtime.db.migrations import current_revisions, head_revision

    where, revisions = _run(url, current_revisions)
    head = head_revision()
    if not revisions:
        state = f"not migrated (newest is {head}; run `switchboard db upgrade`)"
    elif revisions == (head,):
        state = f"{head} (head)"
    else:
        state = f"{', '.join(revisions)} (newest is {head}; run `switchboard db upgrade`)"
    out.print(f"{escape(where)}: {state}")
