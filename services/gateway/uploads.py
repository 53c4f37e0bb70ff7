"""Streaming multipart uploads: bytes go to the content store as they arrive.

The body is never spooled whole (an upload may be gigabytes), and a body over the
limit is refused mid-stream with nothing stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

from artdag_common.content_store import ContentStore, ContentWriter
from artdag_common.errors import InvalidInputError, PayloadTooLargeError

FILE_FIELD = "file"
MAX_FIELD_BYTES = 4096


@dataclass
class UploadResult:
    """What the client sent: the stored cid and size, its file name and small fields."""

    cid: str
    size: int
    filename: str | None
    fields: dict[str, str]
    head: bytes


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary, or a 400-class error naming the header."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidInputError("expected multipart/form-data with a 'file' part", field="content-type")
    return params[b"boundary"]


async def receive_upload(
    body: AsyncIterator[bytes], content_type: str, store: ContentStore, max_bytes: int
) -> UploadResult:
    """Parse a multipart body, streaming the `file` part into the store."""
    # Parser callbacks are synchronous: they queue what they saw, the loop below awaits the writes.
    events: list[tuple[str, bytes | tuple[str, str] | None]] = []
    header_field = bytearray()
    header_value = bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        events.append(("header", (header_field.decode("latin-1").lower(), header_value.decode("utf-8", "replace"))))
        header_field.clear()
        header_value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        events.append(("data", bytes(data[start:end])))

    parser = MultipartParser(
        boundary_of(content_type),
        {
            "on_part_begin": lambda: events.append(("begin", None)),
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": lambda: events.append(("headers_done", None)),
            "on_part_data": on_part_data,
            "on_part_end": lambda: events.append(("end", None)),
        },
    )
    writer: ContentWriter | None = None
    part = _Part()
    filename: str | None = None
    fields: dict[str, str] = {}
    head = bytearray()
    cid: str | None = None
    size = 0
    try:
        async for chunk in body:
            parser.write(chunk)
            for kind, payload in events:
                if kind == "begin":
                    part = _Part()
                elif kind == "header" and isinstance(payload, tuple):
                    part.headers[payload[0]] = payload[1]
                elif kind == "headers_done":
                    _, params = parse_options_header(part.headers.get("content-disposition", ""))
                    part.name = params.get(b"name", b"").decode("utf-8", "replace") or None
                    raw_filename = params.get(b"filename")
                    part.filename = raw_filename.decode("utf-8", "replace") if raw_filename is not None else None
                    if part.name == FILE_FIELD and writer is None and cid is None:
                        writer = store.writer(max_bytes=max_bytes)
                        filename = part.filename
                elif kind == "data" and isinstance(payload, bytes):
                    data = payload
                    if part.name == FILE_FIELD and writer is not None:
                        if len(head) < 64:
                            head.extend(data[: 64 - len(head)])
                        await writer.write(data)
                    elif part.name and part.name != FILE_FIELD:
                        part.value.extend(data)
                        if len(part.value) > MAX_FIELD_BYTES:
                            raise InvalidInputError(f"form field is over {MAX_FIELD_BYTES} bytes", field=part.name)
                elif kind == "end":
                    if part.name == FILE_FIELD and writer is not None:
                        size = writer.size
                        cid = await writer.commit()
                        writer = None
                    elif part.name:
                        fields[part.name] = part.value.decode("utf-8", "replace")
            events.clear()
        parser.finalize()
    except PayloadTooLargeError:
        raise PayloadTooLargeError(
            f"upload is larger than MAX_UPLOAD_BYTES ({max_bytes} bytes)", field="file"
        ) from None
    finally:
        if writer is not None:
            await writer.abort()
    if cid is None:
        raise InvalidInputError("the form has no complete 'file' part", field="file")
    return UploadResult(cid=cid, size=size, filename=filename, fields=fields, head=bytes(head))
