"""eSpeak NG text to speech through ctypes, from the `espeakng-loader` wheel.

The wheel carries `libespeak-ng.so` and its `espeak-ng-data`, so nothing is
installed system-wide. The library runs in AUDIO_OUTPUT_SYNCHRONOUS mode:
`espeak_Synth` returns when the text is done and calls our callback with each
buffer of samples on the way. The library keeps global state and is not
re-entrant, so every use holds `_Engine.lock` and synthesis runs on one
dedicated worker thread; chunks reach the event loop through an asyncio queue
the moment the callback sees them (first audio in well under a millisecond).

Synthesis is ~1000x faster than real time and never waits for the consumer
(no back-pressure): a slow listener must not keep other calls from speaking.
A consumer that stops iterating aborts the synthesis at the next buffer.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runtime.voice.providers.base import ProviderError
from schemas.spec import VoiceSettings

# espeak-ng speak_lib.h constants (API revision 12).
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
ENDPAUSE = 0x1000
POS_CHARACTER = 1
PARAM_RATE = 1
PARAM_PITCH = 3
EE_OK = 0
#: Length of each buffer the library hands to the callback.
BUFFER_MS = 50
RATE_RANGE = (80, 450)
PITCH_RANGE = (0, 100)
#: Defaults picked so Whisper tiny.en recognises synthesized caller lines
#: reliably ("en" is eSpeak's British English; 160 words per minute).
DEFAULT_VOICE = "en"
DEFAULT_RATE = 160
DEFAULT_PITCH = 50

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
Sink = Callable[[bytes], bool]


class _Engine:
    """The process-wide eSpeak NG library: loaded and initialised once."""

    lock = threading.Lock()

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - espeakng-loader is a dependency
            raise ProviderError("eSpeak TTS needs the espeakng-loader package") from exc
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data_path = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as exc:
            raise ProviderError(f"cannot load eSpeak NG from espeakng-loader: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, BUFFER_MS, data_path.encode(), INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise ProviderError(f"eSpeak NG failed to initialise with data at {data_path}")
        self.sample_rate: int = rate
        self._lib = lib
        # The C side holds a raw pointer to this thunk: keep it alive with the engine.
        self._callback = _SynthCallback(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)
        self._sink: Sink | None = None
        self._voice: str | None = None
        self._known_voices: dict[str, bool] = {}

    def _on_audio(self, wav: Any, count: int, _events: Any) -> int:
        """Library callback: 0 continues synthesis, 1 aborts it."""
        sink = self._sink
        if sink is None:
            return 1
        if not wav or count <= 0:  # NULL marks the end; zero samples is not the end
            return 0
        try:
            return 0 if sink(ctypes.string_at(wav, count * 2)) else 1
        except Exception:  # an exception cannot cross the C boundary: stop instead
            return 1

    def _select_voice(self, voice: str) -> None:
        """Switch voices if needed; the caller holds the lock."""
        if voice == self._voice:
            return
        status = self._lib.espeak_SetVoiceByName(voice.encode())
        self._known_voices[voice] = status == EE_OK
        if status != EE_OK:
            self._voice = None
            raise ProviderError(f"eSpeak NG has no voice named {voice!r} (e.g. 'en', 'en-us')")
        self._voice = voice

    def check_voice(self, voice: str) -> None:
        """Raise `ProviderError` unless eSpeak NG can speak with `voice`; each
        name is looked up once per process."""
        known = self._known_voices.get(voice)
        if known is None:
            with self.lock:
                self._select_voice(voice)
        elif not known:
            raise ProviderError(f"eSpeak NG has no voice named {voice!r} (e.g. 'en', 'en-us')")

    def synthesize(self, text: str, voice: str, rate: int, pitch: int, sink: Sink) -> None:
        """Speak `text`, handing each PCM buffer to `sink` (False aborts).
        Blocks until done: call it from a worker thread."""
        with self.lock:
            self._select_voice(voice)
            self._lib.espeak_SetParameter(PARAM_RATE, rate, 0)
            self._lib.espeak_SetParameter(PARAM_PITCH, pitch, 0)
            data = text.encode("utf-8")
            self._sink = sink
            try:
                status = self._lib.espeak_Synth(
                    data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8 | ENDPAUSE, None, None
                )
            finally:
                self._sink = None
            if status != EE_OK:
                raise ProviderError(f"eSpeak NG synthesis failed (status {status})")


_engine: _Engine | None = None
_engine_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def engine() -> _Engine:
    """The process-wide eSpeak NG engine (loaded on first use, a few ms)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


def _worker() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="espeak")
        return _executor


_DONE = object()


def _post(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], item: object) -> bool:
    """Hand `item` to the consumer's loop from the worker thread; False if that
    loop is gone."""
    try:
        loop.call_soon_threadsafe(queue.put_nowait, item)
    except RuntimeError:
        return False
    return True


class EspeakTTS:
    """Streaming offline TTS at eSpeak NG's native rate (22,050 Hz)."""

    name = "espeak"

    def __init__(
        self, voice: str | None = None, rate: int = DEFAULT_RATE, pitch: int = DEFAULT_PITCH
    ) -> None:
        """Check the settings (an unknown voice or out-of-range rate/pitch raises
        `ProviderError`) and load the library if this is the first use."""
        if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
            raise ProviderError(
                f"eSpeak rate must be {RATE_RANGE[0]}-{RATE_RANGE[1]} words per minute, got {rate}"
            )
        if not PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]:
            raise ProviderError(
                f"eSpeak pitch must be {PITCH_RANGE[0]}-{PITCH_RANGE[1]}, got {pitch}"
            )
        self.voice = voice or DEFAULT_VOICE
        self.rate = rate
        self.pitch = pitch
        self._engine = engine()
        self._engine.check_voice(self.voice)
        self.sample_rate: int = self._engine.sample_rate

    def with_voice(self, settings: VoiceSettings) -> EspeakTTS:
        """This provider speaking with the voice `settings` choose: its `voice`
        when it was picked for eSpeak (`tts: espeak`), else eSpeak's default, at
        this provider's rate and pitch (itself when that is its voice already).
        An unknown voice name raises `ProviderError`."""
        own = settings.tts.strip().lower() == self.name
        voice = (settings.voice if own else None) or DEFAULT_VOICE
        if voice == self.voice:
            return self
        return EspeakTTS(voice=voice, rate=self.rate, pitch=self.pitch)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """16-bit PCM chunks (~50 ms each) of `text`, each yielded as soon as the
        library produces it. Stopping early (break, aclose, cancellation) aborts
        the synthesis. Library failures raise `ProviderError`."""
        text = " ".join(text.split())
        if not text:
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def sink(chunk: bytes) -> bool:
            return not stop.is_set() and _post(loop, queue, chunk)

        def job() -> None:
            try:
                if not stop.is_set():
                    self._engine.synthesize(text, self.voice, self.rate, self.pitch, sink)
            except Exception as exc:
                _post(loop, queue, exc)
            finally:
                _post(loop, queue, _DONE)

        loop.run_in_executor(_worker(), job)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    return
                if isinstance(item, ProviderError):
                    raise item
                if isinstance(item, Exception):
                    raise ProviderError(f"eSpeak NG synthesis failed: {item}") from item
                yield item
        finally:
            stop.set()

    async def render(self, text: str) -> bytes:
        """All of `text` as one PCM buffer (for prompts, tests, simulated callers)."""
        return b"".join([chunk async for chunk in self.synthesize(text)])
