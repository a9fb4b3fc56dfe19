"""PCM helpers: conversions, resampling, mu-law, WAV files, mixing."""

from __future__ import annotations

import importlib
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest

from runtime.voice import audio
from runtime.voice.audio import AudioFormatError


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    return audio.float_to_pcm(amplitude * np.sin(2 * np.pi * freq * t))


ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


# --- conversions and durations ---------------------------------------------


def test_int16_and_float_round_trip_exactly() -> None:
    pcm = audio.int16_to_pcm(ALL_INT16)
    assert audio.int16_to_pcm(audio.pcm_to_int16(pcm)) == pcm
    assert audio.float_to_pcm(audio.pcm_to_float(pcm)) == pcm
    floats = audio.pcm_to_float(pcm)
    assert floats.dtype == np.float32
    assert floats.min() == -1.0 and floats.max() < 1.0


def test_float_to_pcm_clips_instead_of_wrapping() -> None:
    samples = audio.pcm_to_int16(audio.float_to_pcm(np.array([2.0, -2.0, 1.0, 0.0])))
    assert samples.tolist() == [32767, -32768, 32767, 0]


def test_odd_byte_counts_are_rejected_with_a_clear_error() -> None:
    with pytest.raises(AudioFormatError, match="even number of bytes"):
        audio.pcm_to_int16(b"\x00\x01\x02")
    with pytest.raises(AudioFormatError):
        audio.ulaw_encode(b"\x00")


def test_durations_and_silence() -> None:
    assert audio.duration_s(b"\x00" * 32000, 16000) == 1.0
    assert audio.samples_for_ms(20, 8000) == 160
    assert audio.bytes_for_ms(32, 16000) == 1024
    assert audio.silence(100, 22050) == b"\x00" * 4410
    assert audio.rms_dbfs(audio.silence(10, 16000)) == float("-inf")
    assert audio.rms_dbfs(b"") == float("-inf")
    # A full-scale sine has an RMS of 1/sqrt(2): -3 dBFS.
    assert audio.rms_dbfs(tone(440, 1, 16000, amplitude=1.0)) == pytest.approx(-3.01, abs=0.05)


# --- resampling --------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_rate", "to_rate", "samples"),
    [(22050, 16000, 12345), (8000, 16000, 160), (16000, 8000, 333), (16000, 22050, 1)],
)
def test_resample_length_follows_the_rate_ratio(from_rate: int, to_rate: int, samples: int) -> None:
    out = audio.resample(b"\x10\x00" * samples, from_rate, to_rate)
    assert abs(len(out) // 2 - samples * to_rate / from_rate) <= 0.5


def test_resample_round_trip_keeps_a_tone() -> None:
    original = tone(440, 1.0, 16000)
    back = audio.resample(audio.resample(original, 16000, 8000), 8000, 16000)
    assert len(back) == len(original)
    a, b = audio.pcm_to_float(original)[800:-800], audio.pcm_to_float(back)[800:-800]
    noise = np.sqrt(np.mean((a - b) ** 2))
    snr_db = 20 * np.log10(np.sqrt(np.mean(a**2)) / noise)
    assert snr_db > 40


def test_resample_same_rate_and_empty_input_pass_through() -> None:
    pcm = tone(300, 0.1, 16000)
    assert audio.resample(pcm, 16000, 16000) == pcm
    assert audio.resample(b"", 16000, 8000) == b""
    with pytest.raises(AudioFormatError, match="sample rate"):
        audio.resample(pcm, 0, 8000)


def test_streaming_resampler_matches_one_shot_whatever_the_chunking() -> None:
    signal = tone(440, 1.0, 16000)
    one_shot = audio.resample(signal, 16000, 8000, quality=audio.STREAM_QUALITY)
    resampler = audio.Resampler(16000, 8000)
    # 321-byte chunks cut samples in half: the odd byte must carry over.
    parts = [resampler.process(signal[i : i + 321]) for i in range(0, len(signal), 321)]
    parts.append(resampler.flush())
    streamed = np.frombuffer(b"".join(parts), dtype=np.int16).astype(np.float64)
    reference = np.frombuffer(one_shot, dtype=np.int16).astype(np.float64)
    # The streaming (variable-rate) engine may shift the signal by a few samples.
    assert abs(len(streamed) - len(reference)) <= 4
    n = min(len(streamed), len(reference)) - 8
    errors = [
        np.sqrt(np.mean((streamed[4 + lag : 4 + lag + n] - reference[4 : 4 + n]) ** 2))
        for lag in range(-4, 5)
    ]
    assert min(errors) < 0.05 * np.sqrt(np.mean(reference**2))


def test_streaming_resampler_holds_back_little_audio() -> None:
    # Live calls cannot wait for a long filter: after 200 ms fed in 20 ms
    # Twilio-sized chunks, at most 40 ms may still be inside the resampler.
    resampler = audio.Resampler(8000, 16000)
    out = b"".join(resampler.process(tone(300, 0.02, 8000)) for _ in range(10))
    assert audio.duration_s(out, 16000) >= 0.2 - 0.04


def test_streaming_resampler_starts_afresh_after_flush() -> None:
    resampler = audio.Resampler(22050, 16000)
    signal = tone(200, 0.5, 22050)
    first = resampler.process(signal) + resampler.flush()
    second = resampler.process(signal) + resampler.flush()
    assert first == second


def test_streaming_resampler_at_equal_rates_passes_bytes_through() -> None:
    resampler = audio.Resampler(8000, 8000)
    assert resampler.process(b"\x01\x02\x03") == b"\x01\x02"
    assert resampler.process(b"\x04") == b"\x03\x04"


# --- G.711 mu-law ------------------------------------------------------------


def test_mulaw_round_trip_error_is_within_half_a_quantisation_step() -> None:
    decoded = audio.pcm_to_int16(
        audio.ulaw_decode(audio.ulaw_encode(audio.int16_to_pcm(ALL_INT16)))
    )
    x = ALL_INT16.astype(np.int64)
    error = np.abs(decoded.astype(np.int64) - x)
    in_range = np.abs(x) <= 32124  # the largest mu-law magnitude; beyond it values clip
    # Each of the 8 segments holds 16 steps and doubles in width, so the step
    # is at most (|x| + bias) / 16 and the error at most half of that, rounded.
    assert np.all(error[in_range] <= (np.abs(x[in_range]) + 132) / 16)
    assert decoded.max() == 32124 and decoded.min() == -32124


def test_mulaw_sizes_and_silence() -> None:
    pcm = tone(1000, 0.02, 8000)
    assert len(audio.ulaw_encode(pcm)) == len(pcm) // 2
    assert len(audio.ulaw_decode(b"\xff" * 160)) == 320
    assert audio.ulaw_encode(b"\x00\x00") == b"\xff"
    assert audio.ulaw_decode(b"\xff") == b"\x00\x00"


def test_mulaw_is_bit_exact_with_audioop_where_it_exists() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            audioop = importlib.import_module("audioop")
        except ImportError:
            pytest.skip("audioop is not part of this Python")
    every_sample = audio.int16_to_pcm(ALL_INT16)
    assert audio.ulaw_encode(every_sample) == audioop.lin2ulaw(every_sample, 2)
    every_code = bytes(range(256))
    assert audio.ulaw_decode(every_code) == audioop.ulaw2lin(every_code, 2)


# --- WAV ---------------------------------------------------------------------


def test_wav_round_trip(tmp_path: Path) -> None:
    pcm = tone(523, 0.3, 22050)
    path = tmp_path / "tone.wav"
    audio.write_wav(path, pcm, 22050)
    assert audio.read_wav(path) == (pcm, 22050)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 22050)


def test_stereo_wav_is_read_as_the_average_of_its_channels(tmp_path: Path) -> None:
    left = audio.int16_to_pcm(np.array([1000, -2000, 300], dtype=np.int16))
    right = audio.int16_to_pcm(np.array([3000, 2000, 301], dtype=np.int16))
    path = tmp_path / "stereo.wav"
    audio.write_wav(path, audio.interleave(left, right), 8000, channels=2)
    pcm, rate = audio.read_wav(path)
    assert rate == 8000
    assert audio.pcm_to_int16(pcm).tolist() == [2000, 0, 300]  # 300.5 rounds to even


@pytest.mark.parametrize("width", [1, 3, 4])
def test_other_integer_widths_are_converted_to_16_bit(tmp_path: Path, width: int) -> None:
    values = [-32768, -256, 0, 256, 32512]
    raw = b"".join(
        (v // 256 + 128).to_bytes(1, "little")
        if width == 1
        else (v * 256 ** (width - 2)).to_bytes(width, "little", signed=True)
        for v in values
    )
    path = tmp_path / f"w{width}.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(width)
        out.setframerate(16000)
        out.writeframes(raw)
    pcm, rate = audio.read_wav(path)
    assert rate == 16000
    assert audio.pcm_to_int16(pcm).tolist() == values


def test_a_file_that_is_not_wav_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("not audio")
    with pytest.raises(AudioFormatError, match=r"notes\.wav: not a PCM WAV file"):
        audio.read_wav(path)
    with pytest.raises(FileNotFoundError):
        audio.read_wav(tmp_path / "missing.wav")
    with pytest.raises(AudioFormatError, match="whole frames"):
        audio.write_wav(tmp_path / "bad.wav", b"\x00\x00", 8000, channels=2)


# --- mixing ------------------------------------------------------------------


def test_mix_sums_pads_and_clips() -> None:
    caller = audio.int16_to_pcm(np.array([100, 30000, -30000, 5], dtype=np.int16))
    agent = audio.int16_to_pcm(np.array([1, 10000, -10000], dtype=np.int16))
    mixed = audio.pcm_to_int16(audio.mix(caller, agent)).tolist()
    assert mixed == [101, 32767, -32768, 5]
    assert audio.mix(b"", agent) == agent


def test_interleave_keeps_tracks_apart_and_pads_the_shorter() -> None:
    left = audio.int16_to_pcm(np.array([1, 2, 3], dtype=np.int16))
    right = audio.int16_to_pcm(np.array([-1], dtype=np.int16))
    frames = audio.pcm_to_int16(audio.interleave(left, right)).reshape(-1, 2)
    assert frames.tolist() == [[1, -1], [2, 0], [3, 0]]
