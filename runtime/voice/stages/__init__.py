"""The stages of the voice pipeline, one module each, in the order frames flow:
VAD -> STT -> turn-taking -> agent -> TTS -> output (see `runtime.voice.pipeline`)."""
