"""REST API fuzzing: schemathesis generates requests from the OpenAPI document of
`create_app` and runs them in-process (ASGI) with an operator token. No
request may get a 5xx, and every response must match the documented status
codes, content types, headers and schemas.

The SSE live feed never ends by design, so it is left out; it is covered by
the service tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from runtime.service import ServiceSettings, create_app

from .hostile_counts import record_inputs

SECRET = "h" * 48
ADMIN = ("admin", "fuzz-admin-password")
GRAPHS_DIR = Path(__file__).resolve().parents[2] / "graphs"
EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

TRIED: Counter[str] = Counter()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    tmp = tmp_path_factory.mktemp("fuzz-api")
    app = create_app(
        ServiceSettings(
            jwt_secret=SECRET,
            admin_user=ADMIN[0],
            admin_password=ADMIN[1],
            graphs_dir=GRAPHS_DIR,
            checkpoint_url="memory://",
            database_url=f"sqlite:///{tmp / 'calls.db'}",
            redis_url=None,
            max_body_bytes=4096,
            # Fuzzing logs in hundreds of times from one address.
            login_rate_per_min=100_000,
            call_start_rate_per_min=100_000,
        )
    )
    with TestClient(app) as client:  # runs the lifespan: database, checkpointer, tools
        r = client.post("/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        assert r.status_code == 200, r.text
        yield app, r.json()["access_token"]
    record_inputs("rest_api", sum(TRIED.values()), refused=0, detail=dict(TRIED))


@pytest.fixture(scope="module")
def api_schema(service: tuple[Any, str]) -> Any:
    app, _token = service
    return schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/api/live")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_5xx_and_responses_match_the_schema(case: Any, service: tuple[Any, str]) -> None:
    _app, token = service
    TRIED[f"{case.method} {case.path}"] += 1
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
