"""Recording the builder's test calls like real calls.

A test call is written to the call database the service uses (see
`builder.dashboard.data`) by a `CallRecorder` as it happens: the call with
transport "builder", direction inbound and the version of the graph being
edited (content hash of the editor's text; the git commit when that text is
the committed file), then every step (turns, node visits, intents, tool calls)
and the outcome. Each step waits up to `STEP_WAIT_S` for its rows, so the
dashboard's Live page, in any process, sees the call while it is open. With a
Redis live feed configured (as for the service), each step's events are also
published there. A voice test call's audio (caller and agent, one after the
other on one 16 kHz track) is written as a WAV file under the recordings
directory when the call ends, with its Recording row.

Recording never breaks a test call: a database that cannot be reached is
reported once (`CallLog.problem`) and the call goes on unrecorded.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from runtime.db.agent_version import AgentVersion, content_hash, git_commit_of
from runtime.db.engine import default_data_dir
from runtime.db.recorder import CallRecorder
from runtime.session import CallEvent
from runtime.voice.audio import silence, write_wav

log = logging.getLogger("switchboard.builder.testcall")

ENV_RECORDINGS = "SWITCHBOARD_RECORDINGS_DIR"
TRANSPORT = "builder"
DIRECTION = "inbound"
CALLER = "builder test call"
#: Longest a step waits for its rows to be written (as the service does).
STEP_WAIT_S = 2.0
#: Longest the end of a call waits for its rows and recording.
END_WAIT_S = 10.0
RATE = 16000
#: Silence between one speaker's audio and the next on the recording.
GAP_MS = 300.0


def recordings_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where test-call recordings go: $SWITCHBOARD_RECORDINGS_DIR, else
    <data dir>/recordings (see `runtime.db.engine.default_data_dir`). Not created."""
    env = os.environ if env is None else env
    configured = env.get(ENV_RECORDINGS, "").strip()
    return Path(configured).expanduser() if configured else default_data_dir(env) / "recordings"


def graph_version(graph_id: str, name: str, text: str, path: Path | None) -> AgentVersion:
    """The version of the graph text in the editor: its SHA-256, and the file's
    last commit when `text` is exactly the file on disk and that is committed."""
    commit = None
    if path is not None and path.is_file():
        try:
            same = path.read_text("utf-8") == text
        except (OSError, UnicodeDecodeError):
            same = False
        commit = git_commit_of(path) if same else None
    return AgentVersion(
        graph_id=graph_id,
        content_hash=content_hash(text.encode("utf-8")),
        file_path=None if path is None else str(path.resolve()),
        git_commit=commit,
        name=name,
    )


@dataclass
class AudioTrack:
    """The call's audio as one 16 kHz mono track, each piece after the last."""

    pcm: bytearray = field(default_factory=bytearray)

    def add(self, pcm: bytes) -> None:
        if not pcm:
            return
        if self.pcm:
            self.pcm += silence(GAP_MS, RATE)
        self.pcm += pcm

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / RATE


# --- the database and live feed, on the dashboard's loop thread -----------------

_recorders: weakref.WeakKeyDictionary[Any, CallRecorder] = weakref.WeakKeyDictionary()
_recorders_lock = threading.Lock()
_buses: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Any]] = weakref.WeakKeyDictionary()


def _recorder_for(db: Any) -> CallRecorder:
    """One recorder per dashboard database (so per process and URL)."""
    from runtime.sentiment import configured_scorer

    with _recorders_lock:
        recorder = _recorders.get(db)
        if recorder is None:
            recorder = CallRecorder(db.engine, sentiment=configured_scorer())
            _recorders[db] = recorder
        return recorder


def _bus(db: Any, settings: tuple[str, str]) -> Any:
    """The Redis live bus for (url, channel) on `db`'s loop (its connections
    belong to that loop); only called on that loop, so no lock is needed."""
    from runtime.service.live import RedisLiveBus

    buses = _buses.setdefault(db, {})
    bus = buses.get(settings)
    if bus is None:
        bus = buses[settings] = RedisLiveBus(*settings)
    return bus


@dataclass
class CallLog:
    """Records one test call (see module docstring). `problem` says why it is
    not recorded, when it is not."""

    call_id: str
    version: AgentVersion
    db: Any = None
    recorder: CallRecorder | None = None
    live: tuple[str, str] | None = None
    problem: str | None = None
    audio: AudioTrack = field(default_factory=AudioTrack)
    recording: Path | None = None
    finished: bool = False

    @classmethod
    def open(cls, call_id: str, version: AgentVersion, *, started_at: datetime) -> CallLog:
        """Record the start of call `call_id` in the configured database."""
        from builder.dashboard.data import database
        from builder.dashboard.live_feed import feed_settings

        call = cls(call_id, version, live=feed_settings())
        try:
            call.db = database()
            call.recorder = _recorder_for(call.db)
        except Exception as exc:  # any failure to reach the database: go on unrecorded
            call.problem = f"this test call is not recorded: {type(exc).__name__}: {exc}"
            log.warning("%s", call.problem)
            return call
        recorder = call.recorder

        async def started(_engine: Any) -> None:
            await recorder.call_started(
                call_id,
                agent=version,
                direction=DIRECTION,
                transport=TRANSPORT,
                caller=CALLER,
                started_at=started_at,
            )
            await _wait(recorder, STEP_WAIT_S)

        call._run(started)
        return call

    @property
    def recorded(self) -> bool:
        return self.recorder is not None

    def step(
        self,
        events: Sequence[CallEvent],
        *,
        step: int,
        caller_text: str | None,
        at: datetime,
        ended_at: datetime,
        metrics: Mapping[str, Any],
    ) -> None:
        """Record one step (and publish it live); waits up to `STEP_WAIT_S`."""
        recorder = self.recorder
        if recorder is None:
            return
        live = self.live
        agent = self.version.graph_id

        async def record(_engine: Any) -> None:
            await recorder.record(
                self.call_id,
                events,
                step=step,
                caller_text=caller_text,
                metrics=dict(metrics),
                at=at,
                ended_at=ended_at,
            )
            if live is not None:
                await _publish(_bus(self.db, live), self.call_id, agent, caller_text, events)
            await _wait(recorder, STEP_WAIT_S)

        self._run(record)

    def finish(self) -> None:
        """At the end of the call: write the audio (if any) as a WAV file under
        `recordings_dir()` and record it. Safe to call more than once."""
        if self.finished:
            return
        self.finished = True
        recorder = self.recorder
        if recorder is None or not self.audio.pcm:
            return
        folder = recordings_dir()
        path = folder / f"{self.call_id}.wav"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_wav(path, bytes(self.audio.pcm), RATE)
        except OSError as exc:
            self.problem = f"the recording could not be written to {path}: {exc}"
            log.error("%s", self.problem)
            return
        self.recording = path
        duration = round(self.audio.duration_s, 3)

        async def add(_engine: Any) -> None:
            await recorder.add_recording(
                self.call_id, str(path), duration_s=duration, sample_rate=RATE
            )
            await _wait(recorder, END_WAIT_S)

        self._run(add)

    def _run(self, work: Any) -> None:
        """Run `work(engine)` on the database loop; failures are reported, not raised."""
        try:
            self.db.run(work, timeout=END_WAIT_S + STEP_WAIT_S)
        except Exception as exc:
            self.problem = f"recording this test call failed: {type(exc).__name__}: {exc}"
            log.error("%s", self.problem)


async def _wait(recorder: CallRecorder, timeout: float) -> None:
    if not recorder.failing:
        await recorder.flush(timeout)


async def _publish(
    bus: Any,
    call_id: str,
    agent: str,
    caller_text: str | None,
    events: Sequence[CallEvent],
) -> None:
    from runtime.service.live import live_message

    if caller_text is not None:
        await bus.publish(live_message(call_id, agent, {"type": "caller", "text": caller_text}))
    for event in events:
        await bus.publish(live_message(call_id, agent, event.as_dict()))
