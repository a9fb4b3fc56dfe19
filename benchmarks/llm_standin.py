"""An OpenAI-compatible chat model stand-in for load tests, run as its own
process: `python -m benchmarks.llm_standin --port PORT`.

`POST /v1/chat/completions` with `stream: true` answers with Server-Sent Events
of `chat.completion.chunk` objects, as OpenAI streams them: the role delta at
once, the first content token `FIRST_TOKEN_S` (600 ms, the reference design's
GPT-4o figure) after the request, then one word every `TOKEN_INTERVAL_S`, a
`finish_reason` chunk, a usage chunk when `stream_options.include_usage` is
set, and `data: [DONE]`. The reply is always `REPLY` (no tool calls), so an
`llm` node never leaves on its own. Non-streaming requests get the same text
as one `chat.completion` after the same delay. `GET /healthz` answers 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

FIRST_TOKEN_S = 0.6
TOKEN_INTERVAL_S = 0.02
REPLY = "Sure, I can help with that. Anything else you need?"
WORDS = re.findall(r"\S+\s*", REPLY)


def _chunk(cid: str, model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


async def _stream(cid: str, model: str, usage: bool) -> AsyncIterator[str]:
    yield _chunk(cid, model, {"role": "assistant", "content": ""})
    await asyncio.sleep(FIRST_TOKEN_S)
    for n, word in enumerate(WORDS):
        if n:
            await asyncio.sleep(TOKEN_INTERVAL_S)
        yield _chunk(cid, model, {"content": word})
    yield _chunk(cid, model, {}, "stop")
    if usage:
        tokens = {
            "prompt_tokens": 10,
            "completion_tokens": len(WORDS),
            "total_tokens": 10 + len(WORDS),
        }
        body = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time())}
        yield f"data: {json.dumps({**body, 'model': model, 'choices': [], 'usage': tokens})}\n\n"
    yield "data: [DONE]\n\n"


async def completions(request: Request) -> Response:
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": {"message": "body is not JSON"}}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"error": {"message": "body is not an object"}}, status_code=400)
    model = str(body.get("model") or "standin")
    cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
    if body.get("stream"):
        options = body.get("stream_options") or {}
        usage = bool(isinstance(options, dict) and options.get("include_usage"))
        return StreamingResponse(_stream(cid, model, usage), media_type="text/event-stream")
    await asyncio.sleep(FIRST_TOKEN_S + TOKEN_INTERVAL_S * (len(WORDS) - 1))
    return JSONResponse(
        {
            "id": cid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": REPLY},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": len(WORDS), "total_tokens": 20},
        }
    )


async def healthz(_request: Request) -> Response:
    return PlainTextResponse("ok")


def make_app() -> Starlette:
    """The stand-in's ASGI app."""
    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/healthz", healthz),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(make_app(), host=args.host, port=args.port, log_level="warning", loop="uvloop")


if __name__ == "__main__":  # pragma: no cover
    main()
