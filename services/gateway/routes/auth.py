"""Auth routes: log in with a token (`GET /auth`), log out, who am I, revoke a token or all of a user's."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any
from urllib.parse import urldefrag, urlsplit

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from artdag_common.contracts import Auth
from artdag_common.errors import ForbiddenError, InvalidInputError, UnauthorizedError
from artdag_common.httpsig import SignatureError, parse_signature, verify_request
from artdag_common.schemas import RevokeReply, RevokeTokenRequest, RevokeUserRequest
from artdag_common.tokens import token_hash
from services.gateway import errors, openapi
from services.gateway.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    CurrentUser,
    OptionalUser,
    authenticator,
    client_address,
    local_path,
    new_csrf_token,
)
from services.gateway.deps import Gateway, GatewayDep

log = logging.getLogger(__name__)
router = APIRouter()

SESSION_MAX_AGE_S = 30 * 86_400


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


@router.get(
    "/auth",
    tags=["auth"],
    summary="Log in with a token (from L2, or a local one): sets the session cookie",
    responses={**openapi.redirect(303, "Logged in: the session cookie is set; on to `next`"), **errors.responses()},
)
async def login(
    request: Request,
    auth_token: Annotated[str, Query(min_length=1, max_length=4096)],
    next_path: Annotated[str, Query(alias="next", max_length=2048)] = "/",
) -> RedirectResponse:
    principal = await authenticator(request).verify(auth_token, client_address(request))
    response = RedirectResponse(local_path(next_path), status_code=303)
    max_age = SESSION_MAX_AGE_S
    if principal.expires_at is not None:
        max_age = max(1, min(max_age, int(principal.expires_at - time.time())))
    secure = _secure(request)
    response.set_cookie(
        SESSION_COOKIE, auth_token, max_age=max_age, path="/", httponly=True, samesite="lax", secure=secure
    )
    response.set_cookie(
        CSRF_COOKIE, new_csrf_token(), max_age=max_age, path="/", httponly=False, samesite="lax", secure=secure
    )
    response.headers["Cache-Control"] = "no-store"
    log.info("%s logged in (token %s…)", principal.user, principal.token_hash[:12])
    return response


@router.get(
    "/logout",
    tags=["auth"],
    summary="Log out: clears the session cookie",
    responses={**openapi.redirect(303, "Logged out: on to the home page"), **errors.responses(authenticated=False)},
)
async def logout(request: Request) -> RedirectResponse:
    response = RedirectResponse("/", status_code=303)
    secure = _secure(request)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)
    response.delete_cookie(CSRF_COOKIE, path="/", httponly=False, samesite="lax", secure=secure)
    return response


class Me(BaseModel):
    user: str
    roles: list[str]
    scopes: list[str]
    source: str
    expires_at: float | None


@router.get("/auth/me", tags=["auth"], summary="Who the token or session belongs to", responses=errors.responses())
async def me(user: CurrentUser) -> Me:
    return Me(user=user.user, roles=user.roles, scopes=user.scopes, source=user.source, expires_at=user.expires_at)


class RevokeBody(BaseModel):
    token: str | None = Field(default=None, max_length=4096, description="a token to revoke (knowing it suffices)")
    token_hash: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="a token's sha256 (your own, or any for admins)"
    )


@router.post(
    "/auth/revoke",
    tags=["auth"],
    summary="Revoke a token (default: the one making this request)",
    responses=errors.responses(),
)
async def revoke(user: CurrentUser, gw: GatewayDep, body: RevokeBody | None = None) -> dict[str, Any]:
    if body is not None and body.token:
        hashed = token_hash(body.token)
    elif body is not None and body.token_hash:
        if body.token_hash != user.token_hash and not user.admin:
            raise ForbiddenError("only an admin may revoke another token by its hash", field="token_hash")
        hashed = body.token_hash
    else:
        hashed = user.token_hash
    reply: RevokeReply = await gw.call(Auth.revoke, RevokeTokenRequest(token_hash=hashed))
    gw.auth.apply_revocation(f"tok.{hashed}", b"")  # this replica at once; the others through the bucket
    return {"revoked": reply.revoked, "token_hash": hashed}


class RevokeUserBody(BaseModel):
    username: str = Field(min_length=1, max_length=256, description="the user whose tokens are all revoked")


async def _l2_key(gw: Gateway, key_id: str) -> str:
    """L2's public key (PEM) named by a signature's keyId, which must be a URL on L2_SERVER."""
    server = gw.settings.auth.l2_server
    if not server:
        raise UnauthorizedError("this L1 has no L2 server: a signed request cannot come from one")
    url, _ = urldefrag(key_id)
    if urlsplit(url)[:2] != urlsplit(server)[:2]:
        raise UnauthorizedError("the signature's keyId is not on the L2 server", field="signature")
    cached = gw.l2_keys.get(key_id)
    if cached is not None and cached[1] > time.monotonic():
        return cached[0]
    try:
        async with httpx.AsyncClient(timeout=gw.settings.auth.l2_timeout_s) as http:
            response = await http.get(url, headers={"Accept": "application/activity+json, application/json"})
        doc = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        doc = {}
    key = doc.get("publicKey", doc) if isinstance(doc, dict) else {}
    pem = key.get("publicKeyPem") if isinstance(key, dict) else None
    if not isinstance(pem, str):
        raise UnauthorizedError("could not fetch the signer's public key from L2", field="signature")
    gw.l2_keys[key_id] = (pem, time.monotonic() + 600)
    return pem


async def _signed_by_l2(request: Request, gw: Gateway, body: bytes) -> bool:
    header = request.headers.get("signature")
    if header is None:
        return False
    try:
        key_id = parse_signature(header)["keyId"]
        pem = await _l2_key(gw, key_id)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        verify_request(request.method, path, request.headers, body, pem)
    except SignatureError as exc:
        authenticator(request).limiter.fail(client_address(request))
        raise UnauthorizedError(f"the HTTP Signature does not verify: {exc}", field="signature") from None
    return True


@router.post(
    "/auth/revoke-user",
    tags=["auth"],
    summary="Revoke every token of a user (L2 only: an HTTP Signature by L2's key, or an l2-scoped token)",
    responses=errors.responses(400),
    openapi_extra=openapi.json_body(RevokeUserBody),
)
async def revoke_user(request: Request, gw: GatewayDep, user: OptionalUser) -> dict[str, Any]:
    raw = await request.body()
    signed = await _signed_by_l2(request, gw, raw)
    if not signed:
        if user is None:
            raise UnauthorizedError("only L2 may revoke a user's tokens: sign the request or send an l2 token")
        if "l2" not in user.scopes and not user.admin:
            raise ForbiddenError("only L2 (an l2-scoped token) or an admin may revoke a user's tokens")
    try:
        body = RevokeUserBody.model_validate_json(raw or b"{}")
    except ValueError:
        raise InvalidInputError('expected JSON {"username": …}', field="username") from None
    reply: RevokeReply = await gw.call(Auth.revoke_user, RevokeUserRequest(user=body.username))
    return {"username": body.username, "revoked": reply.revoked}
