"""An in-process service on SQLite and the in-memory checkpointer, with an admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runtime.service import ServiceSettings, create_app

SECRET = "s" * 48
ADMIN = ("admin", "correct horse battery staple")
GRAPHS_DIR = Path(__file__).resolve().parents[3] / "graphs"


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        jwt_secret=SECRET,
        admin_user=ADMIN[0],
        admin_password=ADMIN[1],
        graphs_dir=GRAPHS_DIR,
        checkpoint_url="memory://",
        database_url=f"sqlite:///{tmp_path / 'calls.db'}",
        redis_url=None,
        max_body_bytes=4096,
    )


@pytest.fixture
def client(settings: ServiceSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def operator_headers(client: TestClient) -> dict[str, str]:
    r = client.post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
