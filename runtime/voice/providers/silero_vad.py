"""Silero VAD v6 through onnxruntime, from the ONNX file inside faster-whisper.

The model takes 512-sample frames at 16 kHz, each preceded by the last 64
samples of the frame before it (zeros for the first frame), and carries an
LSTM state (`h`, `c`) from frame to frame: exactly how faster-whisper's own
`SileroVADModel` feeds it, one frame at a time instead of a whole file. The
ONNX session is loaded once per process and shared (onnxruntime sessions are
safe to run from several threads); each call gets its own state via `clone()`.
A frame costs ~0.05 ms, so calling it on the event loop is fine.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime
from numpy.typing import NDArray

from runtime.voice.audio import SAMPLE_WIDTH, AudioFormatError, pcm_to_float
from runtime.voice.providers.base import ProviderError

SAMPLE_RATE = 16000
FRAME_SAMPLES = 512
CONTEXT_SAMPLES = 64
STATE_SHAPE = (1, 1, 128)
#: Shipped by faster-whisper >= 1.2.1 (earlier releases carry a split v5
#: encoder/decoder pair with different inputs).
MODEL_FILE = "silero_vad_v6.onnx"

_session: onnxruntime.InferenceSession | None = None
_session_lock = threading.Lock()


def model_path() -> Path:
    """Path of the Silero VAD ONNX file shipped in faster-whisper's assets."""
    try:
        from faster_whisper.utils import get_assets_path
    except ImportError as exc:  # pragma: no cover - faster-whisper is a dependency
        raise ProviderError("Silero VAD needs the faster-whisper package installed") from exc
    path = Path(get_assets_path()) / MODEL_FILE
    if not path.is_file():
        raise ProviderError(
            f"Silero VAD model not found at {path}: install faster-whisper>=1.2.1, "
            f"which ships {MODEL_FILE}"
        )
    return path


def shared_session() -> onnxruntime.InferenceSession:
    """The process-wide ONNX session (loaded on first use)."""
    global _session
    with _session_lock:
        if _session is None:
            options = onnxruntime.SessionOptions()
            # One frame is tiny: extra threads cost more than they save and
            # would compete with the STT worker for the cores.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 4
            try:
                _session = onnxruntime.InferenceSession(
                    str(model_path()), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except ProviderError:
                raise
            except Exception as exc:
                raise ProviderError(f"cannot load the Silero VAD model: {exc}") from exc
        return _session


class SileroVAD:
    """Speech probability per 32 ms frame of 16 kHz audio; one instance per call."""

    name = "silero"
    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(self, session: onnxruntime.InferenceSession | None = None) -> None:
        self._session = session if session is not None else shared_session()
        self._h: NDArray[np.float32] = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c: NDArray[np.float32] = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context: NDArray[np.float32] = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = b""

    def clone(self) -> SileroVAD:
        """A fresh detector (zero state) sharing this one's loaded model."""
        return SileroVAD(self._session)

    def reset(self) -> None:
        """Forget all audio seen so far, as if newly cloned."""
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = b""

    @property
    def frame_bytes(self) -> int:
        return FRAME_SAMPLES * SAMPLE_WIDTH

    def speech_probability(self, frame: bytes) -> float:
        """Probability in [0, 1] that this frame (exactly 512 samples of 16 kHz
        16-bit PCM, following the previous frame of this stream) is speech."""
        if len(frame) != self.frame_bytes:
            raise AudioFormatError(
                f"Silero VAD takes frames of {FRAME_SAMPLES} samples ({self.frame_bytes} bytes) "
                f"at {SAMPLE_RATE} Hz, got {len(frame)} bytes"
            )
        samples = pcm_to_float(frame)
        batch = np.concatenate([self._context, samples])[np.newaxis, :]
        try:
            probs, h, c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        except Exception as exc:
            raise ProviderError(f"Silero VAD inference failed: {exc}") from exc
        self._h, self._c = h, c
        self._context = samples[-CONTEXT_SAMPLES:]
        return float(np.asarray(probs).reshape(-1)[0])

    def process(self, pcm: bytes) -> list[float]:
        """Probabilities of every whole frame completed by `pcm` (any length);
        a trailing partial frame waits for the next call."""
        data = self._pending + pcm
        size = self.frame_bytes
        whole = len(data) - len(data) % size
        self._pending = data[whole:]
        return [self.speech_probability(data[i : i + size]) for i in range(0, whole, size)]
