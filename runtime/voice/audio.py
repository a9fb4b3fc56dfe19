"""16-bit mono PCM helpers: conversions, resampling, G.711 mu-law, WAV files, mixing.

PCM everywhere in the voice runtime is signed 16-bit little-endian, one channel,
as `bytes`. Resampling uses libsoxr (`soxr`): `resample()` for a whole buffer,
`Resampler` for a stream cut into chunks (one per stream: it keeps the filter
state between chunks, so chunk boundaries leave no clicks or gaps).

Resampling runs in float32 and rounds once to 16 bits at the end, so results
are deterministic (soxr's own int16 output adds dither). The streaming
resampler defaults to soxr's "LQ" preset: 16-bit precision, which is all 16-bit
PCM can carry, with a short filter. Its delay, measured in 20 ms chunks, is
~24 ms for 8 <-> 16 kHz and ~16 ms for 22.05 -> 16 kHz, where "HQ" holds back
~96 ms and ~31 ms: latency a live call (and barge-in) cannot afford. The price
is a roll-off near Nyquist (8 kHz audio: -0.3 dB at 3 kHz, -8 dB at 3.4 kHz);
Whisper's recognition of telephone-band speech did not measurably change.
Pass quality="HQ" where delay does not matter.

G.711 mu-law is done with numpy lookup tables built from the ITU-T G.711
segment rules as CPython's `audioop` implements them (bit-exact with
`audioop.lin2ulaw` / `ulaw2lin`). `audioop` itself is deprecated in 3.11 and
gone in 3.13, and `audioop-lts` only installs on 3.13+, so neither covers every
supported Python; the tables are 64 KiB + 512 B, built once, and encode or
decode a 20 ms Twilio frame in a single vectorised indexing operation.
"""

from __future__ import annotations

import wave
from os import PathLike
from typing import Literal

import numpy as np
import soxr
from numpy.typing import NDArray

SAMPLE_WIDTH = 2
INT16_SCALE = 32768.0
#: soxr quality presets, lowest to highest; "HQ" is the library's default.
Quality = Literal["QQ", "LQ", "MQ", "HQ", "VHQ"]
#: Streaming default: 16-bit precision, wider roll-off, short (low-delay) filter.
STREAM_QUALITY: Quality = "LQ"


class AudioFormatError(ValueError):
    """Audio that is not what the caller said it is (odd byte count, bad WAV)."""


# --- conversions -------------------------------------------------------------


def _check_pcm(pcm: bytes) -> None:
    if len(pcm) % SAMPLE_WIDTH:
        raise AudioFormatError(
            f"16-bit PCM must have an even number of bytes, got {len(pcm)} bytes"
        )


def pcm_to_int16(pcm: bytes) -> NDArray[np.int16]:
    """The samples of `pcm` as an int16 array (a copy, safe to modify)."""
    _check_pcm(pcm)
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16)


def int16_to_pcm(samples: NDArray[np.int16]) -> bytes:
    """Little-endian bytes of an int16 sample array."""
    return np.asarray(samples, dtype="<i2").tobytes()


def pcm_to_float(pcm: bytes) -> NDArray[np.float32]:
    """Samples scaled to [-1.0, 1.0) as float32 (sample / 32768)."""
    return pcm_to_int16(pcm).astype(np.float32) / np.float32(INT16_SCALE)


def float_to_pcm(samples: NDArray[np.floating]) -> bytes:
    """PCM of float samples in [-1, 1]; values outside are clipped, not wrapped."""
    scaled = np.rint(np.asarray(samples, dtype=np.float64) * INT16_SCALE)
    return int16_to_pcm(np.clip(scaled, -32768, 32767).astype(np.int16))


# --- durations ---------------------------------------------------------------


def duration_s(pcm: bytes, sample_rate: int) -> float:
    """Seconds of audio in `pcm` at `sample_rate`."""
    return len(pcm) / (SAMPLE_WIDTH * sample_rate)


def samples_for_ms(ms: float, sample_rate: int) -> int:
    """Whole samples in `ms` milliseconds at `sample_rate` (rounded to nearest)."""
    return round(ms * sample_rate / 1000.0)


def bytes_for_ms(ms: float, sample_rate: int) -> int:
    """Bytes of 16-bit mono PCM in `ms` milliseconds (always a whole sample)."""
    return samples_for_ms(ms, sample_rate) * SAMPLE_WIDTH


def silence(ms: float, sample_rate: int) -> bytes:
    """`ms` milliseconds of digital silence."""
    return b"\x00" * bytes_for_ms(ms, sample_rate)


def rms_dbfs(pcm: bytes) -> float:
    """Loudness of `pcm` in dB relative to full scale; -inf for silence or no audio."""
    samples = pcm_to_float(pcm)
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20.0 * float(np.log10(rms)) if rms > 0 else float("-inf")


# --- resampling --------------------------------------------------------------


def _check_rate(rate: int) -> None:
    if rate <= 0:
        raise AudioFormatError(f"sample rate must be positive, got {rate}")


def resample(pcm: bytes, from_rate: int, to_rate: int, quality: Quality = "HQ") -> bytes:
    """`pcm` converted from `from_rate` to `to_rate`; for n input samples the
    output holds n * to_rate / from_rate samples, within half a sample."""
    _check_rate(from_rate)
    _check_rate(to_rate)
    _check_pcm(pcm)
    if from_rate == to_rate or not pcm:
        return pcm
    return float_to_pcm(soxr.resample(pcm_to_float(pcm), from_rate, to_rate, quality=quality))


class Resampler:
    """Streaming resampler for one audio stream delivered in chunks.

    `process()` may return fewer samples than the ratio implies (the filter's
    delay); `flush()` at the end of the stream returns the rest, after which
    the total matches `resample()` of the whole stream at the same quality.
    A chunk may end in the
    middle of a sample: the odd byte is kept for the next chunk.
    """

    def __init__(self, from_rate: int, to_rate: int, quality: Quality = STREAM_QUALITY) -> None:
        _check_rate(from_rate)
        _check_rate(to_rate)
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._passthrough = from_rate == to_rate
        # vr=True: soxr's variable-rate engine releases output on every chunk
        # (the fixed-rate one holds ~60 ms back, then bursts), at ~2 samples delay.
        self._stream = (
            None
            if self._passthrough
            else soxr.ResampleStream(
                from_rate, to_rate, 1, dtype="float32", quality=quality, vr=True
            )
        )
        self._carry = b""

    def process(self, pcm: bytes) -> bytes:
        """Resampled audio for this chunk, as far as the filter can produce it."""
        return self._run(pcm, last=False)

    def flush(self) -> bytes:
        """The remaining output at the end of the stream; the resampler then
        starts a fresh stream. A dangling half sample is dropped."""
        out = self._run(b"", last=True)
        if self._stream is not None:
            self._stream.clear()
        return out

    def _run(self, pcm: bytes, *, last: bool) -> bytes:
        data = self._carry + pcm
        whole = len(data) - len(data) % SAMPLE_WIDTH
        self._carry = b"" if last else data[whole:]
        data = data[:whole]
        if self._stream is None:
            return data
        return float_to_pcm(self._stream.resample_chunk(pcm_to_float(data), last=last))


# --- G.711 mu-law ------------------------------------------------------------

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # 14-bit magnitude limit used by G.711 (after the >> 2 below)
_SEG_UPPER = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)


def _build_ulaw_encode_table() -> NDArray[np.uint8]:
    linear = np.arange(-32768, 32768, dtype=np.int32) >> 2  # arithmetic shift to 14 bits
    negative = linear < 0
    magnitude = np.minimum(np.where(negative, -linear, linear), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_SEG_UPPER, magnitude, side="left").astype(np.int32)
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa)
    mask = np.where(negative, 0x7F, 0xFF)
    encoded = (code ^ mask).astype(np.uint8)
    # Index by the sample's bit pattern read as uint16: 0..32767 then -32768..-1.
    return np.concatenate([encoded[32768:], encoded[:32768]])


def _build_ulaw_decode_table() -> NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _ULAW_BIAS - magnitude, magnitude - _ULAW_BIAS).astype(np.int16)


_ULAW_ENCODE = _build_ulaw_encode_table()
_ULAW_DECODE = _build_ulaw_decode_table()


def ulaw_encode(pcm: bytes) -> bytes:
    """G.711 mu-law bytes (one per sample) of 16-bit PCM."""
    _check_pcm(pcm)
    return _ULAW_ENCODE[np.frombuffer(pcm, dtype="<u2")].tobytes()


def ulaw_decode(data: bytes) -> bytes:
    """16-bit PCM of G.711 mu-law bytes (two output bytes per input byte)."""
    return int16_to_pcm(_ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)])


# --- WAV files -----------------------------------------------------------------


def write_wav(
    path: str | PathLike[str], pcm: bytes, sample_rate: int, *, channels: int = 1
) -> None:
    """Write 16-bit PCM (interleaved if `channels` > 1) as a WAV file."""
    _check_rate(sample_rate)
    _check_pcm(pcm)
    if channels < 1 or len(pcm) % (SAMPLE_WIDTH * channels):
        raise AudioFormatError(f"{len(pcm)} bytes is not whole frames of {channels} channel(s)")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(SAMPLE_WIDTH)
        out.setframerate(sample_rate)
        out.writeframes(pcm)


def read_wav(path: str | PathLike[str]) -> tuple[bytes, int]:
    """(16-bit mono PCM, sample rate) of an uncompressed PCM WAV file.

    8/16/24/32-bit integer samples are converted to 16 bits and several
    channels are averaged to one. Anything else raises `AudioFormatError`
    naming the file; a missing file raises `FileNotFoundError`.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            rate = wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"{path}: not a PCM WAV file I can read ({exc})") from exc
    if rate <= 0 or channels < 1:
        raise AudioFormatError(f"{path}: bad header ({channels} channels at {rate} Hz)")
    samples = _to_int32_samples(raw, width, path)
    frames = samples[: samples.size - samples.size % channels].reshape(-1, channels)
    mono = frames.mean(axis=1) if channels > 1 else frames[:, 0]
    return int16_to_pcm(np.rint(mono).astype(np.int16)), rate


def _to_int32_samples(raw: bytes, width: int, path: str | PathLike[str]) -> NDArray[np.int32]:
    """Samples of any integer PCM width rescaled to the int16 range (as int32)."""
    if width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 8
    if width == 2:
        return np.frombuffer(raw[: len(raw) - len(raw) % 2], dtype="<i2").astype(np.int32)
    if width == 3:
        usable = np.frombuffer(raw[: len(raw) - len(raw) % 3], dtype=np.uint8).reshape(-1, 3)
        as_int = (
            usable[:, 0].astype(np.int32)
            | (usable[:, 1].astype(np.int32) << 8)
            | (usable[:, 2].astype(np.int32) << 16)
        )
        return ((as_int << 8) >> 8) >> 8  # sign-extend 24 bits, keep the top 16
    if width == 4:
        return np.frombuffer(raw[: len(raw) - len(raw) % 4], dtype="<i4") >> 16
    raise AudioFormatError(f"{path}: unsupported sample width of {width} bytes")


# --- mixing ------------------------------------------------------------------


def mix(a: bytes, b: bytes) -> bytes:
    """One mono track that sums `a` and `b` sample by sample (clipped to 16
    bits); the shorter track is padded with silence, so the result is as long
    as the longer one. Both must share a sample rate."""
    first, second = pcm_to_int16(a).astype(np.int32), pcm_to_int16(b).astype(np.int32)
    length = max(first.size, second.size)
    total = np.zeros(length, dtype=np.int32)
    total[: first.size] += first
    total[: second.size] += second
    return int16_to_pcm(np.clip(total, -32768, 32767).astype(np.int16))


def interleave(left: bytes, right: bytes) -> bytes:
    """Stereo PCM (left, right frames) of two mono tracks, padding the shorter
    with silence: for recordings that keep caller and agent apart."""
    first, second = pcm_to_int16(left), pcm_to_int16(right)
    frames = np.zeros((max(first.size, second.size), 2), dtype=np.int16)
    frames[: first.size, 0] = first
    frames[: second.size, 1] = second
    return int16_to_pcm(frames.reshape(-1))
