"""ElevenLabs streaming text-to-speech through the official SDK (`elevenlabs`).

Each sentence chunk is one `POST /v1/text-to-speech/{voice_id}/stream` with
`output_format=pcm_<rate>`: raw 16-bit mono PCM streamed back over a chunked
HTTP response, yielded as it arrives. This is the SDK's async streaming API;
its websocket `stream-input` helper (`convert_realtime`) is synchronous only,
forces a `wss://` URL and buffers text until its own chunk schedule, so for
text that already arrives in sentence chunks the pooled HTTP stream gives the
lower time to first audio (no websocket handshake per context, no server-side
text buffering).

The SDK's `AsyncElevenLabs` client is pointed at `$SWITCHBOARD_ELEVENLABS_URL`
(default `https://api.elevenlabs.io`) through its `base_url`; the key comes
from `$ELEVENLABS_API_KEY` (sent as `xi-api-key`). Streaming requests are not
retried by the SDK; every wait here is bounded (first chunk, gap between
chunks) and every failure surfaces as `ProviderError`.
"""

from __future__ import annotations

import asyncio
import copy
import os
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError

from runtime.voice.providers.base import ProviderError
from runtime.voice.providers.registry import ProviderConfigError, register_tts
from schemas.spec import VoiceSettings

ENV_URL = "SWITCHBOARD_ELEVENLABS_URL"
ENV_API_KEY = "ELEVENLABS_API_KEY"
ENV_MODEL = "SWITCHBOARD_ELEVENLABS_MODEL"
ENV_VOICE = "SWITCHBOARD_ELEVENLABS_VOICE"
DEFAULT_URL = "https://api.elevenlabs.io"
DEFAULT_MODEL = "eleven_flash_v2_5"
#: A premade voice available to every account ("George").
DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"
#: Sample rates ElevenLabs streams as raw PCM (`pcm_<rate>`).
PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
#: Audio per yielded chunk: the HTTP body is re-chunked to this many ms.
CHUNK_MS = 20


@dataclass(frozen=True)
class ElevenLabsConfig:
    """Connection, voice and time bounds (seconds) of one provider."""

    api_key: str
    url: str = DEFAULT_URL
    voice_id: str = DEFAULT_VOICE
    model_id: str = DEFAULT_MODEL
    sample_rate: int = 16000
    #: Longest wait from the request to the first audio bytes (connect included).
    first_chunk_timeout_s: float = 5.0
    #: Longest gap between two audio chunks once audio flows.
    inactivity_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ProviderConfigError(f"ElevenLabs needs an API key: set ${ENV_API_KEY}")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ProviderConfigError(
                f"ElevenLabs URL {self.url!r} must be an http:// or https:// URL"
            )
        if self.sample_rate not in PCM_RATES:
            raise ProviderConfigError(
                f"ElevenLabs streams PCM at {', '.join(map(str, PCM_RATES))} Hz, "
                f"not {self.sample_rate}"
            )
        if not self.voice_id.strip():
            raise ProviderConfigError("ElevenLabs voice_id is empty")
        if not (self.first_chunk_timeout_s > 0 and self.inactivity_timeout_s > 0):
            raise ProviderConfigError("ElevenLabs timeouts must be positive")

    @property
    def output_format(self) -> str:
        return f"pcm_{self.sample_rate}"

    @property
    def chunk_bytes(self) -> int:
        return max(2, self.sample_rate * 2 * CHUNK_MS // 1000)


class ElevenLabsTTS:
    """`TTSProvider` for ElevenLabs streaming speech (raw PCM)."""

    name = "elevenlabs"

    def __init__(self, config: ElevenLabsConfig) -> None:
        self.config = config
        self.sample_rate = config.sample_rate
        # Loading CA certificates blocks: done here, once, not on the event loop.
        self._ssl = httpx.create_ssl_context()
        # An httpx pool belongs to the event loop that opened its connections.
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[AsyncElevenLabs, httpx.AsyncClient]
        ] = weakref.WeakKeyDictionary()

    def _client(self) -> AsyncElevenLabs:
        loop = asyncio.get_running_loop()
        pair = self._clients.get(loop)
        if pair is None:
            cfg = self.config
            pool = httpx.AsyncClient(verify=self._ssl, follow_redirects=True)
            client = AsyncElevenLabs(
                api_key=cfg.api_key,
                base_url=cfg.url.rstrip("/"),
                httpx_client=pool,
                # httpx's read timeout: the longest wait for any bytes.
                timeout=max(cfg.first_chunk_timeout_s, cfg.inactivity_timeout_s),
            )
            pair = self._clients[loop] = (client, pool)
        return pair[0]

    def with_voice(
        self, settings: VoiceSettings, *, env: Mapping[str, str] | None = None
    ) -> ElevenLabsTTS:
        """This provider speaking with the voice `make_elevenlabs_tts(settings)`
        would choose (`$SWITCHBOARD_ELEVENLABS_VOICE`, else `settings.voice` when
        it was picked for ElevenLabs, else the default voice), sharing this
        provider's connection pools; itself when that is its voice already."""
        environ = os.environ if env is None else env
        own = settings.tts.strip().lower() == self.name
        voice_id = environ.get(ENV_VOICE) or (settings.voice if own else None) or DEFAULT_VOICE
        if voice_id == self.config.voice_id:
            return self
        twin = copy.copy(self)  # the same SSL context and per-loop client pools
        twin.config = replace(self.config, voice_id=voice_id)
        return twin

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """PCM chunks (16-bit mono at `sample_rate`, whole samples) of `text`, each
        yielded as soon as it arrives. Raises `ProviderError` on a rejected key,
        an HTTP error, a connection failure, or when the first chunk takes longer
        than `first_chunk_timeout_s` or a later one longer than
        `inactivity_timeout_s`. Closing the iterator early aborts the request."""
        if not text.strip():
            return
        cfg = self.config
        stream = cast(
            AsyncGenerator[bytes, None],
            self._client().text_to_speech.stream(
                cfg.voice_id,
                text=text,
                model_id=cfg.model_id,
                output_format=cfg.output_format,
                request_options={"chunk_size": cfg.chunk_bytes, "max_retries": 0},
            ),
        )
        carry = b""
        bound, what = cfg.first_chunk_timeout_s, "first audio"
        try:
            while True:
                try:
                    async with asyncio.timeout(bound):
                        chunk = await anext(stream)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise ProviderError(f"ElevenLabs sent no {what} within {bound} s") from None
                bound, what = cfg.inactivity_timeout_s, "further audio"
                data = carry + chunk
                whole = len(data) - len(data) % 2
                carry = data[whole:]
                if whole:
                    yield data[:whole]
        except ApiError as exc:
            raise ProviderError(_api_error_message(exc)) from None
        except httpx.TimeoutException:
            raise ProviderError(f"ElevenLabs at {cfg.url} timed out") from None
        except httpx.HTTPError as exc:
            raise ProviderError(f"ElevenLabs request to {cfg.url} failed: {exc}") from None
        finally:
            await stream.aclose()
        if carry:
            raise ProviderError("ElevenLabs audio ended in the middle of a 16-bit sample")

    async def aclose(self) -> None:
        """Close the connection pool this event loop uses (others close with their loops)."""
        pair = self._clients.pop(asyncio.get_running_loop(), None)
        if pair is not None:
            await pair[1].aclose()


def _api_error_message(exc: ApiError) -> str:
    status = exc.status_code
    detail = _detail(exc.body)
    if status == 401:
        return "ElevenLabs rejected the API key (HTTP 401)" + (f": {detail}" if detail else "")
    return f"ElevenLabs answered HTTP {status}" + (f": {detail}" if detail else "")


def _detail(body: Any) -> str:
    """The human message inside an ElevenLabs error body (`{"detail": ...}`)."""
    if isinstance(body, Mapping):
        inner = body.get("detail", body)
        if isinstance(inner, Mapping):
            return str(inner.get("message") or inner.get("status") or "")
        if isinstance(inner, list) and inner and isinstance(inner[0], Mapping):
            return str(inner[0].get("msg", ""))
        return str(inner)
    return str(body or "")[:200]


def make_elevenlabs_tts(
    settings: VoiceSettings | None = None, *, env: Mapping[str, str] | None = None
) -> ElevenLabsTTS:
    """The ElevenLabs provider configured from a graph's `voice:` settings (`voice`
    is the ElevenLabs voice id) and the environment: `$ELEVENLABS_API_KEY`
    (required), `$SWITCHBOARD_ELEVENLABS_URL`, `$SWITCHBOARD_ELEVENLABS_MODEL`,
    `$SWITCHBOARD_ELEVENLABS_VOICE` (overrides the graph's voice). Raises
    `ProviderError` naming what is missing or wrong."""
    environ = os.environ if env is None else env
    voice = settings or VoiceSettings()
    return ElevenLabsTTS(
        ElevenLabsConfig(
            api_key=environ.get(ENV_API_KEY, ""),
            url=environ.get(ENV_URL) or DEFAULT_URL,
            model_id=environ.get(ENV_MODEL) or DEFAULT_MODEL,
            voice_id=environ.get(ENV_VOICE) or voice.voice or DEFAULT_VOICE,
        )
    )


register_tts("elevenlabs", make_elevenlabs_tts)
