"""THUMBNAIL: one frame of a video as a small PNG, for galleries."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import VideoFrame

from artdag_common.errors import InvalidMediaError
from services.executor.media import MediaReader


def render_thumbnail(input_path: Path, output_path: Path, *, width: int, at_s: float) -> None:
    """The frame shown at `at_s` (or the last one, for a shorter video), `width` wide, as PNG."""
    chosen: VideoFrame | None = None
    with MediaReader(input_path) as reader:
        if reader.video is None:
            raise InvalidMediaError(f"{input_path.name}: has no video stream")
        reader.seek(Fraction(at_s).limit_denominator(1000))
        for frame in reader.frames(video=True, audio=False):
            if not isinstance(frame, VideoFrame):
                continue
            chosen = frame
            time = reader.time_of(frame)
            if time is not None and time >= at_s:
                break
        if chosen is None:
            raise InvalidMediaError(f"{input_path.name}: video stream has no decodable frames")
        height = max(2, round(chosen.height * width / chosen.width / 2) * 2)
        picture = chosen.reformat(width=width, height=height, format="rgb24")
    with av.open(str(output_path), "w", format="image2", options={"update": "1"}) as out:
        stream = out.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        picture.pts = 0
        for packet in stream.encode(picture):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
