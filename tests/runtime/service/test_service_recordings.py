"""`GET /api/calls/{id}/recording`: the call's WAV to an operator or the call's
own token; never a file outside the recordings directory; 404 without one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.service import ServiceSettings, create_app
from runtime.service.recordings import servable
from runtime.voice.audio import write_wav
from tests.runtime.service.conftest import ADMIN


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    return tmp_path / "recordings"


@pytest.fixture
def service(settings: ServiceSettings, recordings: Path) -> Iterator[TestClient]:
    tuned = settings.model_copy(update={"recordings_dir": recordings})
    with TestClient(create_app(tuned)) as c:
        yield c


def _login(client: TestClient) -> dict[str, str]:
    r = client.post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _start(client: TestClient, op: dict[str, str]) -> tuple[str, dict[str, str]]:
    r = client.post("/api/calls", json={"agent": "front-desk"}, headers=op)
    assert r.status_code == 201, r.text
    return r.json()["call_id"], {"Authorization": f"Bearer {r.json()['call_token']}"}


def _add(client: TestClient, call_id: str, path: Path) -> None:
    recorder = client.app.state.recorder  # type: ignore[attr-defined]
    assert client.portal is not None
    client.portal.call(
        lambda: recorder.add_recording(call_id, str(path), duration_s=0.5, sample_rate=16000)
    )
    client.portal.call(recorder.flush, 5.0)


def test_the_recording_is_served_to_its_call_and_operators(
    service: TestClient, recordings: Path
) -> None:
    op = _login(service)
    call_id, own = _start(service, op)
    other_id, other = _start(service, op)
    assert service.get(f"/api/calls/{call_id}/recording", headers=op).status_code == 404
    recordings.mkdir()
    wav = recordings / f"{call_id}.wav"
    write_wav(wav, b"\x01\x00" * 16000, 16000, channels=2)
    _add(service, call_id, wav)
    for headers in (op, own):
        r = service.get(f"/api/calls/{call_id}/recording", headers=headers)
        assert r.status_code == 200
        assert r.headers["content-type"] == "audio/wav" and r.content == wav.read_bytes()
    assert service.get(f"/api/calls/{call_id}/recording", headers=other).status_code == 401
    assert service.get(f"/api/calls/{call_id}/recording").status_code == 401
    assert service.get(f"/api/calls/{other_id}/recording", headers=other).status_code == 404
    assert service.get("/api/calls/nope/recording", headers=op).status_code == 404


def test_paths_outside_the_recordings_dir_are_never_served(
    service: TestClient, recordings: Path, tmp_path: Path
) -> None:
    op = _login(service)
    call_id, _ = _start(service, op)
    recordings.mkdir()
    secret = tmp_path / "secret.wav"
    write_wav(secret, b"\x00\x00" * 160, 16000)
    (recordings / "link.wav").symlink_to(secret)
    for path in (secret, recordings / ".." / "secret.wav", recordings / "link.wav"):
        _add(service, call_id, path)
    r = service.get(f"/api/calls/{call_id}/recording", headers=op)
    assert r.status_code == 404 and "no recording on this server" in r.json()["detail"]
    assert servable(str(recordings / "missing.wav"), recordings) is None
    assert servable("/etc/passwd", recordings) is None
    assert servable(str(recordings), recordings) is None  # a directory is not a file
