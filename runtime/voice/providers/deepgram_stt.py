"""Deepgram streaming speech-to-text through the official SDK (`deepgram-sdk`).

One websocket per call (`/v1/listen`): linear16 mono PCM goes up, JSON results
come down (`Results` with `is_final`/`speech_final`/`from_finalize`, `Metadata`,
`UtteranceEnd`, `SpeechStarted`). The SDK's `AsyncDeepgramClient` is pointed at
`$SWITCHBOARD_DEEPGRAM_URL` (default `wss://api.deepgram.com`) through its
`DeepgramClientEnvironment`; the key comes from `$DEEPGRAM_API_KEY`.

Every wait is bounded and every failure surfaces as `ProviderError`: the
connect, the first result after audio was sent, silence from the server while
audio flows, `Finalize`, each send, and the socket closing under us. Deepgram
closes a stream that gets no audio for 10 s, so a `KeepAlive` goes out whenever
no audio was sent for `keepalive_interval_s`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import warnings
from collections.abc import AsyncIterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from deepgram.core.api_error import ApiError
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, WebSocketException

from runtime.voice.providers.base import ProviderError, Transcript
from runtime.voice.providers.registry import ProviderConfigError, register_stt
from schemas.spec import VoiceSettings

# The SDK's async websocket client is built on `websockets.legacy` and its
# deprecated names, which warn on import; the warnings concern the SDK's
# internals, not this code.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", r"websockets\..* is deprecated", DeprecationWarning)
    import deepgram.listen.v1.client  # noqa: F401  (imported lazily by the SDK otherwise)
    from deepgram.listen.v1.socket_client import AsyncV1SocketClient
    from deepgram.listen.v1.types import (
        ListenV1CloseStream,
        ListenV1ConfigureFailure,
        ListenV1Error,
        ListenV1Finalize,
        ListenV1KeepAlive,
        ListenV1Metadata,
        ListenV1Results,
    )

log = logging.getLogger(__name__)

ENV_URL = "SWITCHBOARD_DEEPGRAM_URL"
ENV_API_KEY = "DEEPGRAM_API_KEY"
ENV_MODEL = "SWITCHBOARD_DEEPGRAM_MODEL"
DEFAULT_URL = "wss://api.deepgram.com"
DEFAULT_MODEL = "nova-3"
#: Deepgram rejects `utterance_end_ms` below this.
MIN_UTTERANCE_END_MS = 1000
#: Interim results kept for a consumer that falls behind (oldest dropped first).
MAX_QUEUED_RESULTS = 256
_Outgoing = Literal["audio", "finalize", "keepalive", "close"]
_WS_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
_HTTP_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


@dataclass(frozen=True)
class DeepgramConfig:
    """Connection, recognition options and time bounds (seconds) of one provider."""

    api_key: str
    url: str = DEFAULT_URL
    model: str = DEFAULT_MODEL
    language: str = "en"
    sample_rate: int = 16000
    interim_results: bool = True
    #: Silence (ms) after which Deepgram marks `speech_final`; None disables it.
    endpointing_ms: int | None = 300
    #: Gap (ms) after the last word before an `UtteranceEnd`; None disables it.
    utterance_end_ms: int | None = MIN_UTTERANCE_END_MS
    smart_format: bool = True
    vad_events: bool = False
    connect_timeout_s: float = 5.0
    #: Longest wait for the server's first message after audio was sent.
    first_result_timeout_s: float = 10.0
    #: Longest server silence while audio is flowing, once it has answered.
    inactivity_timeout_s: float = 10.0
    #: Longest wait for the `from_finalize` result while words are pending.
    finalize_timeout_s: float = 2.0
    #: With no interim words pending, Deepgram may not answer `Finalize` at all
    #: (nothing significant buffered); the turn is over after this much quiet.
    finalize_quiet_s: float = 0.3
    send_timeout_s: float = 2.0
    close_timeout_s: float = 2.0
    keepalive_interval_s: float = 4.0
    extra_query: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ProviderConfigError(f"Deepgram needs an API key: set ${ENV_API_KEY}")
        parts = urlsplit(self.url)
        if parts.scheme not in _WS_SCHEMES or not parts.netloc:
            raise ProviderConfigError(
                f"Deepgram URL {self.url!r} must be a ws://, wss://, http:// or https:// URL"
            )
        if not 8000 <= self.sample_rate <= 48000:
            raise ProviderConfigError(
                f"Deepgram sample_rate {self.sample_rate} is not in 8000..48000"
            )
        if self.utterance_end_ms is not None and self.utterance_end_ms < MIN_UTTERANCE_END_MS:
            raise ProviderConfigError(
                f"Deepgram utterance_end_ms must be at least {MIN_UTTERANCE_END_MS} ms"
            )
        for name in (
            "connect_timeout_s",
            "first_result_timeout_s",
            "inactivity_timeout_s",
            "finalize_timeout_s",
            "finalize_quiet_s",
            "send_timeout_s",
            "close_timeout_s",
            "keepalive_interval_s",
        ):
            if not getattr(self, name) > 0:
                raise ProviderConfigError(f"Deepgram {name} must be positive")

    def environment(self) -> DeepgramClientEnvironment:
        """The SDK environment whose websocket and REST bases are `url`."""
        parts = urlsplit(self.url.rstrip("/"))
        ws = urlunsplit((_WS_SCHEMES[parts.scheme], parts.netloc, parts.path, "", ""))
        http = urlunsplit((_HTTP_SCHEMES[parts.scheme], parts.netloc, parts.path, "", ""))
        return DeepgramClientEnvironment(base=http, production=ws, agent=ws, agent_rest=http)

    def query(self) -> dict[str, Any]:
        """Keyword arguments for `listen.v1.connect` (Deepgram's query parameters)."""
        params: dict[str, Any] = {
            "model": self.model,
            "language": self.language,
            "encoding": "linear16",
            "sample_rate": self.sample_rate,
            "channels": 1,
            "interim_results": _flag(self.interim_results),
            "endpointing": "false" if self.endpointing_ms is None else self.endpointing_ms,
            "smart_format": _flag(self.smart_format),
            "vad_events": _flag(self.vad_events),
        }
        if self.utterance_end_ms is not None:
            params["utterance_end_ms"] = self.utterance_end_ms
        return params


def _flag(value: bool) -> str:
    return "true" if value else "false"


class DeepgramSTT:
    """`STTProvider` for Deepgram live streaming; one websocket per `open()`."""

    name = "deepgram"

    def __init__(self, config: DeepgramConfig) -> None:
        self.config = config
        self.sample_rate = config.sample_rate
        self._client = AsyncDeepgramClient(api_key=config.api_key, environment=config.environment())

    async def open(self) -> DeepgramStream:
        """A connected stream, or `ProviderError` (bad key, refused, unreachable,
        or no handshake within `connect_timeout_s`)."""
        stream = DeepgramStream(self.config, self._client)
        await stream.connect()
        return stream


class DeepgramStream:
    """One live transcription websocket (an `STTStream`).

    Results are per caller turn: interim transcripts carry the turn so far (the
    turn's final segments plus the current interim segment) and `finalize()`
    returns the whole turn and starts the next one.
    """

    def __init__(self, config: DeepgramConfig, client: AsyncDeepgramClient) -> None:
        self.config = config
        self._client = client
        self._owner: asyncio.Task[None] | None = None
        self._release = asyncio.Event()
        self._socket: AsyncV1SocketClient | None = None
        self._send_lock = asyncio.Lock()
        self._finalize_lock = asyncio.Lock()
        self._results: asyncio.Queue[Transcript | ProviderError | None] = asyncio.Queue(
            MAX_QUEUED_RESULTS
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._error: ProviderError | None = None
        self._closing = False
        self._closed = False
        self._finalized = asyncio.Event()
        # the caller turn in progress
        self._finals: list[str] = []
        self._confidences: list[float] = []
        self._turn_end_s = 0.0
        self._pending_interim = False
        self._audio_since_finalize = False
        # liveness
        self.audio_s = 0.0
        self.request_id: str | None = None
        self._heard = False
        self._unanswered_since: float | None = None
        self._last_sent = time.monotonic()

    # -- STTStream -------------------------------------------------------------

    async def connect(self) -> None:
        """Open the websocket through the SDK and start reading results."""
        cfg = self.config
        ready: asyncio.Future[AsyncV1SocketClient] = asyncio.get_running_loop().create_future()
        self._owner = asyncio.create_task(self._own_connection(ready), name="deepgram-socket")
        try:
            done, _ = await asyncio.wait({ready}, timeout=cfg.connect_timeout_s)
            if not done:
                raise ProviderError(
                    f"Deepgram at {cfg.url} did not accept the stream "
                    f"within {cfg.connect_timeout_s} s"
                )
            self._socket = ready.result()
        except ProviderError:
            await self._abandon()
            raise
        except ApiError as exc:
            await self._abandon()
            if exc.status_code == 401:
                raise ProviderError("Deepgram rejected the API key (HTTP 401)") from None
            raise ProviderError(f"Deepgram refused the stream (HTTP {exc.status_code})") from None
        except (OSError, WebSocketException) as exc:
            await self._abandon()
            raise ProviderError(f"cannot connect to Deepgram at {cfg.url}: {exc}") from None
        except Exception as exc:
            await self._abandon()
            raise ProviderError(f"opening a Deepgram stream failed: {exc}") from exc
        except BaseException:
            await self._abandon()
            raise
        self._last_sent = time.monotonic()
        self._tasks = [
            asyncio.create_task(self._read(), name="deepgram-read"),
            asyncio.create_task(self._watch(), name="deepgram-watch"),
        ]

    async def _own_connection(self, ready: asyncio.Future[AsyncV1SocketClient]) -> None:
        """Hold the SDK's connection context for the stream's lifetime, in one task
        (the websocket library's open and close handshakes run to their own
        10 s bounds even when cancelled, so nothing else waits on them)."""
        cfg = self.config
        try:
            async with self._client.listen.v1.connect(
                **cfg.query(),
                request_options={"additional_query_parameters": dict(cfg.extra_query)},
            ) as socket:
                ready.set_result(socket)
                await self._release.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            # after the stream opened, the reader reports failures

    async def send(self, pcm: bytes) -> None:
        """Send caller audio (linear16 at `sample_rate`); raises `ProviderError`
        once the stream has failed or closed."""
        self._raise_if_failed()
        if not pcm:
            return
        await self._send("audio", pcm)
        self.audio_s += len(pcm) / (2 * self.config.sample_rate)
        self._audio_since_finalize = True
        if self._unanswered_since is None:
            self._unanswered_since = time.monotonic()

    async def finalize(self) -> Transcript:
        """Flush the turn (`Finalize`) and return its final transcript.

        Waits for the `from_finalize` result at most `finalize_timeout_s`; when
        no interim words are pending, at most `finalize_quiet_s` (Deepgram does
        not always answer a `Finalize` with nothing buffered). Raises
        `ProviderError` if words were pending and no final came in time, or if
        the stream failed.
        """
        cfg = self.config
        async with self._finalize_lock:
            self._raise_if_failed()
            if self._audio_since_finalize:
                self._finalized.clear()
                await self._send("finalize")
                started = time.monotonic()
                waited = await self._wait_finalized(cfg.finalize_quiet_s)
                if not waited and self._pending_interim:
                    remaining = cfg.finalize_timeout_s - (time.monotonic() - started)
                    waited = remaining > 0 and await self._wait_finalized(remaining)
                    if not waited:
                        self._fail(
                            ProviderError(
                                f"Deepgram did not finalize the transcript within "
                                f"{cfg.finalize_timeout_s} s"
                            )
                        )
                self._raise_if_failed()
            return self._take_turn()

    async def interim(self) -> AsyncIterator[Transcript]:
        """Interim and provider-final results of the current turn as they arrive;
        ends when the stream is closed, raises `ProviderError` when it fails."""
        while True:
            item = await self._results.get()
            if item is None:
                self._results.put_nowait(None)  # later iterators end too
                return
            if isinstance(item, ProviderError):
                self._results.put_nowait(item)
                raise item
            yield item

    async def close(self) -> None:
        """Send `CloseStream`, let the server finish (bounded), release the socket."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        cfg = self.config
        if self._error is None and self._socket is not None:
            with suppress(ProviderError):
                await self._send("close")
                reader = self._tasks[0] if self._tasks else None
                if reader is not None:
                    await asyncio.wait({reader}, timeout=cfg.close_timeout_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        await self._abandon()
        self._publish(None)
        self._finalized.set()

    # -- internals -------------------------------------------------------------

    async def _wait_finalized(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._finalized.wait()
        except TimeoutError:
            return False
        return True

    def _take_turn(self) -> Transcript:
        text = " ".join(self._finals)
        confidence = min(self._confidences) if self._confidences else None
        turn = Transcript(text=text, final=True, end_s=self._turn_end_s, confidence=confidence)
        self._finals = []
        self._confidences = []
        self._pending_interim = False
        self._audio_since_finalize = False
        return turn

    async def _send(self, kind: _Outgoing, pcm: bytes = b"") -> None:
        socket = self._socket
        if socket is None:
            raise ProviderError("the Deepgram stream is not connected")
        try:
            async with self._send_lock, asyncio.timeout(self.config.send_timeout_s):
                if kind == "audio":
                    await socket.send_media(pcm)
                elif kind == "finalize":
                    await socket.send_finalize(ListenV1Finalize(type="Finalize"))
                elif kind == "keepalive":
                    await socket.send_keep_alive(ListenV1KeepAlive(type="KeepAlive"))
                else:
                    await socket.send_close_stream(ListenV1CloseStream(type="CloseStream"))
        except TimeoutError:
            self._fail(
                ProviderError(f"Deepgram did not take data within {self.config.send_timeout_s} s")
            )
        except (ConnectionClosed, OSError) as exc:
            self._fail(ProviderError(f"the Deepgram connection closed: {_closed_reason(exc)}"))
        self._last_sent = time.monotonic()
        if self._error is not None:
            raise self._error

    async def _read(self) -> None:
        socket = self._socket
        assert socket is not None
        try:
            while True:
                message = await socket.recv()
                self._heard = True
                self._unanswered_since = None
                self._on_message(message)
                if self._error is not None:
                    return
        except ConnectionClosedOK as exc:
            if not self._closing:
                self._fail(ProviderError(f"Deepgram ended the stream: {_closed_reason(exc)}"))
        except ConnectionClosed as exc:
            self._fail(ProviderError(f"the Deepgram connection closed: {_closed_reason(exc)}"))
        except json.JSONDecodeError:
            self._fail(ProviderError("Deepgram sent a message that is not JSON"))
        except (OSError, WebSocketException) as exc:
            self._fail(ProviderError(f"reading from Deepgram failed: {exc}"))

    def _on_message(self, message: object) -> None:
        if isinstance(message, ListenV1Results):
            self._on_results(message)
        elif isinstance(message, ListenV1Metadata):
            self.request_id = message.request_id
        elif isinstance(message, ListenV1Error):
            detail = message.description or message.message or message.variant
            self._fail(ProviderError(f"Deepgram error: {detail}"))
        elif isinstance(message, ListenV1ConfigureFailure):
            self._fail(ProviderError("Deepgram rejected a Configure message"))
        elif isinstance(message, bytes | bytearray):
            self._fail(ProviderError("Deepgram sent an unexpected binary message"))
        # UtteranceEnd / SpeechStarted / unknown types: turn-taking is the
        # pipeline's (VAD + finalize), so they carry nothing the turn needs.

    def _on_results(self, result: ListenV1Results) -> None:
        channel = getattr(result, "channel", None)
        alternatives = getattr(channel, "alternatives", None)
        if not isinstance(alternatives, list):
            self._fail(ProviderError("Deepgram sent a Results message without alternatives"))
            return
        best = alternatives[0] if alternatives else None
        text = str(getattr(best, "transcript", "") or "").strip()
        confidence = getattr(best, "confidence", None)
        end_s = float(result.start or 0.0) + float(result.duration or 0.0)
        if result.is_final:
            if text:
                self._finals.append(text)
                if isinstance(confidence, int | float):
                    self._confidences.append(float(confidence))
                self._publish(self._transcript(None, True, end_s, confidence))
            self._turn_end_s = max(self._turn_end_s, end_s)
            self._pending_interim = False
            if result.from_finalize:
                self._finalized.set()
        elif text:
            self._pending_interim = True
            self._publish(self._transcript(text, False, end_s, confidence))

    def _transcript(
        self, interim: str | None, final: bool, end_s: float, confidence: object
    ) -> Transcript:
        parts = [*self._finals, interim] if interim else self._finals
        return Transcript(
            text=" ".join(parts),
            final=final,
            end_s=end_s,
            confidence=float(confidence) if isinstance(confidence, int | float) else None,
        )

    async def _watch(self) -> None:
        cfg = self.config
        tick = max(
            0.01,
            min(cfg.first_result_timeout_s, cfg.inactivity_timeout_s, cfg.keepalive_interval_s) / 4,
        )
        while self._error is None:
            await asyncio.sleep(tick)
            now = time.monotonic()
            since = self._unanswered_since
            limit = cfg.inactivity_timeout_s if self._heard else cfg.first_result_timeout_s
            if since is not None and now - since > limit:
                what = "no result" if not self._heard else "nothing more"
                self._fail(ProviderError(f"Deepgram sent {what} for {limit} s of streamed audio"))
                return
            if now - self._last_sent >= cfg.keepalive_interval_s:
                with suppress(ProviderError):
                    await self._send("keepalive")

    def _publish(self, item: Transcript | ProviderError | None) -> None:
        if self._results.full():
            self._results.get_nowait()
        self._results.put_nowait(item)

    def _fail(self, error: ProviderError) -> None:
        if self._error is not None or self._closing:
            return
        log.warning("deepgram stream failed: %s", error)
        self._error = error
        self._publish(error)
        self._finalized.set()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ProviderError("the Deepgram stream is closed")

    async def _abandon(self) -> None:
        """Release the socket; a server that ignores the close handshake is left
        to the websocket library's own close timeout in the background."""
        self._release.set()
        owner = self._owner
        if owner is None:
            return
        await asyncio.wait({owner}, timeout=self.config.close_timeout_s)
        if not owner.done():
            owner.cancel()
            _BACKGROUND.add(owner)
            owner.add_done_callback(_BACKGROUND.discard)


#: Connection owners still closing after their stream gave up on them.
_BACKGROUND: set[asyncio.Task[None]] = set()


def _closed_reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        frame = exc.rcvd or exc.sent
        if frame is not None:
            return f"code {frame.code}" + (f" ({frame.reason})" if frame.reason else "")
        return "connection lost without a close frame"
    return str(exc) or type(exc).__name__


def make_deepgram_stt(
    settings: VoiceSettings | None = None, *, env: Mapping[str, str] | None = None
) -> DeepgramSTT:
    """The Deepgram provider configured from a graph's `voice:` settings (language)
    and the environment: `$DEEPGRAM_API_KEY` (required), `$SWITCHBOARD_DEEPGRAM_URL`,
    `$SWITCHBOARD_DEEPGRAM_MODEL`. Raises `ProviderError` naming what is missing."""
    environ = os.environ if env is None else env
    voice = settings or VoiceSettings()
    return DeepgramSTT(
        DeepgramConfig(
            api_key=environ.get(ENV_API_KEY, ""),
            url=environ.get(ENV_URL) or DEFAULT_URL,
            model=environ.get(ENV_MODEL) or DEFAULT_MODEL,
            language=voice.language,
        )
    )


register_stt("deepgram", make_deepgram_stt)
