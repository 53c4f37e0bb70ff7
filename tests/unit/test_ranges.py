import pytest

from artdag_common.errors import InvalidInputError
from artdag_common.media_types import sniff_media_type
from services.gateway.ranges import parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-10", (990, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=900-5000", (900, 999)),
        ("bytes=0-1,5-6", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-2", "items=0-1", "bytes=-", "bytes=-0", "bytes=a-b"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_range(header, 1000)


@pytest.mark.parametrize(
    ("head", "media_type"),
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video/mp4"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00", "audio/mp4"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "video/webm"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"name: recipe\n", "application/octet-stream"),
        (b"", "application/octet-stream"),
    ],
)
def test_media_type_is_sniffed_from_bytes(head: bytes, media_type: str) -> None:
    assert sniff_media_type(head) == media_type
