"""The call database: models, migrations, the call recorder and its queries.

engine = await init_db(url)               # migrate and connect (SQLite default)
recorder = CallRecorder(engine)           # persist calls as they happen
page = await queries.list_calls(engine, CallFilter(agent="dental-booking"))
"""

# Registers the business tables on the shared metadata (migrations compare against it).
from runtime.db import business_models  # noqa: F401
from runtime.db.agent_version import AgentVersion, describe_graph_file
from runtime.db.engine import DatabaseURLError, database_url, make_engine
from runtime.db.migrations import init_db
from runtime.db.recorder import CallRecorder, Sentiment, record_session_turn

__all__ = [
    "AgentVersion",
    "CallRecorder",
    "DatabaseURLError",
    "Sentiment",
    "database_url",
    "describe_graph_file",
    "init_db",
    "make_engine",
    "record_session_turn",
]
