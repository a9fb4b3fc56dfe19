"""Choosing speech providers by name: the graph's `voice:` settings, then the environment.

`SWITCHBOARD_STT` / `SWITCHBOARD_TTS` override the graph's `voice.stt` /
`voice.tts`; `SWITCHBOARD_VAD` picks the VAD (`silero`, or `standin`). Names
map to factories `(VoiceSettings) -> provider`. `whisper`
and `espeak` (offline) are built in; any other name `x` is looked up by
importing `runtime.voice.providers.x_stt` (or `x_tts`) on first use, and that
module registers itself at import time::

    from runtime.voice.providers.registry import register_stt
    register_stt("deepgram", lambda settings: DeepgramSTT(language=settings.language))

So a new vendor is one module and no edit here. Provider modules are imported
only when chosen, so an unused vendor's SDK is never loaded.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from runtime.voice.providers.base import VAD, ProviderError, STTProvider, TTSProvider
from schemas.spec import VoiceSettings

ENV_STT = "SWITCHBOARD_STT"
ENV_TTS = "SWITCHBOARD_TTS"
ENV_VAD = "SWITCHBOARD_VAD"
PACKAGE = "runtime.voice.providers"
_NAME = re.compile(r"[a-z][a-z0-9_]*")

STTFactory = Callable[[VoiceSettings], STTProvider]
TTSFactory = Callable[[VoiceSettings], TTSProvider]
_Factory = TypeVar("_Factory", STTFactory, TTSFactory)


class ProviderConfigError(ProviderError):
    """A provider name or setting that cannot work (unknown name, missing SDK)."""


def _whisper(settings: VoiceSettings) -> STTProvider:
    from runtime.voice.providers.whisper_stt import WhisperSTT

    return WhisperSTT(language=settings.language)


def _espeak(settings: VoiceSettings) -> TTSProvider:
    from runtime.voice.providers.espeak_tts import EspeakTTS

    # A voice the graph picked for another TTS (an ElevenLabs voice id, say)
    # means nothing to eSpeak: an offline override speaks with the default.
    own_voice = _normalise(settings.tts) == "espeak"
    return EspeakTTS(voice=settings.voice if own_voice else None)


def _standin_stt(settings: VoiceSettings) -> STTProvider:
    from runtime.voice.providers.standin import StandinSTT

    return StandinSTT()


def _standin_tts(settings: VoiceSettings) -> TTSProvider:
    from runtime.voice.providers.standin import StandinTTS

    return StandinTTS()


#: `standin`: latency stand-ins for load tests (`runtime.voice.providers.standin`).
_STT: dict[str, STTFactory] = {"whisper": _whisper, "standin": _standin_stt}
_TTS: dict[str, TTSFactory] = {"espeak": _espeak, "standin": _standin_tts}


def _normalise(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    if not _NAME.fullmatch(key):
        raise ProviderConfigError(f"{name!r} is not a provider name (letters, digits, _)")
    return key


def register_stt(name: str, factory: STTFactory) -> None:
    """Make `name` selectable as `voice.stt` / SWITCHBOARD_STT (replaces an
    earlier registration of the same name)."""
    _STT[_normalise(name)] = factory


def register_tts(name: str, factory: TTSFactory) -> None:
    """Make `name` selectable as `voice.tts` / SWITCHBOARD_TTS (replaces an
    earlier registration of the same name)."""
    _TTS[_normalise(name)] = factory


def _discoverable(kind: str) -> set[str]:
    suffix = f"_{kind}"
    folder = Path(__file__).resolve().parent
    return {
        info.name.removesuffix(suffix)
        for info in pkgutil.iter_modules([str(folder)])
        if info.name.endswith(suffix)
    }


def stt_names() -> list[str]:
    """Every STT name that can be chosen here (registered or discoverable)."""
    return sorted(set(_STT) | _discoverable("stt"))


def tts_names() -> list[str]:
    """Every TTS name that can be chosen here (registered or discoverable)."""
    return sorted(set(_TTS) | _discoverable("tts"))


def _resolve(kind: str, name: str, table: dict[str, _Factory], env: str) -> _Factory:
    key = _normalise(name)
    if key not in table:
        module = f"{PACKAGE}.{key}_{kind}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise ProviderConfigError(
                    f"{kind.upper()} provider {key!r} is unavailable: {exc} "
                    f"(install its SDK or choose another with voice.{kind} or {env})"
                ) from exc
        except ImportError as exc:
            raise ProviderConfigError(
                f"{kind.upper()} provider {key!r} failed to load: {exc}"
            ) from exc
    factory = table.get(key)
    if factory is None:
        known = ", ".join(stt_names() if kind == "stt" else tts_names())
        raise ProviderConfigError(
            f"unknown {kind.upper()} provider {key!r} (from voice.{kind} or {env}); known: {known}"
        )
    return factory


def make_stt(settings: VoiceSettings | None = None) -> STTProvider:
    """The STT provider named by $SWITCHBOARD_STT, else `settings.stt`
    (default whisper). The factory gets the graph's settings unchanged.
    Unknown or unusable names raise `ProviderConfigError`."""
    settings = settings or VoiceSettings()
    name = os.environ.get(ENV_STT, "").strip() or settings.stt
    return _resolve("stt", name, _STT, ENV_STT)(settings)


def make_tts(settings: VoiceSettings | None = None) -> TTSProvider:
    """The TTS provider named by $SWITCHBOARD_TTS, else `settings.tts`
    (default espeak). The factory gets the graph's settings unchanged, so
    `settings.tts` tells it whether `settings.voice` was chosen for it.
    Unknown or unusable names raise `ProviderConfigError`."""
    settings = settings or VoiceSettings()
    name = os.environ.get(ENV_TTS, "").strip() or settings.tts
    return _resolve("tts", name, _TTS, ENV_TTS)(settings)


def make_vad() -> VAD:
    """A fresh VAD for one call: Silero (the model is shared by the process),
    or the energy stand-in when $SWITCHBOARD_VAD is `standin`. Other names
    raise `ProviderConfigError`."""
    name = os.environ.get(ENV_VAD, "").strip().lower() or "silero"
    if name == "standin":
        from runtime.voice.providers.standin import EnergyVAD

        return EnergyVAD()
    if name != "silero":
        raise ProviderConfigError(f"unknown VAD {name!r} (from {ENV_VAD}); known: silero, standin")
    from runtime.voice.providers.silero_vad import SileroVAD

    return SileroVAD()
