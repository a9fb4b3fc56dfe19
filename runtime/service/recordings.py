"""Call recordings in the service: kept after each WebSocket voice call, served
at `GET /api/calls/{id}/recording`.

Recordings are two-channel 16 kHz WAV files (left: caller, right: agent) in
the recordings directory (`ServiceSettings.recordings_path()`), one row each
in `recordings`. The route serves only files inside that directory: a row
whose path points elsewhere (a `switchboard call` WAV, a moved file) is a 404,
never a read of an arbitrary path.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import FileResponse

from runtime.db import queries
from runtime.db.recorder import CallRecorder
from runtime.service.auth import Principal, call_access
from runtime.service.errors import error_responses
from runtime.service.routes_calls import CallId

if TYPE_CHECKING:
    from runtime.voice.recording import CallAudioRecorder
    from runtime.voice.websocket import RecordingHook

log = logging.getLogger("switchboard.service.recordings")

#: How long the end of a call waits for its recording row to be written.
RECORDING_FLUSH_S = 5.0


def recording_hook(directory: Path, recorder: CallRecorder) -> RecordingHook:
    """Save each call's recording under `directory` and record its row."""

    async def keep(call_id: str, recording: CallAudioRecorder) -> None:
        saved = await asyncio.to_thread(recording.save, directory, call_id)
        await recorder.add_recording(
            call_id,
            str(saved.path),
            duration_s=saved.duration_s,
            sample_rate=saved.sample_rate,
        )
        await recorder.flush(RECORDING_FLUSH_S)
        log.info("call %s recorded: %s (%.1f s)", call_id, saved.path, saved.duration_s)

    return keep


def servable(path: str, directory: Path) -> Path | None:
    """`path` resolved, when it is an existing file inside `directory`
    (symbolic links resolved first, so none can lead out of it); else None."""
    try:
        found = Path(path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    root = directory.resolve()
    if not found.is_relative_to(root) or not found.is_file():
        return None
    return found


def recordings_router() -> APIRouter:
    router = APIRouter(tags=["calls"])

    @router.get(
        "/calls/{call_id}/recording",
        summary="The call's recording (WAV)",
        response_class=FileResponse,
        responses={
            200: {"content": {"audio/wav": {}}, "description": "16 kHz WAV, caller left"},
            **error_responses(404),
        },
    )
    async def get_recording(
        call_id: CallId, request: Request, _who: Annotated[Principal, Depends(call_access)]
    ) -> FileResponse:
        """The call's latest recording: a two-channel WAV, caller on the left
        and agent on the right. 404 when the call has none on this server."""
        found = await queries.get_call(request.app.state.engine, call_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no recorded call {call_id!r}")
        directory: Path = request.app.state.settings.recordings_path()
        for rec in reversed(found.recordings):
            path = await asyncio.to_thread(servable, rec.path, directory)
            if path is not None:
                return FileResponse(path, media_type="audio/wav", filename=path.name)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"call {call_id!r} has no recording on this server"
        )

    return router
