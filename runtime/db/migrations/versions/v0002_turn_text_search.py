"""PostgreSQL full-text index on turn text (GIN over to_tsvector); nothing on SQLite,
where transcript search falls back to LIKE.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-01

"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same expression as runtime.db.models.TEXT_VECTOR_SQL (a test checks the
# query planner uses the index); written out so this revision never changes.
TEXT_VECTOR_SQL = "to_tsvector('english'::regconfig, coalesce(text, ''::text))"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_turns_text_search ON turns USING gin ({TEXT_VECTOR_SQL})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_turns_text_search")
