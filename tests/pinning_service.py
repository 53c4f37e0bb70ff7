"""A small IPFS Pinning Service (the spec's v1.0.0: https://github.com/ipfs/pinning-services-api-spec)
for the tests, written from the spec alone and sharing no code with the client it tests.

Pins are kept in memory; the pinning itself is real: each request is moved queued → pinning, then
the service asks a real IPFS node (`ipfs_api`) to `pin/add` the CID. The tests' node is offline,
so a CID pins only if the node holds its blocks already; otherwise the node gives up after
`pin_timeout_s` and the request ends `failed`, with the node's reason in `info`.

The service never unpins on the node: in the tests that node is also the client's own, and a
recursive pin in IPFS is one per CID, not one per owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import aiohttp
import uvicorn
from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from artdag_common.cid import validate_cid
from artdag_common.nats_server import free_port

Status = Literal["queued", "pinning", "pinned", "failed"]
STATUSES: tuple[Status, ...] = ("queued", "pinning", "pinned", "failed")


class PinIn(BaseModel):
    """The spec's `Pin`, as a client sends it."""

    cid: str
    name: str | None = Field(default=None, max_length=255)
    origins: list[str] = Field(default_factory=list, max_length=20)
    meta: dict[str, str] | None = None

    @field_validator("cid")
    @classmethod
    def _cid(cls, value: str) -> str:
        return validate_cid(value)


@dataclass
class PinRequest:
    """One pin request and where it stands."""

    requestid: str
    status: Status
    created: datetime
    pin: PinIn
    delegates: list[str]
    info: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The spec's `PinStatus`."""
        reply: dict[str, Any] = {
            "requestid": self.requestid,
            "status": self.status,
            "created": self.created.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "pin": self.pin.model_dump(exclude_none=True),
            "delegates": self.delegates,
        }
        if self.info:
            reply["info"] = dict(self.info)
        return reply


def failure(status_code: int, reason: str, details: str) -> JSONResponse:
    """The spec's error body, `{error: {reason, details}}`."""
    return JSONResponse({"error": {"reason": reason, "details": details}}, status_code=status_code)


def _http_of(multiaddr: str) -> str:
    """`http://host:port` for an RPC API multiaddr like /ip4/127.0.0.1/tcp/5001."""
    _, _, host, _, port, *_ = multiaddr.split("/")
    return f"http://{host}:{port}"


@dataclass
class PinningService:
    """State of the test pinning service; `pins()` lists what it holds."""

    ipfs_api: str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    pin_timeout_s: float = 3.0
    url: str = ""
    # When set, every authorised request is answered 200 with these bytes: a service gone wrong.
    broken_reply: bytes | None = None
    _requests: dict[str, PinRequest] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _delegates: list[str] = field(default_factory=list)
    _last_created: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, UTC))

    def pins(self, statuses: tuple[Status, ...] = STATUSES) -> list[dict[str, Any]]:
        """Every request in `statuses` (any, by default) as a `PinStatus` object, newest first."""
        with self._lock:
            held = sorted(self._requests.values(), key=lambda r: r.created, reverse=True)
            return [r.as_json() for r in held if r.status in statuses]

    # -- the pin lifecycle ------------------------------------------------------------------------

    def _created_now(self) -> datetime:
        # Pagination by `created` needs every value unique.
        with self._lock:
            now = max(datetime.now(UTC), self._last_created + timedelta(microseconds=1))
            self._last_created = now
            return now

    def _new_request(self, pin: PinIn) -> PinRequest:
        request = PinRequest(uuid.uuid4().hex, "queued", self._created_now(), pin, list(self._delegates))
        with self._lock:
            self._requests[request.requestid] = request
        task = asyncio.create_task(self._pin(request.requestid, pin.cid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return request

    def _move(self, requestid: str, status: Status, info: dict[str, str] | None = None) -> None:
        with self._lock:
            request = self._requests.get(requestid)
            if request is not None:  # removed meanwhile: nothing to report to
                request.status = status
                request.info = info or {}

    async def _pin(self, requestid: str, cid: str) -> None:
        await asyncio.sleep(0.05)  # a moment `queued`, as at a real service
        self._move(requestid, "pinning", {"status_details": "asking the IPFS node"})
        try:
            error = await self._node_pin_add(cid)
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"the IPFS node did not answer: {type(exc).__name__}"
        if error is None:
            self._move(requestid, "pinned")
        else:
            self._move(requestid, "failed", {"status_details": error})

    async def _node_pin_add(self, cid: str) -> str | None:
        """None once the node has pinned `cid`, else the node's reason it could not."""
        params = {"arg": cid, "timeout": f"{self.pin_timeout_s:g}s"}
        async with (
            aiohttp.ClientSession(trust_env=False) as session,
            session.post(
                f"{_http_of(self.ipfs_api)}/api/v0/pin/add",
                params=params,
                timeout=aiohttp.ClientTimeout(total=self.pin_timeout_s + 10),
            ) as response,
        ):
            text = await response.text()
        if response.status == 200:
            return None
        try:
            return str(json.loads(text)["Message"])
        except (ValueError, KeyError, TypeError):
            return f"HTTP {response.status} from the IPFS node"

    async def _node_delegates(self) -> list[str]:
        """Where the node can be dialled; an offline node has no address, so its bare `/p2p/` id."""
        async with (
            aiohttp.ClientSession(trust_env=False) as session,
            session.post(f"{_http_of(self.ipfs_api)}/api/v0/id", timeout=aiohttp.ClientTimeout(total=10)) as response,
        ):
            identity = await response.json(content_type=None)
        return list(identity.get("Addresses") or [f"/p2p/{identity['ID']}"])[:20]

    # -- the HTTP API -----------------------------------------------------------------------------

    def _found(self, requestid: str) -> PinRequest | None:
        with self._lock:
            return self._requests.get(requestid)

    def _listed(
        self,
        cids: list[str] | None,
        name: str | None,
        match: str,
        statuses: tuple[str, ...],
        before: datetime | None,
        after: datetime | None,
        meta: dict[str, str] | None,
    ) -> list[PinRequest]:
        def name_matches(pinned: str | None) -> bool:
            if name is None:
                return True
            if pinned is None:
                return False
            if match.startswith("i"):
                pinned, wanted = pinned.lower(), name.lower()
            else:
                wanted = name
            return wanted in pinned if match.endswith("partial") else wanted == pinned

        with self._lock:
            requests = list(self._requests.values())
        return sorted(
            (
                r
                for r in requests
                if r.status in statuses
                and (not cids or r.pin.cid in cids)
                and name_matches(r.pin.name)
                and (before is None or r.created < before)
                and (after is None or r.created > after)
                and all((r.pin.meta or {}).get(key) == value for key, value in (meta or {}).items())
            ),
            key=lambda r: r.created,
            reverse=True,
        )

    def app(self) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            self._delegates = await self._node_delegates()
            yield
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

        @app.middleware("http")
        async def bearer_token(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(given.encode(), self.token.encode()):
                return failure(401, "UNAUTHORIZED", "Access token is missing or invalid")
            if self.broken_reply is not None:
                return Response(self.broken_reply, media_type="application/json")
            return await call_next(request)

        @app.exception_handler(RequestValidationError)
        async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            return failure(400, "BAD_REQUEST", f"{where}: {first['msg']}")

        @app.get("/pins")
        async def list_pins(
            cid: str | None = None,
            name: str | None = Query(default=None, max_length=255),
            match: Literal["exact", "iexact", "partial", "ipartial"] = "exact",
            status: str | None = None,
            before: datetime | None = None,
            after: datetime | None = None,
            limit: int = Query(default=10, ge=1, le=1000),
            meta: str | None = None,
        ) -> JSONResponse:
            cids = cid.split(",") if cid else None
            if cids is not None and len(cids) > 10:
                return failure(400, "BAD_REQUEST", "at most 10 CIDs")
            statuses = tuple(status.split(",")) if status else ("pinned",)
            if not set(statuses) <= set(STATUSES):
                return failure(400, "BAD_REQUEST", f"status is a list of {', '.join(STATUSES)}")
            try:
                wanted_meta = json.loads(meta) if meta else None
                if wanted_meta is not None and not isinstance(wanted_meta, dict):
                    raise ValueError("not an object")
            except ValueError:
                return failure(400, "BAD_REQUEST", "meta is a JSON object of strings")
            found = self._listed(cids, name, match, statuses, before, after, wanted_meta)
            return JSONResponse({"count": len(found), "results": [r.as_json() for r in found[:limit]]})

        @app.post("/pins")
        async def add_pin(pin: PinIn) -> JSONResponse:
            return JSONResponse(self._new_request(pin).as_json(), status_code=202)

        @app.get("/pins/{requestid}")
        async def get_pin(requestid: str) -> JSONResponse:
            request = self._found(requestid)
            if request is None:
                return failure(404, "NOT_FOUND", "The specified resource was not found")
            return JSONResponse(request.as_json())

        @app.post("/pins/{requestid}")
        async def replace_pin(requestid: str, pin: PinIn) -> JSONResponse:
            if self._found(requestid) is None:
                return failure(404, "NOT_FOUND", "The specified resource was not found")
            replacement = self._new_request(pin)
            with self._lock:
                self._requests.pop(requestid, None)
            return JSONResponse(replacement.as_json(), status_code=202)

        @app.delete("/pins/{requestid}")
        async def remove_pin(requestid: str) -> Response:
            with self._lock:
                removed = self._requests.pop(requestid, None)
            if removed is None:
                return failure(404, "NOT_FOUND", "The specified resource was not found")
            return Response(status_code=202)

        return app


@contextlib.contextmanager
def running_pinning_service(
    ipfs_api: str, *, token: str | None = None, pin_timeout_s: float = 3.0
) -> Iterator[PinningService]:
    """The test pinning service on a free loopback port, served by uvicorn in a thread; its `url` and
    `token` are what a client needs."""
    port = free_port()
    service = PinningService(ipfs_api, pin_timeout_s=pin_timeout_s, url=f"http://127.0.0.1:{port}")
    if token is not None:
        service.token = token
    server = uvicorn.Server(uvicorn.Config(service.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test pinning service did not start")
        time.sleep(0.02)
    try:
        yield service
    finally:
        server.should_exit = True
        thread.join(10)
