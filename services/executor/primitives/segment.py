"""SEGMENT: keep a time range, frame-accurately (re-encode) or by keyframe stream copy."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from artdag_common.errors import InvalidInputError
from services.executor.encoding import open_output
from services.executor.frames import resize_steps
from services.executor.media import MediaReader, probe
from services.executor.primitives.copy import plan_copy, shift_packet
from services.executor.primitives.single import even_size, render_single


def render_segment(
    input_path: Path, output_path: Path, *, start: float, end: float | None, precise: bool = True
) -> None:
    """Keep [`start`, `end`) seconds of `input_path` (`end` None: to the end).

    `precise` decodes and re-encodes, so the output starts exactly at `start`.
    Otherwise the streams are copied without re-encoding from the keyframe at or
    before `start` (the output may start earlier) up to `end`; audio packets
    are copied over the same span. Raises `InvalidInputError` if `start` is at
    or past the end of the input.
    """
    t0 = Fraction(start)
    t1 = None if end is None else Fraction(end)
    with MediaReader(input_path) as reader:
        duration = reader.duration
    if duration and t0 >= duration:
        raise InvalidInputError(f"starts at {start:g} s, after the input ends ({float(duration):.3f} s)", field="start")
    if precise:
        width, height = even_size(probe(input_path))
        render_single(
            input_path,
            output_path,
            width=width,
            height=height,
            start=t0,
            end=t1,
            plan=lambda frame, sar: resize_steps(frame, sar, width, height, mode="stretch"),
        )
        return
    _copy_segment(input_path, output_path, t0, t1)


def _copy_segment(input_path: Path, output_path: Path, start: Fraction, end: Fraction | None) -> None:
    with MediaReader(input_path) as scan:
        plan = plan_copy(scan, start, end)
    with MediaReader(input_path) as reader, open_output(output_path) as out:
        video = reader.video
        if video is None or video.time_base is None:  # pragma: no cover - plan_copy checked
            return
        vout = out.add_stream_from_template(video)
        vout.metadata.clear()
        audio = reader.audio
        aout = out.add_stream_from_template(audio) if audio is not None else None
        if aout is not None:
            aout.metadata.clear()
        v_offset = plan.first_pts
        a_offset = 0
        a_end: int | None = None
        if audio is not None and audio.time_base is not None:
            a_offset = round((plan.start + reader.origin) / audio.time_base)
            if end is not None:
                a_end = round((min(end, plan.end) + reader.origin) / audio.time_base)
        state = "before"  # -> "copying" at the keyframe -> "done" at the first picture past the end
        streams = [video] if audio is None else [video, audio]
        for packet in reader.container.demux(*streams):
            if packet.pts is None or packet.size == 0:
                continue
            if packet.stream is video:
                if state == "before" and packet.pts == plan.first_pts and packet.is_keyframe:
                    state = "copying"
                if state == "copying" and end is not None and packet.pts * video.time_base - reader.origin >= end:
                    state = "done"
                if state != "copying":
                    continue
                shift_packet(packet, v_offset)
                packet.stream = vout
                out.mux(packet)
            elif aout is not None:
                if a_end is not None and packet.pts >= a_end:
                    if state == "done":
                        break
                    continue
                if packet.pts < a_offset:
                    continue
                shift_packet(packet, a_offset)
                packet.stream = aout
                out.mux(packet)
