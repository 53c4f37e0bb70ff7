from __future__ import annotations

import logging
import time

from nats.js.kv import KeyValue

from artdag_common import rpc, streams
from artdag_common.contracts import Auth
from artdag_common.db import dispose_engine, make_engine, migrate, session_factory
from artdag_common.errors import ForbiddenError
from artdag_common.runtime import ServiceRuntime
from artdag_common.schemas import (
    IssuedToken,
    IssueTokenRequest,
    Principal,
    RevokeReply,
    RevokeTokenRequest,
    RevokeUserRequest,
    VerifyTokenRequest,
)
from artdag_common.tokens import token_key, user_key
from services.auth.l2 import L2Client
from services.auth.service import TokenBook
from services.auth.settings import AuthSettings

log = logging.getLogger(__name__)


async def start(runtime: ServiceRuntime, settings: AuthSettings) -> None:
    url = settings.effective_database_url
    await migrate(url)
    engine = make_engine(url)
    runtime.stack.push_async_callback(dispose_engine, engine)
    book = TokenBook(session_factory(engine), default_ttl_s=settings.auth.token_ttl_days * 86_400)
    revoked: KeyValue = await runtime.js.key_value(streams.KV_REVOKED.bucket)
    l2: L2Client | None = None
    if settings.auth.l2_mode and settings.auth.l2_server and settings.auth.l2_domain:
        l2 = L2Client(
            settings.auth.l2_server, settings.auth.l2_domain, settings.auth.public_url, settings.auth.l2_timeout_s
        )
        runtime.stack.push_async_callback(l2.close)

    async def verify(request: VerifyTokenRequest) -> Principal:
        return await book.verify(request.token, l2.verify if l2 is not None else None)

    async def issue(request: IssueTokenRequest) -> IssuedToken:
        if l2 is not None:
            raise ForbiddenError("this L1 is in L2 mode: its L2 issues the tokens")
        issued = await book.issue(request)
        log.info("issued a token for %s (%s…)", request.user, issued.principal.token_hash[:12])
        return issued

    async def revoke(request: RevokeTokenRequest) -> RevokeReply:
        await book.revoke(request.token_hash)
        # On the list even if unknown here: an L2 token revoked before this L1 ever saw it stays refused.
        await revoked.put(token_key(request.token_hash), str(time.time()).encode())
        log.info("revoked token %s…", request.token_hash[:12])
        return RevokeReply(revoked=1)

    async def revoke_user(request: RevokeUserRequest) -> RevokeReply:
        hashes = await book.revoke_user(request.user)
        for hashed in hashes:
            await revoked.put(token_key(hashed), str(time.time()).encode())
        # Tokens of this user first seen before now are refused too, on every gateway at once.
        await revoked.put(user_key(request.user), str(time.time()).encode())
        log.info("revoked every token of %s (%d known)", request.user, len(hashes))
        return RevokeReply(revoked=len(hashes))

    await rpc.serve(runtime.nc, Auth.verify, verify, concurrency=8)
    await rpc.serve(runtime.nc, Auth.issue, issue)
    await rpc.serve(runtime.nc, Auth.revoke, revoke)
    await rpc.serve(runtime.nc, Auth.revoke_user, revoke_user)
    runtime.health_details = lambda: {"mode": "l2" if l2 is not None else "local", "l2_server": settings.auth.l2_server}
