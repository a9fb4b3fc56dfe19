"""LiveKit participant tokens and server settings.

Tokens are JWTs minted with `livekit-api` (`AccessToken` + `VideoGrants`:
room_join, room, identity, TTL) and checked with its `TokenVerifier`; the
server URL and the API key pair come from the environment.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import jwt
from livekit import api
from livekit.api.access_token import Claims

DEFAULT_TTL = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class LiveKitSettings:
    """Where the LiveKit server is and the API key pair that signs tokens."""

    url: str
    api_key: str
    api_secret: str = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LiveKitSettings:
        """From $LIVEKIT_URL, $LIVEKIT_API_KEY and $LIVEKIT_API_SECRET; a
        `ValueError` names every one that is missing."""
        source = os.environ if env is None else env
        names = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
        missing = [n for n in names if not source.get(n)]
        if missing:
            raise ValueError(f"LiveKit is not configured: set {', '.join(missing)}")
        return cls(*(source[n] for n in names))


def mint_token(
    api_key: str,
    api_secret: str,
    *,
    room: str,
    identity: str,
    name: str = "",
    ttl: datetime.timedelta = DEFAULT_TTL,
    can_publish: bool = True,
    can_subscribe: bool = True,
    metadata: str = "",
    hidden: bool = False,
) -> str:
    """A participant JWT that lets `identity` join `room` (and publish /
    subscribe as asked) until `ttl` from now. Empty names and a non-positive
    TTL raise `ValueError`."""
    if not api_key or not api_secret:
        raise ValueError("a LiveKit token needs an API key and secret")
    if not room.strip():
        raise ValueError("a LiveKit token needs a room name")
    if not identity.strip():
        raise ValueError("a LiveKit token needs a participant identity")
    if ttl <= datetime.timedelta(0):
        raise ValueError(f"a LiveKit token's TTL must be positive, got {ttl}")
    grants = api.VideoGrants(
        room_join=True,
        room=room,
        can_publish=can_publish,
        can_subscribe=can_subscribe,
        can_publish_data=True,
        hidden=hidden or None,
    )
    token = (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_ttl(ttl)
        .with_grants(grants)
    )
    if name:
        token = token.with_name(name)
    if metadata:
        token = token.with_metadata(metadata)
    return token.to_jwt()


def verify_token(token: str, api_key: str, api_secret: str) -> Claims:
    """The claims of a token signed by this key pair and not expired; a
    `ValueError` says why any other token is refused."""
    try:
        return api.TokenVerifier(api_key, api_secret).verify(token)
    except jwt.PyJWTError as exc:
        raise ValueError(f"invalid LiveKit token: {exc}") from None
