"""Content pinned on an IPFS node, through its Kubo RPC API (`IPFS_API`, a multiaddr), via aioipfs.

The store is the node's set of recursive pins: `exists` means "pinned here",
`delete` unpins (garbage collection is the node operator's business), and reads
of a CID that is not pinned here raise `NotFoundError` rather than asking the
IPFS network for it, so an unknown CID never hangs a request.

Writes spool to a local file while the CID is computed, then `add` the file with
exactly the importer settings that CID assumes (fixed 262,144-byte chunks,
sha2-256, CIDv0 with dag-pb leaves, or CIDv1 with raw leaves) and `pin=true`:
Kubo writes the blocks, then pins the root, so the object is never visible half
added. A node that answers with another CID (its importer differs) is refused.
Adding the same bytes twice is idempotent in IPFS.

`cat` streams; Kubo reports a failure in the middle of a stream only in an HTTP
trailer, so every read counts its bytes and a short one is a `RetryableError`.
`local_path` checks the fetched bytes against the CID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import aioipfs

from artdag_common.cid import CHUNK_SIZE, validate_cid
from artdag_common.content_store.base import ContentStore, ContentWriter
from artdag_common.content_store.spool import (
    READ_CHUNK,
    SpoolWriter,
    cached_fetch,
    fetch_verified,
    spool_file,
)
from artdag_common.errors import NotFoundError, PermanentError, RetryableError

_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    aioipfs.IPFSConnectionError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    ConnectionError,
)


@contextlib.contextmanager
def _mapped_errors(what: str) -> Iterator[None]:
    """Unreachable node or timeout → Retryable; any other refusal → Permanent."""
    try:
        yield
    except _NETWORK_ERRORS as exc:
        raise RetryableError(f"IPFS {what}: {type(exc).__name__}: {exc}") from exc
    except aioipfs.APIError as exc:
        raise PermanentError(f"IPFS {what}: {exc.message or type(exc).__name__}") from exc


def _not_pinned(exc: aioipfs.APIError) -> bool:
    # pin/ls: "path '<cid>' is not pinned"; pin/rm: "not pinned or pinned indirectly".
    return isinstance(exc, aioipfs.NotPinnedError) or "not pinned" in str(exc.message or "").lower()


class IpfsContentStore(ContentStore):
    """Content pinned on the Kubo node at `api` (a multiaddr such as `/ip4/127.0.0.1/tcp/5001`)."""

    def __init__(self, api: str, *, spool_dir: Path, cid_version: int = 0, timeout_s: float = 30.0) -> None:
        """Describe the node; no connection is made until the first call."""
        self.api = api
        self.spool_dir = spool_dir
        self.cid_version = cid_version
        self.timeout_s = timeout_s
        self._client: Any = None

    # -- lifecycle --------------------------------------------------------------

    def _ipfs(self) -> Any:
        """The aioipfs client, created on first use (it needs a running event loop)."""
        if self._client is None:
            self._client = aioipfs.AsyncIPFS(maddr=self.api, read_timeout=int(self.timeout_s))
        return self._client

    def _timeout(self) -> aiohttp.ClientTimeout:
        # Bounds connecting and each read, not a whole (possibly long) transfer.
        return aiohttp.ClientTimeout(total=None, connect=self.timeout_s, sock_read=self.timeout_s)

    async def open(self) -> None:
        """Check now that the node answers (fail fast at start-up)."""
        with _mapped_errors("id"):
            await self._ipfs().core.id()

    async def aclose(self) -> None:
        """Close the client's HTTP session; the store reopens it if used again."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> IpfsContentStore:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _post(self, command: str, params: dict[str, str], data: Any = None) -> Any:
        """POST one RPC command (Kubo's RPC is all POST); use the result with `async with`."""
        client = self._ipfs()
        return client.session.post(
            client.api_endpoint(command), params=params, data=data, auth=client.auth, timeout=self._timeout()
        )

    @staticmethod
    async def _raise_for(response: aiohttp.ClientResponse, what: str) -> None:
        if response.status == 200:
            return
        body = await response.text()
        try:
            message = str((await response.json(content_type=None)).get("Message", body))
        except ValueError:
            message = body
        if response.status >= 500 and "not pinned" in message.lower():
            raise aioipfs.NotPinnedError(message=message, http_status=response.status)
        if response.status in (502, 503, 504) or "deadline exceeded" in message.lower():
            raise RetryableError(f"IPFS {what}: HTTP {response.status}: {message}")
        raise aioipfs.APIError(message=message, http_status=response.status)

    # -- writing ----------------------------------------------------------------

    def writer(self, *, max_bytes: int | None = None) -> ContentWriter:
        return SpoolWriter(self.spool_dir, self.cid_version, max_bytes, self._publish)

    async def put_file(self, path: Path) -> str:
        return await spool_file(path, self.writer())

    def _add_params(self) -> dict[str, str]:
        # The importer settings artdag_common.cid reproduces; see its module docstring.
        return {
            "cid-version": str(self.cid_version),
            "raw-leaves": "true" if self.cid_version == 1 else "false",
            "chunker": f"size-{CHUNK_SIZE}",
            "hash": "sha2-256",
            # Kubo prints CIDv1 in base32 by default, js-ipfs in base58btc: ask for what validate_cid accepts.
            "cid-base": "base58btc" if self.cid_version == 0 else "base32",
            "pin": "true",
            "quieter": "true",
            "progress": "false",
        }

    async def _publish(self, path: Path, cid: str, size: int) -> None:
        added: str | None = None
        with open(path, "rb") as source, _mapped_errors(f"add {cid}"):
            form = aiohttp.FormData()
            # aiohttp streams an open file in pieces: the object is never in memory.
            form.add_field("file", source, filename=cid, content_type="application/octet-stream")
            async with self._post("add", self._add_params(), data=form) as response:
                await self._raise_for(response, f"add {cid}")
                async for line in response.content:
                    if line.strip():
                        entry = json.loads(line)
                        if "Hash" in entry:
                            added = str(entry["Hash"])
        if added != cid:
            if added is not None:
                with contextlib.suppress(RetryableError, PermanentError):
                    await self._unpin(added)
            raise PermanentError(
                f"the IPFS node added the content as {added}, not {cid}: its importer settings differ", field="cid"
            )

    # -- reading ----------------------------------------------------------------

    async def exists(self, cid: str) -> bool:
        validate_cid(cid)
        params = {"arg": cid, "type": "recursive", "quiet": "true"}
        with _mapped_errors(f"pin/ls {cid}"):
            try:
                async with self._post("pin/ls", params) as response:
                    await self._raise_for(response, f"pin/ls {cid}")
                    reply = await response.json(content_type=None)
            except aioipfs.APIError as exc:
                if _not_pinned(exc):
                    return False
                raise
        # One key asked about; the node may print it in another multibase (js-ipfs: base58btc).
        return bool(reply.get("Keys"))

    async def _require(self, cid: str) -> None:
        if not await self.exists(cid):
            raise NotFoundError(f"no content {cid}", field="cid")

    async def size(self, cid: str) -> int:
        await self._require(cid)
        with _mapped_errors(f"files/stat {cid}"):
            async with self._post("files/stat", {"arg": f"/ipfs/{cid}"}) as response:
                await self._raise_for(response, f"files/stat {cid}")
                stat = await response.json(content_type=None)
        return int(stat["Size"])

    async def read(self, cid: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        size = await self.size(cid)
        start = max(start, 0)
        stop = size - 1 if end is None else min(end, size - 1)
        if start > stop:
            return
        want = stop - start + 1
        params = {"arg": cid, "offset": str(start), "length": str(want)}
        got = 0
        with _mapped_errors(f"cat {cid}"):
            async with self._post("cat", params) as response:
                await self._raise_for(response, f"cat {cid}")
                async for chunk in response.content.iter_chunked(READ_CHUNK):
                    chunk = chunk[: want - got]
                    got += len(chunk)
                    if chunk:
                        yield chunk
                    if got >= want:
                        break
        if got < want:
            raise RetryableError(f"IPFS cat {cid}: the stream ended after {got} of {want} bytes")

    async def local_path(self, cid: str, scratch: Path) -> Path:
        size = await self.size(cid)
        cached = await cached_fetch(cid, size, scratch)
        return cached if cached is not None else await fetch_verified(cid, self.read(cid), scratch)

    async def _unpin(self, cid: str) -> bool:
        with _mapped_errors(f"pin/rm {cid}"):
            try:
                async with self._post("pin/rm", {"arg": cid, "recursive": "true"}) as response:
                    await self._raise_for(response, f"pin/rm {cid}")
            except aioipfs.APIError as exc:
                if _not_pinned(exc):
                    return False
                raise
        return True

    async def delete(self, cid: str) -> bool:
        validate_cid(cid)
        return await self._unpin(cid)
