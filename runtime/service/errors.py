"""The error answers of the API, as documented in its OpenAPI description.

Every error body is `{"detail": ...}`: a message string, or for request
validation FastAPI's list of `{loc, msg, type}` problems. `error_responses`
gives the `responses=` mapping a route passes so clients (and schemathesis)
see each status it can return.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

DESCRIPTIONS = {
    400: "Request body that cannot be parsed (not UTF-8 or not JSON)",
    401: "Missing, invalid or expired token, or a token for another call",
    404: "No such agent or call",
    409: "The call has already ended",
    413: "Request body over the size limit",
    415: "Unsupported request content type",
    422: "Invalid request: the detail names each problem",
    429: "Rate limit exceeded; retry after `Retry-After` seconds",
    502: "The media server (LiveKit) refused or did not answer the agent's join",
    503: "Storage unavailable, the agent's graph file is invalid, or LiveKit is not configured",
}


class ErrorOut(BaseModel):
    """An error answer: a message, or a list of validation problems."""

    detail: str | list[dict[str, Any]]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entries of `codes` (each with the `ErrorOut` body;
    429 also with its `Retry-After` header)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": ErrorOut, "description": DESCRIPTIONS[code]}
        if code == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "seconds until the request may be retried",
                    "schema": {"type": "integer"},
                }
            }
        out[code] = entry
    return out


#: Answers any authenticated /api route can give.
COMMON = error_responses(400, 401, 413, 422, 503)
