"""Which voice speaks each agent's lines in a multi-agent call.

A call handed to a specialist graph speaks the specialist's lines with the
specialist's `voice:` settings, and the handing agent's lines (its handoff
line included) with its own, so the voice changes at the handoff and changes
back when the call returns. Every agent line carries the agent that said it
(`AgentTextFrame.agent`); `Voices.for_agent()` gives the TTS for that agent:

- the root agent, or an agent whose `tts` and `voice` equal the root's: the
  call's own provider (the one the pipeline was given);
- an agent using the same TTS vendor as the root (after `$SWITCHBOARD_TTS`):
  that provider's `with_voice(settings)` (eSpeak voice names, ElevenLabs voice
  ids), sharing its engine or connection pool; a provider without
  `with_voice` keeps its one voice;
- an agent choosing another vendor: a provider built from its settings by the
  registry (`make_tts`).

A voice that cannot be used (unknown eSpeak voice, missing key) is logged
and the call's own provider speaks instead: a voice never fails a call.
Providers are resolved once per agent per call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from runtime.voice.providers.base import ProviderError, TTSProvider
from runtime.voice.providers.registry import ENV_TTS, make_tts
from schemas.spec import GraphSpec, VoiceSettings

log = logging.getLogger("switchboard.voice")


@runtime_checkable
class VoiceSwitching(Protocol):
    """A TTS provider that can speak with another voice of the same vendor."""

    def with_voice(self, settings: VoiceSettings) -> TTSProvider: ...


def _vendor(settings: VoiceSettings) -> str:
    name = os.environ.get(ENV_TTS, "").strip() or settings.tts
    return name.strip().lower().replace("-", "_")


class Voices:
    """The TTS provider of each agent of one call."""

    def __init__(
        self,
        base: TTSProvider,
        agents: Mapping[str, GraphSpec] | None = None,
        root: str = "",
        factory: Callable[[VoiceSettings], TTSProvider] = make_tts,
    ) -> None:
        self.base = base
        self.root = root
        self._settings = {name: spec.voice for name, spec in (agents or {}).items()}
        self._factory = factory
        self._chosen: dict[str, TTSProvider] = {root: base, "": base}

    @classmethod
    def for_call(cls, base: TTSProvider, compiled: object) -> Voices:
        """The voices of a compiled call (`CompiledCall`: its `agents` and `root`)."""
        agents = getattr(compiled, "agents", None) or {}
        root = getattr(getattr(compiled, "root", None), "id", "")
        return cls(base, agents, root)

    def for_agent(self, agent: str) -> TTSProvider:
        """The provider that speaks `agent`'s lines (the call's own for an
        unknown agent or one that cannot have its voice)."""
        found = self._chosen.get(agent)
        if found is None:
            found = self._chosen[agent] = self._resolve(agent)
        return found

    def _resolve(self, agent: str) -> TTSProvider:
        settings = self._settings.get(agent)
        root = self._settings.get(self.root, VoiceSettings())
        if settings is None or (settings.tts, settings.voice) == (root.tts, root.voice):
            return self.base
        try:
            if _vendor(settings) != _vendor(root):
                return self._factory(settings)
            if isinstance(self.base, VoiceSwitching):
                return self.base.with_voice(settings)
        except ProviderError as exc:
            log.warning("agent %s: cannot use its voice (%s); using the call's voice", agent, exc)
            return self.base
        log.info("TTS %s has one voice: agent %s speaks with it", self.base.name, agent)
        return self.base
