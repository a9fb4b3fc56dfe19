"""Service settings, read from the environment (prefix SWITCHBOARD_).

| variable | default | meaning |
|---|---|---|
| SWITCHBOARD_JWT_SECRET | random per process | HS256 key, >= 32 chars (set it for 2+ workers) |
| SWITCHBOARD_TOKEN_TTL_S | 3600 | lifetime of an operator token |
| SWITCHBOARD_CALL_TOKEN_TTL_S | 900 | lifetime of a call token |
| SWITCHBOARD_ADMIN_USER / SWITCHBOARD_ADMIN_PASSWORD | unset | the bootstrap admin operator |
| SWITCHBOARD_USERS_FILE | unset | JSON file {"username": "<argon2 hash>"} of more operators |
| SWITCHBOARD_GRAPHS_DIR | graphs | directory of agent graph files |
| SWITCHBOARD_CHECKPOINT_URL | SQLite file | call memory: memory://, sqlite:///..., redis://... |
| SWITCHBOARD_DATABASE_URL, else DATABASE_URL | SQLite file | call records |
| SWITCHBOARD_DATABASE_SCHEMA | unset | PostgreSQL schema holding the tables |
| SWITCHBOARD_MIGRATE | true | run database migrations at start-up |
| SWITCHBOARD_REDIS_URL | checkpoint URL if redis:// | live-feed pub/sub (unset: in-process) |
| SWITCHBOARD_LIVE_CHANNEL | switchboard:live | pub/sub channel of live events |
| SWITCHBOARD_PUBLIC_URL | the request's base URL | base of the WebSocket URLs handed to clients |
| SWITCHBOARD_HOST / SWITCHBOARD_PORT | 127.0.0.1 / 8000 | where `switchboard serve` listens |
| SWITCHBOARD_MAX_BODY_BYTES | 65536 | largest accepted request body |
| SWITCHBOARD_LOGIN_RATE_LIMIT | 10/minute | logins per client address and per user name |
| SWITCHBOARD_CALL_START_RATE_LIMIT | 60/minute | call starts per client address and token |
| SWITCHBOARD_RATE_LIMIT_URL | unset (per process) | redis:// URL: limits shared by workers |
| SWITCHBOARD_CORS_ORIGINS | unset (no CORS) | JSON list of browser origins allowed |
| SWITCHBOARD_RECORD_CALLS | true | record WebSocket voice calls (WAV: caller left, agent right) |
| SWITCHBOARD_RECORDINGS_DIR | <data dir>/recordings | where recordings are kept and served from |
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("switchboard.service")

MIN_SECRET_CHARS = 32


def _random_secret() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(48))


class ServiceSettings(BaseSettings):
    """Everything the service reads from its environment (see module doc)."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore")

    jwt_secret: SecretStr = Field(default_factory=_random_secret)
    token_ttl_s: int = Field(default=3600, gt=0, le=7 * 24 * 3600)
    call_token_ttl_s: int = Field(default=900, gt=0, le=24 * 3600)
    admin_user: str | None = Field(default=None, min_length=1, max_length=64)
    admin_password: SecretStr | None = None
    users_file: Path | None = None
    graphs_dir: Path = Path("graphs")
    checkpoint_url: str | None = None
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SWITCHBOARD_DATABASE_URL", "DATABASE_URL"),
    )
    database_schema: str | None = None
    migrate: bool = True
    redis_url: str | None = None
    live_channel: str = Field(default="switchboard:live", min_length=1, max_length=200)
    public_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=65536, ge=1024)
    login_rate_limit: str = "10/minute"
    call_start_rate_limit: str = "60/minute"
    rate_limit_url: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    record_calls: bool = True
    recordings_dir: Path | None = None

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(f"SWITCHBOARD_JWT_SECRET must be at least {MIN_SECRET_CHARS} chars")
        return value

    @field_validator("login_rate_limit", "call_start_rate_limit")
    @classmethod
    def _is_rate_limit(cls, value: str) -> str:
        from runtime.service.ratelimit import parse_limit

        parse_limit(value)
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard_origin(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError("list the allowed origins; '*' would let any site use tokens")
        return value

    def recordings_path(self) -> Path:
        """The absolute directory of call recordings: SWITCHBOARD_RECORDINGS_DIR,
        else `recordings` in the data directory (not created here)."""
        from runtime.db.engine import default_data_dir

        chosen = self.recordings_dir or default_data_dir() / "recordings"
        return chosen.expanduser().resolve()

    def live_redis_url(self) -> str | None:
        """The Redis URL of the live feed: SWITCHBOARD_REDIS_URL, else the
        checkpoint URL when that is Redis, else None (in-process feed)."""
        if self.redis_url:
            return self.redis_url
        url = self.checkpoint_url or ""
        if url.startswith(("redis://", "rediss://")):
            return url
        return None
