"""Media types sniffed from a file's first bytes (never trusted from the client)."""

from __future__ import annotations

SNIFF_BYTES = 64

# Demuxers an input may be opened with: media containers only. Playlists (HLS), concat
# scripts and image-sequence patterns would make FFmpeg read other files or the network.
ALLOWED_DEMUXERS: frozenset[str] = frozenset(
    {
        "mov", "mp4", "m4a", "3gp", "matroska", "webm", "avi", "mpegts", "mpeg", "flv", "ogg", "asf",
        "gif", "m4v", "h264", "hevc", "ivf", "mjpeg",
        "wav", "w64", "mp3", "aac", "flac", "aiff", "caf",
    }
)  # fmt: skip


# An effect's source (`define-effect`), stored through POST /effects.
EFFECT_MEDIA_TYPE = "text/x-artdag-effect"


def sniff_media_type(head: bytes) -> str:
    """The media type of content starting with `head` (at least the first 16 bytes)."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        if brand in (b"qt  ",):
            return "video/quicktime"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head else "video/x-matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


LOSSLESS_H264_PROFILE = "High 4:4:4 Predictive"
"""The H.264 profile x264 writes for ``qp=0``: how a lossless intermediate is recognised (not browser-playable)."""
