"""Test-call panel: a conversation with the graph being edited, by text or by
voice (the browser microphone, the graph's offline STT and TTS, the agent's
audio played back), showing per turn the agent's lines, the nodes entered, the
slots filled and the matched intent with its confidence, while the path lights
up on the canvas; and the graph's conversation tests with pass/fail per case.
Every test call is recorded in the call database like a real call
(`testcall_record`), so the dashboard shows it live and in the history."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from builder.views.session import Editor, rebuild_canvas
from builder.views.testcall_run import TestCall, Turn, hang_up, loop, start, step, summarise
from builder.views.testcall_voice import (
    ProviderError,
    VoiceInputError,
    caller_pcm,
    stt_for,
    transcribe,
)
from schemas.diagnostics import GraphError

KEY = "switchboard_testcall"
VOICE_KEY = "tc.voice"

__all__ = ["KEY", "TestCall", "Turn", "render", "summarise", "voice_turn"]


def _show_path(ed: Editor, call: TestCall) -> None:
    ed.call_path = call.path
    rebuild_canvas(ed, keep_positions=True)


def voice_turn(call: TestCall, recording: bytes) -> str | None:
    """Take one caller turn from a microphone recording (WAV bytes): transcribe
    it with the graph's STT, run the step, speak and record the reply. Returns
    the words heard, or None (with `call.notice` saying why) when nothing
    usable was heard."""
    try:
        pcm = caller_pcm(recording)
        heard = loop().run(transcribe(stt_for(call.voice), pcm))
    except (VoiceInputError, ProviderError) as exc:
        call.notice = f"That recording could not be used: {exc}"
        return None
    if not heard.text:
        call.notice = "Nothing was recognised in that recording; try again, a little louder."
        return None
    step(call, heard.text, voice=True, heard=heard)
    return heard.text


def render(ed: Editor) -> None:
    """Draw the panel for the editor's graph."""
    if ed.loaded is None or ed.loaded.spec is None or ed.errors:
        st.warning("Fix the validation errors first: only a valid graph can take a test call.")
        return
    call: TestCall | None = st.session_state.get(KEY)
    voice = st.toggle(
        "Voice: speak through the microphone, hear the agent",
        key=VOICE_KEY,
        help="Offline speech: the graph's STT (Whisper) and TTS (eSpeak NG) voice.",
    )
    cols = st.columns(2)
    if cols[0].button("Start test call", key="tc.start", type="primary"):
        if call is not None:
            hang_up(call)  # a call left open ends as abandoned
        try:
            call = start(ed.loaded.spec, ed.text, ed.graphs_dir, ed.path, voice=voice)
        except GraphError as exc:
            st.error(f"cannot compile this graph: {exc}")
            return
        except ProviderError as exc:
            st.error(f"cannot speak with this graph's voice settings: {exc}")
            return
        st.session_state[KEY] = call
        _show_path(ed, call)
    if call is not None and not call.ended and cols[1].button("Hang up", key="tc.hangup"):
        hang_up(call)
    if call is None:
        st.caption("Start a call to talk to the graph as it is in the editor (saved or not).")
    else:
        _show_call(ed, call, voice)
    _conversation_tests(ed)


def _show_call(ed: Editor, call: TestCall, voice: bool) -> None:
    if call.log.problem:
        st.warning(call.log.problem)
    elif call.log.recorded:
        st.caption(f"Recorded as call `{call.session.call_id}` (see the dashboard).")
    if call.text != ed.text:
        st.info("The graph changed since this call started; start a new call to test it.")
    for i, turn in enumerate(call.turns):
        newest = i == len(call.turns) - 1
        _show_turn(i, turn, autoplay=newest and call.fresh_audio)
    call.fresh_audio = False
    if call.notice:
        st.warning(call.notice)
        call.notice = None
    if call.ended:
        st.success("Call ended.")
        if call.log.recording is not None:
            st.caption(f"Recording: {call.log.recording}")
        return
    if voice:
        recording = st.audio_input("Speak as the caller", key=f"tc.mic.{call.mic}")
        if recording is not None:
            call.mic += 1
            with st.spinner("Listening…"):
                heard = voice_turn(call, recording.getvalue())
            if heard is not None:
                _show_path(ed, call)
            st.rerun()
    said = st.chat_input("Say something as the caller", key="tc.input")
    if said:
        step(call, said, voice=voice)
        _show_path(ed, call)
        st.rerun()


def _show_turn(i: int, turn: Turn, *, autoplay: bool = False) -> None:
    if turn.caller is not None:
        with st.chat_message("user"):
            st.write(turn.caller)
            if turn.heard_confidence is not None:
                st.caption(f"heard by voice (STT confidence {turn.heard_confidence:.2f})")
    with st.chat_message("assistant"):
        for line in turn.agent:
            st.write(line)
        if turn.audio:
            st.audio(turn.audio, format="audio/wav", autoplay=autoplay)
        facts = []
        if turn.intents:
            facts.append("intent " + ", ".join(turn.intents))
        if turn.nodes:
            facts.append("nodes " + " → ".join(turn.nodes))
        if turn.slots:
            facts.append("slots " + ", ".join(f"{k} = {v!r}" for k, v in turn.slots.items()))
        if turn.tools:
            facts.append("tools " + ", ".join(turn.tools))
        if turn.outcome:
            facts.append(f"outcome **{turn.outcome}**")
        for fact in facts:
            st.caption(fact)


def _conversation_tests(ed: Editor) -> None:
    from runtime.convtest import ConversationFileError, discover, load_conversation_file, run_file

    st.divider()
    st.subheader("Conversation tests")
    assert ed.path is not None
    mine: list[Path] = []
    for f in discover([ed.graphs_dir]):
        try:
            if load_conversation_file(f).graph_path.resolve() == ed.path.resolve():
                mine.append(f)
        except ConversationFileError:
            continue
    if not mine:
        st.caption("No conversation tests for this graph (tests/*.yaml beside the graphs).")
        return
    st.caption(f"{', '.join(f.name for f in mine)} — run against the saved file.")
    if not st.button("Run conversation tests", key="tc.tests"):
        return
    for f in mine:
        try:
            results = loop().run(run_file(f))
        except (ConversationFileError, GraphError) as exc:
            st.error(f"{f.name}: {exc}")
            continue
        for r in results:
            (st.success if r.passed else st.error)(f"{'PASS' if r.passed else 'FAIL'} {r.name}")
            for failure in r.failures:
                st.caption(failure)
