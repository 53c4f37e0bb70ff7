"""Objects in an S3 bucket (AWS, MinIO, Ceph, …) under `<prefix><cid>`, via aiobotocore.

Writes spool to a local file while the CID is computed, then upload it in one PUT
or, past one part, as a multipart upload (aborted on any failure): S3 makes an
object visible only when its PUT or `CompleteMultipartUpload` succeeds, so readers
never see a partial object. Two writers of the same bytes write the same key with
the same body, which is harmless; a writer whose object already exists skips the
upload.

The S3 client opens lazily on first use (so `open_store` stays synchronous) and is
closed by `aclose()` or by leaving `async with store:`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import botocore.exceptions
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from artdag_common.cid import validate_cid
from artdag_common.content_store.base import ContentStore, ContentWriter
from artdag_common.content_store.spool import READ_CHUNK, SpoolWriter, cached_fetch, fetch_verified, spool_file
from artdag_common.errors import NotFoundError, PermanentError, RetryableError

PART_SIZE = 8 * 1024 * 1024
"""Bytes per multipart-upload part; objects up to this size go up in one PUT."""

MIN_PART_SIZE = 5 * 1024 * 1024
"""S3's smallest allowed part (all but the last)."""

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_RETRYABLE_CODES = frozenset(
    {
        "500",
        "502",
        "503",
        "504",
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "Throttling",
        "ThrottlingException",
    }
)
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ResponseStreamingError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    ConnectionError,
)


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _mapped_errors(what: str, cid: str | None = None) -> Iterator[None]:
    """Turn botocore/aiohttp failures into artdag's: missing → NotFound, network → Retryable."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        code = _error_code(exc)
        if code in _NOT_FOUND_CODES and cid is not None:
            raise NotFoundError(f"no content {cid}", field="cid") from exc
        if code in _RETRYABLE_CODES:
            raise RetryableError(f"S3 {what}: {code}") from exc
        raise PermanentError(f"S3 {what}: {code or exc}") from exc
    except _NETWORK_ERRORS as exc:
        raise RetryableError(f"S3 {what}: {type(exc).__name__}: {exc}") from exc


class _FilePart(io.RawIOBase):
    """A read-only, seekable window `[offset, offset + length)` of a file: one upload part.

    botocore reads it in pieces to sign and checksum it and aiohttp streams it, so a
    part never sits in memory whole.
    """

    def __init__(self, path: Path, offset: int, length: int) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self._offset = offset
        self._length = length
        self._pos = 0
        self._file.seek(offset)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        self._pos = max(0, min(self._length, base + pos))
        self._file.seek(self._offset + self._pos)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._length - self._pos)
        if want <= 0:
            return 0
        got = self._file.readinto(view[:want]) or 0
        self._pos += got
        return got

    def __len__(self) -> int:
        return self._length

    def close(self) -> None:
        self._file.close()
        super().close()


class S3ContentStore(ContentStore):
    """Content in an S3 bucket at `<prefix><cid>`; spools uploads and downloads under `spool_dir`."""

    def __init__(
        self,
        bucket: str,
        *,
        spool_dir: Path,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        cid_version: int = 0,
        part_size: int = PART_SIZE,
    ) -> None:
        """Describe the bucket; no connection is made until the first call."""
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        self.bucket = bucket
        self.prefix = prefix
        self.spool_dir = spool_dir
        self.cid_version = cid_version
        self.part_size = part_size
        self._client_args: dict[str, Any] = {
            "region_name": region,
            "endpoint_url": endpoint_url,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "config": AioConfig(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
                # An explicit endpoint (MinIO, moto, Ceph) usually wants path-style URLs.
                s3={"addressing_style": "path" if endpoint_url else "auto"},
            ),
        }
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    # -- lifecycle --------------------------------------------------------------

    async def _s3(self) -> Any:
        """The aiobotocore S3 client, created on first use."""
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    stack = AsyncExitStack()
                    self._client = await stack.enter_async_context(
                        get_session().create_client("s3", **self._client_args)
                    )
                    self._stack = stack
        return self._client

    async def open(self) -> None:
        """Connect now and check that the bucket answers (fail fast at start-up)."""
        client = await self._s3()
        with _mapped_errors(f"bucket {self.bucket!r}"):
            try:
                await client.head_bucket(Bucket=self.bucket)
            except botocore.exceptions.ClientError as exc:
                if _error_code(exc) in {"404", "NoSuchBucket"}:
                    raise NotFoundError(f"no S3 bucket {self.bucket!r}", field="s3_bucket") from exc
                raise

    async def aclose(self) -> None:
        """Close the client's connections; the store reopens them if used again."""
        async with self._lock:
            stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> S3ContentStore:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- writing ----------------------------------------------------------------

    def key(self, cid: str) -> str:
        """The object key of `cid` (validated: it cannot escape the prefix)."""
        return self.prefix + validate_cid(cid)

    def writer(self, *, max_bytes: int | None = None) -> ContentWriter:
        return SpoolWriter(self.spool_dir, self.cid_version, max_bytes, self._publish)

    async def put_file(self, path: Path) -> str:
        return await spool_file(path, self.writer())

    async def _publish(self, path: Path, cid: str, size: int) -> None:
        if await self.exists(cid):
            return
        if size <= self.part_size:
            await self._put_single(path, cid, size)
        else:
            await self._put_multipart(path, cid, size)

    async def _put_single(self, path: Path, cid: str, size: int) -> None:
        client = await self._s3()
        body = await asyncio.to_thread(_FilePart, path, 0, size)
        try:
            with _mapped_errors(f"upload of {cid}"):
                await client.put_object(Bucket=self.bucket, Key=self.key(cid), Body=body, ContentLength=size)
        finally:
            body.close()

    async def _put_multipart(self, path: Path, cid: str, size: int) -> None:
        client = await self._s3()
        key = self.key(cid)
        with _mapped_errors(f"upload of {cid}"):
            upload_id = (await client.create_multipart_upload(Bucket=self.bucket, Key=key))["UploadId"]
        try:
            parts = []
            for number, offset in enumerate(range(0, size, self.part_size), start=1):
                length = min(self.part_size, size - offset)
                body = await asyncio.to_thread(_FilePart, path, offset, length)
                try:
                    with _mapped_errors(f"upload of {cid} (part {number})"):
                        reply = await client.upload_part(
                            Bucket=self.bucket,
                            Key=key,
                            UploadId=upload_id,
                            PartNumber=number,
                            Body=body,
                            ContentLength=length,
                        )
                finally:
                    body.close()
                parts.append({"PartNumber": number, "ETag": reply["ETag"]})
            with _mapped_errors(f"upload of {cid}"):
                await client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            # Shielded: a cancelled upload must still release the parts S3 holds for it.
            with contextlib.suppress(Exception):
                await asyncio.shield(client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id))
            raise

    # -- reading ----------------------------------------------------------------

    async def exists(self, cid: str) -> bool:
        try:
            await self.size(cid)
        except NotFoundError:
            return False
        return True

    async def size(self, cid: str) -> int:
        key = self.key(cid)
        client = await self._s3()
        with _mapped_errors(f"HEAD {cid}", cid):
            head = await client.head_object(Bucket=self.bucket, Key=key)
        return int(head["ContentLength"])

    async def read(self, cid: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        key = self.key(cid)
        if start < 0 or (end is not None and end < start):
            await self.size(cid)  # still NotFound for a missing object
            return
        client = await self._s3()
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start > 0 or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            with _mapped_errors(f"GET {cid}", cid):
                reply = await client.get_object(**args)
        except PermanentError as exc:
            # A range starting at or past the end (or any range of an empty object).
            if isinstance(exc.__cause__, botocore.exceptions.ClientError) and (
                _error_code(exc.__cause__) in {"InvalidRange", "416"}
            ):
                return
            raise
        async with reply["Body"] as body:
            with _mapped_errors(f"GET {cid}", cid):
                async for chunk in body.iter_chunks(READ_CHUNK):
                    yield chunk

    async def local_path(self, cid: str, scratch: Path) -> Path:
        size = await self.size(cid)
        cached = await cached_fetch(cid, size, scratch)
        return cached if cached is not None else await fetch_verified(cid, self.read(cid), scratch)

    async def delete(self, cid: str) -> bool:
        if not await self.exists(cid):
            return False
        client = await self._s3()
        with _mapped_errors(f"DELETE {cid}", cid):
            await client.delete_object(Bucket=self.bucket, Key=self.key(cid))
        return True
