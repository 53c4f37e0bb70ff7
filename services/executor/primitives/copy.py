"""Stream copy: moving compressed packets into a new file without re-encoding."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from av.packet import Packet
from av.video.stream import VideoStream

from artdag_common.errors import InvalidMediaError
from services.executor.media import MediaReader


@dataclass(frozen=True)
class CopyPlan:
    """Which video packets a copy keeps: from keyframe `first_pts` up to (not including) `end`."""

    first_pts: int
    start: Fraction
    """Time of the first kept keyframe, relative to the reader's origin."""
    end: Fraction
    """Where the kept video ends (its last picture's end), relative to the origin."""


def _time(reader: MediaReader, pts: int) -> Fraction:
    if reader.video is None or reader.video.time_base is None:  # pragma: no cover - checked by callers
        raise InvalidMediaError(f"{reader.name}: has no video stream")
    return pts * reader.video.time_base - reader.origin


def plan_copy(reader: MediaReader, start: Fraction, end: Fraction | None) -> CopyPlan:
    """Scan the video packets (no decoding) for the keyframe at or before `start`.

    Packets are kept in decode order from that keyframe until the first packet
    whose picture starts at or after `end`: every kept packet then decodes.
    """
    video = reader.video
    if video is None or video.time_base is None:
        raise InvalidMediaError(f"{reader.name}: has no video stream")
    tolerance = Fraction(1, 2) / reader.fps
    first: int | None = None
    kept_end = Fraction(0)
    for packet in reader.container.demux(video):
        if packet.pts is None or packet.size == 0:
            continue
        t = _time(reader, packet.pts)
        if packet.is_keyframe and t <= start + tolerance:
            first, kept_end = packet.pts, t  # a later keyframe still at or before start wins
        elif first is None:
            continue
        elif end is None and packet.is_keyframe:
            kept_end = reader.duration  # the keyframe is settled; the copy runs to the end
            break
        if end is not None and t >= end:
            break
        step = packet.duration * video.time_base if packet.duration else 1 / reader.fps
        kept_end = max(kept_end, t + step)
    if first is None:
        raise InvalidMediaError(f"{reader.name}: no keyframe at or before {float(start):g} s")
    return CopyPlan(first_pts=first, start=_time(reader, first), end=kept_end)


def video_packets(reader: MediaReader, plan: CopyPlan, end: Fraction | None) -> Iterator[Packet[VideoStream]]:
    """The kept video packets of `plan`, in decode order, timestamps still the input's."""
    video = reader.video
    if video is None:  # pragma: no cover - checked by plan_copy
        raise InvalidMediaError(f"{reader.name}: has no video stream")
    started = False
    for packet in reader.container.demux(video):
        if packet.pts is None or packet.size == 0:
            continue
        if not started:
            if packet.pts != plan.first_pts or not packet.is_keyframe:
                continue
            started = True
        if end is not None and _time(reader, packet.pts) >= end:
            return
        yield packet


def shift_packet(packet: Packet[Any], offset: int) -> None:
    """Move a packet's timestamps `offset` ticks (its stream's time base) earlier."""
    packet.pts = None if packet.pts is None else packet.pts - offset
    packet.dts = None if packet.dts is None else packet.dts - offset
