"""Alembic revisions of the call database, oldest first (`v0001_...`)."""
