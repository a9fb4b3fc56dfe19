"""Word error rate and real-time factor of the embedded STT (faster-whisper
tiny.en through `WhisperSTT.transcribe`) on call-style utterances.

The utterances are synthesized with the embedded TTS (eSpeak NG) and resampled
to 16 kHz, so the set is the same on every machine and needs no download;
synthetic speech is cleaner than a phone line, so this WER is a floor, not a
field figure. `--audio-dir DIR` adds real recordings: every `*.wav` with a
same-named `.txt` transcript beside it. WER is computed with jiwer after
lower-casing and removing punctuation (numbers are compared as written: "ten"
against "10" counts as an error). Real-time factor = decode time / audio
duration (below 1 is faster than real time; Whisper pads each utterance to a
30 s window, so short utterances have a higher factor).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jiwer

from benchmarks.harness import Settings, Skipped, distribution
from runtime.voice.audio import SAMPLE_WIDTH, read_wav, resample

DESCRIPTION = "WER and real-time factor of the embedded STT on synthesized call utterances"
RATE = 16000
UTTERANCES = (
    "I need to book a cleaning",
    "can I come in next Tuesday",
    "my name is Maria Garcia",
    "I would like to cancel my appointment",
    "what are your opening hours",
    "can I speak to a real person please",
    "yes that works for me",
    "no thanks that is all",
    "my internet is not working",
    "there is a charge on my bill I do not recognise",
    "could you repeat that please",
    "I want to move my appointment to Friday",
    "is there anything available in the morning",
    "the router lights are blinking red",
    "please send me a refund",
    "I have a question about my account",
    "sorry what did you say",
    "my tooth hurts and I need to come in",
    "can you check the status of my order",
    "thank you very much goodbye",
)
QUICK_COUNT = 8

_NORMALISE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


def word_errors(reference: str, hypothesis: str) -> dict[str, int]:
    """Substitutions, deletions, insertions and reference words after
    normalisation (lower case, no punctuation)."""
    out = jiwer.process_words(
        reference,
        hypothesis or "",
        reference_transform=_NORMALISE,
        hypothesis_transform=_NORMALISE,
    )
    words = out.hits + out.substitutions + out.deletions
    return {
        "substitutions": out.substitutions,
        "deletions": out.deletions,
        "insertions": out.insertions,
        "words": words,
    }


def recordings(audio_dir: Path) -> list[tuple[str, Path, str]]:
    """(name, wav path, transcript) of every WAV in `audio_dir` with a .txt
    transcript; ValueError when the directory has none."""
    if not audio_dir.is_dir():
        raise ValueError(f"--audio-dir {audio_dir}: not a directory")
    found = []
    for wav in sorted(audio_dir.glob("*.wav")):
        txt = wav.with_suffix(".txt")
        if txt.is_file():
            found.append((wav.name, wav, txt.read_text(encoding="utf-8").strip()))
    if not found:
        raise ValueError(f"--audio-dir {audio_dir}: no *.wav file with a .txt transcript")
    return found


async def _score(stt: Any, items: list[tuple[str, bytes, str]]) -> dict[str, Any]:
    totals = {"substitutions": 0, "deletions": 0, "insertions": 0, "words": 0}
    rtf: list[float] = []
    decode_ms: list[float] = []
    rows = []
    for name, pcm, reference in items:
        t0 = time.perf_counter()
        transcript = await stt.transcribe(pcm)
        elapsed = time.perf_counter() - t0
        audio_s = len(pcm) / (SAMPLE_WIDTH * RATE)
        errors = word_errors(reference, transcript.text)
        for key in totals:
            totals[key] += errors[key]
        rtf.append(elapsed / audio_s if audio_s else 0.0)
        decode_ms.append(elapsed * 1000.0)
        wrong = errors["substitutions"] + errors["deletions"] + errors["insertions"]
        rows.append(
            {
                "name": name,
                "reference": reference,
                "hypothesis": transcript.text,
                "audio_s": round(audio_s, 2),
                "errors": wrong,
            }
        )
    wrong = totals["substitutions"] + totals["deletions"] + totals["insertions"]
    return {
        "utterances": len(items),
        "wer": round(wrong / totals["words"], 4) if totals["words"] else None,
        "errors": totals,
        "real_time_factor": distribution(rtf, digits=4),
        "decode_ms": distribution(decode_ms, digits=1),
        "worst": sorted(rows, key=lambda r: -int(r["errors"]))[:5],
    }


async def run(settings: Settings) -> dict[str, Any]:
    """WER, error counts and real-time factor on the synthesized set (and the
    `audio_dir` recordings when given)."""
    from runtime.voice.providers.espeak_tts import EspeakTTS
    from runtime.voice.providers.whisper_stt import WhisperSTT

    try:
        tts = EspeakTTS()
        stt = WhisperSTT(interim_every_ms=0)
        t0 = time.perf_counter()
        await stt.load()
        load_s = time.perf_counter() - t0
    except Exception as exc:  # a provider that cannot start on this machine
        raise Skipped(f"embedded STT/TTS unavailable: {exc}") from exc
    texts = UTTERANCES[:QUICK_COUNT] if settings.quick else UTTERANCES
    synth = []
    for text in texts:
        pcm = resample(await tts.render(text), tts.sample_rate, RATE)
        synth.append((text, pcm, text))
    out: dict[str, Any] = {
        "model": "faster-whisper tiny.en int8 (embedded)",
        "voice": "eSpeak NG, resampled to 16 kHz",
        "model_load_s": round(load_s, 3),
        "normalisation": "lower case, punctuation removed, numbers as written",
        "baseline": "real time (factor 1.0); WER of synthetic speech is a lower bound",
        "synthesized": await _score(stt, synth),
    }
    if settings.audio_dir is not None:
        items = []
        for name, wav, reference in recordings(settings.audio_dir):
            pcm, rate = read_wav(wav)
            items.append((name, resample(pcm, rate, RATE), reference))
        out["recordings"] = await _score(stt, items)
    return out
