"""JOIN: concatenate independently rendered video chunks without re-encoding.

The planner splits a long per-frame effect into chunks of whole GOPs; each chunk is
encoded on its own (starting with a keyframe, same encoder settings), so their
packets can follow one another in one stream once their timestamps are shifted.
The sound is not chunked at all: it is copied once from the source, so there is no
seam to click at.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from artdag_common.errors import InvalidMediaError
from services.executor.encoding import open_output


def _video_packets(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    container = av.open(str(path), options={"protocol_whitelist": "file"})
    if not container.streams.video:
        container.close()
        raise InvalidMediaError(f"chunk {path.name} has no video stream")
    return container, container.streams.video[0]


def render_join(chunks: list[Path], audio_source: Path | None, output: Path) -> None:
    """Write the chunks' video back to back, and the source's AAC sound (if any) beside it."""
    if not chunks:
        raise InvalidMediaError("nothing to join")
    with open_output(output) as out:
        first, template = _video_packets(chunks[0])
        with first:
            video_out = out.add_stream_from_template(template)
            codec = (template.codec_context.name, template.codec_context.width, template.codec_context.height)
            time_base = template.time_base
        audio_in: av.container.InputContainer | None = None
        audio_out = None
        if audio_source is not None:
            audio_in = av.open(str(audio_source), options={"protocol_whitelist": "file"})
            if audio_in.streams.audio:
                source_audio = audio_in.streams.audio[0]
                if source_audio.codec_context.name != "aac":
                    audio_in.close()
                    raise InvalidMediaError(f"can only copy AAC sound, not {source_audio.codec_context.name}")
                audio_out = out.add_stream_from_template(source_audio)
        video_out.metadata.clear()
        offset = 0  # in the chunks' time base
        for path in chunks:
            container, stream = _video_packets(path)
            with container:
                if (stream.codec_context.name, stream.codec_context.width, stream.codec_context.height) != codec:
                    raise InvalidMediaError(f"chunk {path.name} does not match the first chunk's format")
                if stream.time_base != time_base:
                    raise InvalidMediaError(f"chunk {path.name} has a different time base")
                end = offset
                for packet in container.demux(stream):
                    if packet.dts is None or packet.pts is None:
                        continue  # the demuxer's flush packet
                    packet.pts += offset
                    packet.dts += offset
                    end = max(end, packet.pts + (packet.duration or 0))
                    packet.stream = video_out
                    out.mux(packet)
                offset = end
        if audio_in is not None:
            with audio_in:
                if audio_out is not None:
                    _copy_audio(audio_in, audio_out, out, Fraction(offset) * Fraction(time_base or 0))


def _copy_audio(
    source: av.container.InputContainer,
    stream_out: av.audio.stream.AudioStream,
    out: av.container.OutputContainer,
    video_seconds: Fraction,
) -> None:
    stream = source.streams.audio[0]
    for packet in source.demux(stream):
        if packet.dts is None or packet.pts is None:
            continue
        if stream.time_base is not None and packet.pts * stream.time_base >= video_seconds:
            break
        packet.stream = stream_out
        out.mux(packet)
