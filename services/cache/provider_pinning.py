"""A `pinning` storage provider: a service that speaks the IPFS Pinning Service API keeps a CID pinned.

The service holds nothing we send it: it fetches the bytes over IPFS from a node of ours (the
provider's `ipfs_api`), so storing a copy means making sure that node holds the CID, then asking
the service to pin it and waiting until it says `pinned`. Reading a copy back reads it from the
node. The spec: https://github.com/ipfs/pinning-services-api-spec (v1.0.0).

The access token goes only to the configured endpoint: redirects are not followed, proxies from
the environment are not used, and it appears in no log line or error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import aiohttp
import aioipfs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from artdag_common.cid import validate_cid
from artdag_common.content_store import ContentStore
from artdag_common.content_store.ipfs import IpfsContentStore
from artdag_common.errors import (
    ArtdagError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    PermanentError,
    RetryableError,
    UnauthorizedError,
)
from services.cache.providers import PinningConfig
from services.cache.replicas import cid_version_of, copy_verified

log = logging.getLogger(__name__)

Reply = TypeVar("Reply", bound=BaseModel)
PinState = Literal["queued", "pinning", "pinned", "failed"]
PENDING_OR_PINNED: tuple[PinState, ...] = ("queued", "pinning", "pinned")

REQUEST_TIMEOUT_S = 30.0
# A page of 1,000 PinStatus objects (the spec's largest) fits; anything bigger is not a reply to us.
MAX_REPLY_BYTES = 4 << 20
# How many pin requests for one CID `find` looks at: more than one is already unusual.
FIND_LIMIT = 100
# The spec allows at most 20 origins.
MAX_ORIGINS = 20
# Polling a pending pin: start quick (a service that holds the blocks pins at once), then back off.
POLL_FIRST_S = 0.25
POLL_MAX_S = 5.0
NODE_ID_TIMEOUT_S = 10.0
# What of a service's own words goes into an error message.
_SHOWN_CHARS = 300


class PinningReplyError(PermanentError):
    """The service answered with something that is not what the Pinning Service API says it returns."""


# -- the spec's objects --------------------------------------------------------------------------
# Unknown fields are ignored (services add their own); missing or mistyped required ones are an error.


class _SpecModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Pin(_SpecModel):
    """What is to be pinned: a CID, and optional name, provider hints and metadata."""

    cid: str = Field(min_length=1)
    name: str | None = Field(default=None, max_length=255)
    origins: list[str] = Field(default_factory=list)
    meta: dict[str, Any] | None = None


class PinStatus(_SpecModel):
    """A pin request as the service sees it."""

    requestid: str = Field(min_length=1, max_length=1024)
    status: PinState
    created: datetime
    pin: Pin
    # The spec asks for at least one delegate; a service that gives none still pins.
    delegates: list[str] = Field(default_factory=list)
    info: dict[str, Any] | None = None

    @field_validator("requestid")
    @classmethod
    def _one_path_segment(cls, value: str) -> str:
        # It is put into a path: "." or ".." would name another resource after URL normalisation.
        if value in (".", ".."):
            raise ValueError("not a usable request id")
        return value


class PinResults(_SpecModel):
    """One page of `GET /pins`: `count` matches in all, `results` the page."""

    count: int = Field(ge=0)
    results: list[PinStatus]


# -- the client ----------------------------------------------------------------------------------


class PinningClient:
    """The Pinning Service API at `endpoint` (its root, no trailing slash), with a bearer token."""

    def __init__(self, endpoint: str, token: SecretStr, *, request_timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._token = token
        self.request_timeout_s = request_timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use: a session needs a running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # No HTTP(S)_PROXY or .netrc: a proxy would see the token and connect on our behalf.
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"Accept": "application/json"},
            )
        return self._session

    async def aclose(self) -> None:
        """Close the HTTP session; the client reopens one if used again."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def redact(self, text: str) -> str:
        """A service's own words fit for a message: shortened, and without the token should it echo it."""
        token = self._token.get_secret_value()
        if token:
            text = text.replace(token, "[access token]")
        return text[:_SHOWN_CHARS]

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Pin | None = None,
        missing_ok: bool = False,
    ) -> bytes | None:
        """The body of a 2xx reply; None for a 404 when `missing_ok`; else the error the status means."""
        what = f"{method} {path}"
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = body.model_dump_json(exclude_none=True).encode()
        try:
            async with self._http().request(
                method,
                self.endpoint + path,
                params=params,
                data=payload,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.request_timeout_s),
            ) as response:
                reply = await self._read_capped(response, what)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise RetryableError(
                f"pinning service {what}: {type(exc).__name__}: {self.redact(str(exc)) or 'no answer'}"
            ) from None
        if 200 <= status < 300:
            return reply
        if status == 404 and missing_ok:
            return None
        raise self._error_for(status, reply, what)

    @staticmethod
    async def _read_capped(response: aiohttp.ClientResponse, what: str) -> bytes:
        too_large = PinningReplyError(f"pinning service {what}: the reply is larger than {MAX_REPLY_BYTES} bytes")
        if response.content_length is not None and response.content_length > MAX_REPLY_BYTES:
            raise too_large
        body = bytearray()
        async for chunk in response.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > MAX_REPLY_BYTES:
                raise too_large
        return bytes(body)

    def _error_for(self, status: int, reply: bytes, what: str) -> ArtdagError:
        message = f"pinning service {what}: HTTP {status}{self._failure_of(reply)}"
        if 300 <= status < 400:
            return PermanentError(f"{message}: a redirect, not followed (check the endpoint)", field="config.endpoint")
        if status == 401:
            return UnauthorizedError(f"{message}: the access token was refused", field="config.access_token")
        if status == 403:
            return ForbiddenError(f"{message}: the access token may not do this", field="config.access_token")
        if status == 400:
            return InvalidInputError(message)
        if status == 404:
            return NotFoundError(message)
        if status in (408, 429) or status >= 500:
            return RetryableError(message)
        return PermanentError(message)  # 409 (insufficient funds) and the services' own 4XX

    def _failure_of(self, reply: bytes) -> str:
        """`: REASON: details` from the spec's error body `{error: {reason, details}}`, if it is one."""
        try:
            error = json.loads(reply)["error"]
            words = [str(error[key]) for key in ("reason", "details") if error.get(key)]
        except (ValueError, KeyError, TypeError, AttributeError):
            return ""
        return f": {self.redact(': '.join(words))}" if words else ""

    @staticmethod
    def _parsed(model: type[Reply], reply: bytes | None, what: str) -> Reply:
        try:
            return model.model_validate_json(reply or b"")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "the body"
            raise PinningReplyError(
                f"pinning service {what}: the reply is not a {model.__name__} ({where}: {first['msg']})"
            ) from None

    # -- the operations ------------------------------------------------------------------------

    async def add(
        self, cid: str, *, name: str | None = None, origins: list[str] | None = None, meta: dict[str, str] | None = None
    ) -> PinStatus:
        """`POST /pins`: ask the service to pin `cid`; a new request each time, even for a CID it pins."""
        pin = Pin(cid=cid, name=name, origins=origins or [], meta=meta)
        return self._parsed(PinStatus, await self._request("POST", "/pins", body=pin), "POST /pins")

    async def get(self, requestid: str) -> PinStatus:
        """`GET /pins/{requestid}`; `NotFoundError` if the service has no such request."""
        path = f"/pins/{quote(requestid, safe='')}"
        return self._parsed(PinStatus, await self._request("GET", path), "GET /pins/{requestid}")

    async def list_pins(
        self,
        *,
        cids: list[str] | None = None,
        name: str | None = None,
        statuses: tuple[PinState, ...] | None = None,
        limit: int | None = None,
    ) -> PinResults:
        """`GET /pins` with the spec's filters; without `statuses` the service lists only `pinned` ones."""
        params: dict[str, str] = {}
        if cids:
            params["cid"] = ",".join(cids)
        if name is not None:
            params["name"] = name
        if statuses:
            params["status"] = ",".join(statuses)
        if limit is not None:
            params["limit"] = str(limit)
        return self._parsed(PinResults, await self._request("GET", "/pins", params=params), "GET /pins")

    async def find(self, cid: str) -> list[PinStatus]:
        """The requests for `cid` that are queued, pinning or pinned (not the failed ones)."""
        found = await self.list_pins(cids=[cid], statuses=PENDING_OR_PINNED, limit=FIND_LIMIT)
        # Some services match loosely (another multibase of the CID); keep what is ours.
        return [status for status in found.results if status.pin.cid == cid]

    async def remove(self, requestid: str) -> bool:
        """`DELETE /pins/{requestid}`; False if the service had no such request."""
        path = f"/pins/{quote(requestid, safe='')}"
        return await self._request("DELETE", path, missing_ok=True) is not None


# -- the provider --------------------------------------------------------------------------------


def _preferred(requests: list[PinStatus]) -> PinStatus | None:
    """The request most worth waiting on: a pinned one, else one being pinned, else a queued one."""
    rank = {"pinned": 0, "pinning": 1, "queued": 2}
    usable = [r for r in requests if r.status in rank]
    return min(usable, key=lambda r: (rank[r.status], -r.created.timestamp()), default=None)


def _reason(info: Mapping[str, Any] | None) -> str:
    if not info:
        return "the service gave no reason"
    return "; ".join(f"{key}: {value}" for key, value in info.items())


class PinningReplica:
    """A `Replica` at a pinning service, whose bytes the IPFS node `node` provides."""

    def __init__(self, client: PinningClient, node: IpfsContentStore, *, timeout_s: float) -> None:
        self.client = client
        self.node = node
        self.timeout_s = timeout_s
        self._origins: list[str] | None = None

    @classmethod
    def from_config(cls, config: PinningConfig, *, spool_dir: Path, cid_version: int) -> PinningReplica:
        """The provider `config` describes; `spool_dir` holds bytes on their way to the node."""
        client = PinningClient(config.endpoint, config.access_token)
        node = IpfsContentStore(config.ipfs_api, spool_dir=spool_dir, cid_version=cid_version)
        return cls(client, node, timeout_s=config.timeout_s)

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.node.aclose()

    async def check(self) -> None:
        """A connection test: the service answers and takes the token (else `UnauthorizedError` …)."""
        await self.client.list_pins(limit=1)

    async def store(self, cid: str, source: ContentStore) -> str:
        validate_cid(cid)
        if cid_version_of(cid) != self.node.cid_version:
            # The node adds bytes as CIDv{node.cid_version}: it could not hold them under this CID.
            raise InvalidInputError(
                f"{cid} is a CIDv{cid_version_of(cid)}; this provider stores CIDv{self.node.cid_version}", field="cid"
            )
        if not await self.node.exists(cid):
            await copy_verified(source, self.node, cid)
        return await self.pin(cid)

    async def pin(self, cid: str) -> str:
        """Have the service pin `cid`, which the node provides, and wait until it has; the request's id.

        A request already made for `cid` is reused. `RetryableError` if the pin fails or is not
        done within `timeout_s`.
        """
        request = _preferred(await self.client.find(cid))
        if request is None:
            request = await self.client.add(cid, name=cid, origins=await self._node_addresses())
        deadline = time.monotonic() + self.timeout_s
        delay = POLL_FIRST_S
        while request.status in ("queued", "pinning"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RetryableError(
                    f"the pinning service had not pinned {cid} after {self.timeout_s:g} s "
                    f"(request {request.requestid} is {request.status})",
                    field="cid",
                )
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, POLL_MAX_S)
            try:
                request = await self.client.get(request.requestid)
            except NotFoundError:
                raise RetryableError(f"the request to pin {cid} was removed while pending", field="cid") from None
        if request.status == "failed":
            # A failed request stays at the service until removed; the next attempt makes a new one.
            with contextlib.suppress(ArtdagError):
                await self.client.remove(request.requestid)
            reason = self.client.redact(_reason(request.info))
            raise RetryableError(f"the pinning service could not pin {cid}: {reason}", field="cid")
        log.info("%s is pinned at the pinning service (request %s)", cid, request.requestid)
        return request.requestid

    async def _node_addresses(self) -> list[str]:
        """The node's own multiaddrs, sent as `origins` so the service can dial it; [] if it will not say."""
        if self._origins is None:
            try:
                async with asyncio.timeout(NODE_ID_TIMEOUT_S), aioipfs.AsyncIPFS(maddr=self.node.api) as ipfs:
                    identity = await ipfs.core.id()
                addresses = identity.get("Addresses") or []
            except Exception as exc:  # noqa: BLE001 - origins are a hint; pinning goes on without them
                log.debug("no origins from the IPFS node: %s: %s", type(exc).__name__, exc)
                return []
            unique = list(dict.fromkeys(str(address) for address in addresses))
            self._origins = unique[:MAX_ORIGINS]
        return self._origins

    async def fetch(self, cid: str, into: ContentStore, ref: str | None) -> None:
        if not await self.node.exists(cid):
            raise NotFoundError(f"the IPFS node that provides the pinned copies does not hold {cid}", field="cid")
        await copy_verified(self.node, into, cid)

    async def remove(self, cid: str, ref: str | None) -> None:
        # Only the requests go: the node's copy may be another provider's or the cache's own.
        requestids = [ref] if ref else [request.requestid for request in await self.client.find(cid)]
        for requestid in requestids:
            await self.client.remove(requestid)


async def open_pinning_replica(
    config: PinningConfig, scratch: Path, stack: AsyncExitStack, cid_version: int
) -> PinningReplica:
    """The provider `config` describes, closed with `stack`; `scratch` spools bytes on their way to the node.

    Nothing connects yet: removing a pin needs only the service, not the node.
    """
    replica = PinningReplica.from_config(config, spool_dir=scratch, cid_version=cid_version)
    stack.push_async_callback(replica.aclose)
    return replica
