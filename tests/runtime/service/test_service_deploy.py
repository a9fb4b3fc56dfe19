"""docker-compose.yml is valid YAML naming the services, ports, health checks
and the environment the service code actually reads (no Docker here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from runtime.checkpoint.factory import TTL_ENV, URL_ENV
from runtime.service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[3]


def _compose() -> dict[str, Any]:
    data = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _setting_envs() -> set[str]:
    prefix = ServiceSettings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in ServiceSettings.model_fields} | {
        URL_ENV,
        TTL_ENV,
    }


def test_compose_has_every_service_with_health_and_restart() -> None:
    services = _compose()["services"]
    assert {"api", "builder", "redis", "postgres", "livekit", "nginx"} <= set(services)
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        assert "healthcheck" in service, name
    assert services["nginx"]["profiles"] == ["proxy"]
    assert "8000:8000" in services["api"]["ports"]
    assert "5432:5432" in services["postgres"]["ports"]
    assert "6379:6379" in services["redis"]["ports"]
    assert "7880:7880" in services["livekit"]["ports"]
    assert (ROOT / "deploy" / "nginx.conf").is_file()
    assert set(_compose()["volumes"]) >= {"postgres-data", "redis-data"}


def test_api_environment_is_what_the_service_reads() -> None:
    env = _compose()["services"]["api"]["environment"]
    ours = {k for k in env if k.startswith("SWITCHBOARD_")}
    assert ours <= _setting_envs(), ours - _setting_envs()
    assert env["SWITCHBOARD_CHECKPOINT_URL"].startswith("redis://redis:6379/")
    assert env["SWITCHBOARD_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in env["SWITCHBOARD_DATABASE_URL"]
    assert env["SWITCHBOARD_JWT_SECRET"].startswith("${SWITCHBOARD_JWT_SECRET:?")
    depends = _compose()["services"]["api"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"


def test_dockerfile_serves_and_checks_health() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["switchboard", "serve"]' in text
    assert "/healthz" in text and "EXPOSE 8000" in text


def test_recordings_are_on_a_volume_the_dashboard_shares() -> None:
    services = _compose()["services"]
    recordings = services["api"]["environment"]["SWITCHBOARD_RECORDINGS_DIR"]
    for name in ("api", "builder"):
        mounts = [str(v).split(":")[1] for v in services[name]["volumes"]]
        assert any(recordings.startswith(m.rstrip("/") + "/") for m in mounts), (name, mounts)
    assert services["builder"]["environment"]["SWITCHBOARD_RECORDINGS_DIR"] == recordings
