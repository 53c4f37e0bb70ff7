"""Media metadata with PyAV: streams, size, frame rate, duration and an exact frame count.

Plain synchronous code, run off the event loop. The frame count comes from demuxing
(no decoding), which is exact for the constant-frame-rate files artdag writes. What a file
declares is reported as it is (the planner holds it against the input limits); the decoders
that look into the streams while the file opens are capped by the limits all the same.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from artdag_common.errors import InvalidMediaError
from artdag_common.media_limits import InputLimits
from artdag_common.media_types import ALLOWED_DEMUXERS
from artdag_common.schemas import MediaInfo


def probe_file(path: Path, cid: str, limits: InputLimits = InputLimits()) -> MediaInfo:
    """Describe the media at `path`; raises `InvalidMediaError` for anything that is not media.

    Frames are counted up to one past `limits.max_frames`: enough to refuse, never a long count.
    """
    try:
        # Only media demuxers, only local files: a playlist or concat script would read other files.
        container = av.open(
            str(path),
            options={
                "protocol_whitelist": "file",
                "format_whitelist": ",".join(sorted(ALLOWED_DEMUXERS)),
                **limits.decoder_options,
            },
        )
    except (av.FFmpegError, OSError) as exc:
        raise InvalidMediaError(f"not a media file ({exc})") from None
    with container:
        names = set(container.format.name.split(","))
        if not names & ALLOWED_DEMUXERS:
            raise InvalidMediaError(f"unsupported container {container.format.name!r}")
        video = next(
            (s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic), None
        )
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None and audio is None:
            raise InvalidMediaError("no audio or video stream")
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        frames = 0
        if video is not None:
            for packet in container.demux(video):
                if packet.size:
                    frames += 1
                    if frames > limits.max_frames:
                        break
        rate: Fraction | None = video.average_rate if video is not None else None
        return MediaInfo(
            cid=cid,
            duration_s=duration,
            has_video=video is not None,
            has_audio=audio is not None,
            width=video.codec_context.width if video is not None else None,
            height=video.codec_context.height if video is not None else None,
            fps=float(rate) if rate else None,
            frame_count=frames if video is not None else None,
            video_codec=video.codec_context.name if video is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            sample_rate=audio.codec_context.sample_rate if audio is not None else None,
            video_profile=video.codec_context.profile if video is not None else None,
        )
