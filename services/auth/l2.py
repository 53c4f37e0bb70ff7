"""Asking the L2 server whether it vouches for a token: `POST {L2_SERVER}/auth/verify`."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from artdag_common.errors import ServiceUnavailableError
from services.auth.service import L2Identity

log = logging.getLogger(__name__)


class L2Client:
    """Verifies tokens with one L2 server. The token travels only in the Authorization header and body."""

    def __init__(self, server: str, domain: str, l1_url: str | None, timeout_s: float) -> None:
        self.server = server
        self.domain = domain
        self.l1_url = l1_url
        self.http = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    async def close(self) -> None:
        await self.http.aclose()

    async def verify(self, token: str) -> L2Identity | None:
        try:
            response = await self.http.post(
                f"{self.server}/auth/verify",
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                json={"token": token, "l1_server": self.l1_url},
            )
        except httpx.HTTPError as exc:
            # The exception text names the URL, never the token.
            raise ServiceUnavailableError(f"L2 did not answer /auth/verify: {type(exc).__name__}") from None
        if response.status_code in (401, 403, 404):
            return None
        if response.status_code >= 400:
            raise ServiceUnavailableError(f"L2 answered /auth/verify with HTTP {response.status_code}")
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            raise ServiceUnavailableError("L2 answered /auth/verify with something other than JSON") from None
        if not body.get("valid", True):
            return None
        user = body.get("username") or body.get("user") or body.get("actor")
        if not isinstance(user, str) or not user or len(user) > 256:
            log.warning("L2 vouched for a token without a usable username")
            return None
        scopes = body.get("scopes") or ([body["scope"]] if isinstance(body.get("scope"), str) else [])
        expires = body.get("expires_at")
        return L2Identity(
            user=user,
            scopes=tuple(str(s) for s in scopes if isinstance(s, str)),
            expires_at=float(expires) if isinstance(expires, int | float) else None,
        )
