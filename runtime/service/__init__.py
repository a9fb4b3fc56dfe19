"""The call service: a FastAPI app serving agents, calls, analytics and the
live feed, with JWT auth; state lives in the checkpointer and the database so
any number of worker processes can serve the same calls.

    app = create_app(ServiceSettings())     # or `switchboard serve`
"""

from runtime.service.app import create_app
from runtime.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
