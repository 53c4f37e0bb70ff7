"""Streaming multipart uploads: bytes go to the content store as they arrive.

The body is never spooled whole (an upload may be gigabytes), and a body over the
limit is refused mid-stream with nothing stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qsl

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from artdag_common.content_store import ContentStore, ContentWriter
from artdag_common.errors import BadRequestError, InvalidInputError, PayloadTooLargeError
from artdag_common.media_types import SNIFF_BYTES

FILE_FIELD = "file"
MAX_FIELD_BYTES = 4096
# A part's header line: room for a file name of a few thousand characters (UTF-8), still bounded.
MAX_PART_HEADER_BYTES = 32 * 1024


@dataclass
class UploadResult:
    """What the client sent: the stored cid and size, its file name and small fields."""

    cid: str
    size: int
    filename: str | None
    fields: dict[str, str]
    head: bytes


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary, or a 400-class error naming the header."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidInputError("expected multipart/form-data with a 'file' part", field="content-type")
    return params[b"boundary"]


class PartStart:
    """A multipart part begins: its field name and file name (if any)."""

    def __init__(self, headers: dict[str, bytes]) -> None:
        # Raw bytes in, UTF-8 out: browsers send non-ASCII names (日本.mp4) as UTF-8 bytes.
        _, params = parse_options_header(headers.get("content-disposition", b""))
        self.name = params.get(b"name", b"").decode("utf-8", "replace") or None
        raw = params.get(b"filename")
        self.filename = raw.decode("utf-8", "replace") if raw is not None else None


PartEvent = PartStart | bytes | None
"""What `multipart_parts` yields: a part's start, a piece of its data, or None at its end."""


async def multipart_parts(body: AsyncIterator[bytes], content_type: str) -> AsyncIterator[PartEvent]:
    """Stream a multipart/form-data body as part starts, data pieces and part ends."""
    # Parser callbacks are synchronous: they queue what they saw, this generator hands it out.
    events: list[PartEvent] = []
    headers: dict[str, bytes] = {}
    header_field = bytearray()
    header_value = bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[header_field.decode("latin-1").lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        events.append(PartStart(headers))
        headers.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        events.append(bytes(data[start:end]))

    parser = MultipartParser(
        boundary_of(content_type),
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": lambda: events.append(None),
        },
        max_header_size=MAX_PART_HEADER_BYTES,
    )
    try:
        async for chunk in body:
            parser.write(chunk)
            for event in events:
                yield event
            events.clear()
        parser.finalize()
    except FormParserError as exc:
        raise BadRequestError(f"the multipart body is malformed ({exc})", field="content-type") from None
    for event in events:
        yield event


async def receive_upload(
    body: AsyncIterator[bytes], content_type: str, store: ContentStore, max_bytes: int
) -> UploadResult:
    """Parse a multipart body, streaming the `file` part into the store."""
    writer: ContentWriter | None = None
    part: PartStart | None = None
    value = bytearray()
    filename: str | None = None
    fields: dict[str, str] = {}
    head = bytearray()
    cid: str | None = None
    size = 0
    try:
        async for event in multipart_parts(body, content_type):
            if isinstance(event, PartStart):
                part, value = event, bytearray()
                if part.name == FILE_FIELD and writer is None and cid is None:
                    writer = store.writer(max_bytes=max_bytes)
                    filename = part.filename
            elif isinstance(event, bytes) and part is not None:
                if part.name == FILE_FIELD and writer is not None:
                    if len(head) < SNIFF_BYTES:
                        head.extend(event[: SNIFF_BYTES - len(head)])
                    await writer.write(event)
                elif part.name:
                    value.extend(event)
                    if len(value) > MAX_FIELD_BYTES:
                        raise InvalidInputError(f"form field is over {MAX_FIELD_BYTES} bytes", field=part.name)
            elif event is None and part is not None:
                if part.name == FILE_FIELD and writer is not None:
                    size = writer.size
                    cid = await writer.commit()
                    writer = None
                elif part.name:
                    fields[part.name] = value.decode("utf-8", "replace")
                part = None
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


async def read_text_form(body: AsyncIterator[bytes], content_type: str, max_bytes: int) -> dict[str, str]:
    """A small multipart form (e.g. a recipe file) as text fields, refusing more than `max_bytes` in all."""
    fields: dict[str, str] = {}
    name: str | None = None
    value = bytearray()
    total = 0
    async for event in multipart_parts(body, content_type):
        if isinstance(event, PartStart):
            name, value = event.name, bytearray()
        elif isinstance(event, bytes):
            total += len(event)
            if total > max_bytes:
                raise PayloadTooLargeError(f"the form is larger than {max_bytes} bytes", field=name)
            value.extend(event)
        elif name:
            fields[name] = value.decode("utf-8", "replace")
            name = None
    return fields


MAX_FORM_BYTES = 64 * 1024
"""A form's size limit unless its handler says otherwise (forms carry fields, not files)."""


async def read_body(body: AsyncIterator[bytes], max_bytes: int, too_large: PayloadTooLargeError) -> bytes:
    """A whole (small) body, raising `too_large` as soon as it passes `max_bytes`."""
    data = bytearray()
    async for chunk in body:
        data.extend(chunk)
        if len(data) > max_bytes:
            raise too_large
    return bytes(data)


async def read_form(body: AsyncIterator[bytes], content_type: str, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    """A form's text fields, urlencoded or multipart, refusing more than `max_bytes`."""
    if content_type.startswith("multipart/form-data"):
        return await read_text_form(body, content_type, max_bytes)
    if content_type.startswith("application/x-www-form-urlencoded"):
        too_large = PayloadTooLargeError(f"the form is larger than {max_bytes} bytes")
        data = await read_body(body, max_bytes, too_large)
        return dict(parse_qsl(data.decode("utf-8", "replace"), keep_blank_values=True))
    raise InvalidInputError("expected a form (application/x-www-form-urlencoded or multipart)", field="content-type")
