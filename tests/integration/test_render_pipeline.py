"""Whole plans rendered as executors render them: one lossy generation per delivered frame.

Each test plans a recipe with the real planner, renders every step with the real
executor code (`tests.pipeline.render_plan`: hand-offs and seeds as in a run) and
looks at what would be delivered.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from artdag_cli.demo_media import write_click_track, write_test_clip
from artdag_common.cid import cid_of_file
from artdag_common.examples import example_path
from artdag_common.media_types import LOSSLESS_H264_PROFILE
from artdag_common.recipe import parse_recipe
from artdag_common.schemas import AnalysisReply, MediaInfo, Plan, PlanStep
from services.executor.operations import run_operation
from services.planner.planning import build_plan, encoded_frames, estimate_frames
from tests.pipeline import psnr, render_plan, rgb_frames

FPS = 25


def _noisy_clip(path: Path, *, width: int = 320, height: int = 240, frames: int = 40) -> None:
    """Fine detail that a lossy encoder cannot keep exactly: noise over moving gradients, with sound."""
    rng = np.random.default_rng(1234)
    texture = rng.integers(0, 256, size=(height, width * 2, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, width * 2, dtype=np.float32)[None, :, None]
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS, options={"crf": "8", "preset": "veryfast", "threads": "1"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=44100)
        audio.layout = "stereo"
        for index in range(frames):
            shifted = np.roll(texture, -3 * index, axis=1)[:, :width].astype(np.float32)
            picture = np.clip(0.6 * shifted + 0.4 * ramp[:, index : index + width], 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = round(frames / FPS * 44100)
        t = np.arange(samples, dtype=np.float32) / 44100
        tone = (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
        for start in range(0, samples, 1024):
            block = np.ascontiguousarray(np.stack([tone[start : start + 1024]] * 2))
            sound = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
            sound.sample_rate, sound.pts = 44100, start
            out.mux(audio.encode(sound))
        out.mux(audio.encode(None))


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("noisy") / "noisy.mp4"
    _noisy_clip(path)
    return path


def _inverts(count: int) -> str:
    steps = "\n".join(
        f"  - {{id: fx{k}, type: EFFECT, inputs: [{'video' if k == 0 else f'fx{k - 1}'}], config: {{effect: invert}}}}"
        for k in range(count)
    )
    return f"name: inverts\ninputs: [video]\nsteps:\n{steps}\noutput: fx{count - 1}\n"


def _render(text: str, sources: dict[str, Path], directory: Path, **plan_args: Any) -> tuple[Path, Plan]:
    bound = {name: cid_of_file(path) for name, path in sources.items()}
    plan = build_plan(parse_recipe(text), bound, **plan_args)
    outputs = render_plan(plan, {cid_of_file(p): p for p in sources.values()}, directory)
    return outputs[plan.output_step], plan


def test_two_and_six_chained_inverts_lose_the_same_to_one_lossy_generation(noisy: Path, tmp_path: Path) -> None:
    source = rgb_frames(noisy)
    quality = {}
    for count in (2, 6):
        out, plan = _render(_inverts(count), {"video": noisy}, tmp_path / str(count))
        kinds = [s.node_type for s in plan.steps]
        assert kinds == ["SOURCE", "CHAIN"], "a line of effects is one pass: decode once, encode once"
        quality[count] = psnr(source, rgb_frames(out))
    # invert∘invert is the identity: both are one encoding of the same picture.
    assert abs(quality[2] - quality[6]) <= 0.05, quality
    assert quality[2] > 25, quality


def test_an_intermediate_that_is_decoded_again_is_lossless(noisy: Path, tmp_path: Path) -> None:
    text = """
name: fade-in-negative
inputs: [video]
steps:
  - {id: negative, type: EFFECT, inputs: [video], config: {effect: invert}}
  - {id: both, type: SEQUENCE, inputs: [negative, video], config: {transition: {type: crossfade, duration: 0.2}}}
output: both
"""
    out, plan = _render(text, {"video": noisy}, tmp_path)
    steps = {s.name: s for s in plan.steps}
    assert steps["negative"].handoff == "lossless" and steps["both"].handoff == "deliver"
    intermediate = next(p for p in tmp_path.iterdir() if p.name.startswith("negative-"))
    with av.open(str(intermediate)) as container:
        assert container.streams.video[0].codec_context.profile == LOSSLESS_H264_PROFILE
        sound = [bytes(p) for p in container.demux(audio=0) if p.size]
    with av.open(str(noisy)) as container:
        assert sound == [bytes(p) for p in container.demux(audio=0) if p.size], "sound left alone is copied"
    # Rendering the same effect for delivery gives the same pictures after one lossy encode: the
    # lossless file holds exactly what that encoder was given.
    direct = tmp_path / "direct.mp4"
    run_operation("EFFECT", {"effect": "invert"}, [str(noisy)], str(direct), ["video"], seed=1)
    lossless, delivered = rgb_frames(intermediate), rgb_frames(direct)
    assert psnr(lossless, delivered) > 30
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.profile == "High"
        assert container.streams.audio[0].codec_context.name == "aac"


def _parts(noisy: Path, directory: Path, count: int = 4) -> list[Path]:
    parts = []
    for k in range(count):
        part = directory / f"part{k}.mp4"
        stages = [
            {"type": "SEGMENT", "config": {"start": 0.3 * k, "end": 0.3 * k + 0.4}},
            {"type": "TRANSFORM", "config": {"speed": 1.0 + 0.25 * k}},
        ]
        run_operation("CHAIN", {"stages": stages}, [str(noisy)], str(part), ["clip"], seed=k, handoff="part")
        parts.append(part)
    return parts


def test_a_cut_sequence_of_parts_copies_every_frame_and_encodes_only_the_sound(noisy: Path, tmp_path: Path) -> None:
    parts = _parts(noisy, tmp_path)
    out = tmp_path / "joined.mp4"
    run_operation("SEQUENCE", {}, [str(p) for p in parts], str(out), ["part"] * len(parts), handoff="deliver")
    expected = [frame for part in parts for frame in rgb_frames(part)]
    joined = rgb_frames(out)
    assert len(joined) == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(joined, expected, strict=True)), "copied, not re-encoded"
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert audio.codec_context.name == "aac", "the parts' lossless sound is encoded once, here"
        assert video.duration is not None and audio.duration is not None
        assert video.time_base is not None and audio.time_base is not None
        video_s = float(video.duration * video.time_base)
        assert video_s == pytest.approx(len(expected) / FPS, abs=1e-3)
        assert float(audio.duration * audio.time_base) == pytest.approx(video_s, abs=0.03), "no drift at the cuts"


def test_a_sequence_of_mixed_inputs_is_re_encoded_into_one_correct_file(noisy: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.mp4"
    write_test_clip(other, width=192, height=108, fps=30, duration_s=0.8, with_audio=False)
    part = _parts(noisy, tmp_path, count=1)[0]
    lossless = tmp_path / "lossless.mp4"
    run_operation("EFFECT", {"effect": "invert"}, [str(noisy)], str(lossless), ["clip"], handoff="lossless")
    inputs = [part, other, noisy, lossless]
    out = tmp_path / "mixed.mp4"
    run_operation("SEQUENCE", {}, [str(p) for p in inputs], str(out), ["x"] * len(inputs), handoff="deliver")
    frames = rgb_frames(out)
    # Sizes, frame rates and codecs differ: every clip is fitted to the first's size at its rate.
    expected = len(rgb_frames(part)) + round(0.8 * FPS) + 2 * len(rgb_frames(noisy))
    assert abs(len(frames) - expected) <= 2
    assert all(frame.shape == (240, 320, 3) for frame in frames)
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.profile == "High"
        assert container.streams.audio[0].codec_context.name == "aac"


def test_the_readme_beat_sync_encodes_each_output_frame_once(tmp_path: Path) -> None:
    clip, track = tmp_path / "clip.mp4", tmp_path / "track.wav"
    write_test_clip(clip, width=160, height=120, fps=FPS, duration_s=3.0)
    write_click_track(track, bpm=150, duration_s=3.0)
    beats = [round(0.4 * k, 3) for k in range(8)]
    reply = AnalysisReply(
        analysis_id="a" * 64,
        result_cid=cid_of_file(track),
        cached=False,
        result={"audio": {"beats": {"beat_times": beats}, "energy": {"times": [0.0], "values": [0.5]}}},
    )
    media = {
        "video": MediaInfo(
            cid=cid_of_file(clip),
            duration_s=3.0,
            has_video=True,
            has_audio=True,
            audio_codec="aac",
            fps=FPS,
            frame_count=75,
        )
    }
    out, plan = _render(
        example_path("beat-sync").read_text(),
        {"video": clip, "audio": track},
        tmp_path,
        analyses={"analyze_audio": reply},
        media=media,
    )
    steps = plan.steps
    frames = estimate_frames(plan, media)
    encoded = encoded_frames(plan, frames)
    cuts = [s for s in steps if s.node_type == "CUTS"]
    assert sum(len(s.config["pieces"]) for s in cuts) == len(beats) - 1, "every slice, cut together a group at a time"
    assert sum(encoded.values()) == sum(frames[s.step_id] for s in cuts), "the join and the mux copy"
    delivered = rgb_frames(out)
    assert sum(encoded.values()) / len(delivered) <= 1.2
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        assert container.streams.audio[0].codec_context.name == "aac"
        assert video.duration is not None and video.time_base is not None
        assert float(video.duration * video.time_base) == pytest.approx(beats[-1] - beats[0], abs=0.1)
    assert Fraction(len(delivered), FPS) == pytest.approx(beats[-1] - beats[0], abs=0.1)


def test_cuts_render_the_pieces_as_their_chains_would_in_one_pass(noisy: Path, tmp_path: Path) -> None:
    pieces: list[list[dict[str, Any]]] = [
        [{"type": "SEGMENT", "config": {"start": 0.8, "end": 1.2}}],
        [{"type": "SEGMENT", "config": {"start": 0.0, "end": 0.4}}, {"type": "TRANSFORM", "config": {"speed": 0.5}}],
        [{"type": "SEGMENT", "config": {"start": 0.4, "end": 1.4}}, {"type": "TRANSFORM", "config": {"speed": 2.5}}],
        [
            {"type": "SEGMENT", "config": {"start": 0.2, "end": 0.6}},
            {"type": "RESIZE", "config": {"width": 320, "height": 240}},
        ],
    ]
    together = tmp_path / "cuts.mp4"
    config = {"pieces": [{"stages": stages} for stages in pieces]}
    run_operation("CUTS", config, [str(noisy)], str(together), ["clip"], seed=3, handoff="lossless")
    expected = []
    for k, stages in enumerate(pieces):
        alone = tmp_path / f"piece{k}.mp4"
        if len(stages) == 1:
            run_operation(
                stages[0]["type"], stages[0]["config"], [str(noisy)], str(alone), ["clip"], handoff="lossless"
            )
        else:
            run_operation("CHAIN", {"stages": stages}, [str(noisy)], str(alone), ["clip"], handoff="lossless")
        expected += rgb_frames(alone)
    frames = rgb_frames(together)
    assert len(frames) == len(expected)
    # Lossless both ways: the same source pictures at the same times, back and forth, slow and fast.
    assert all(np.array_equal(a, b) for a, b in zip(frames, expected, strict=True))
    with av.open(str(together)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.duration is not None and audio.duration is not None
        assert video.time_base is not None and audio.time_base is not None
        seconds = float(video.duration * video.time_base)
        assert float(audio.duration * audio.time_base) == pytest.approx(seconds, abs=0.03), "each piece's sound fits it"


def test_slices_of_fractional_frames_do_not_drift_off_the_beat(noisy: Path, tmp_path: Path) -> None:
    # Ten slices of 0.126 s of source slowed to 0.504 s: 12.6 frames each at 25 fps.
    stages = [
        [
            {"type": "SEGMENT", "config": {"start": round(0.126 * k, 4), "end": round(0.126 * (k + 1), 4)}},
            {"type": "TRANSFORM", "config": {"speed": 0.25}},
        ]
        for k in range(10)
    ]
    halves = []
    for name, pieces, start_s in (("first", stages[:5], 0.0), ("second", stages[5:], 2.52)):
        out = tmp_path / f"{name}.mp4"
        config = {"pieces": [{"stages": piece} for piece in pieces], "start_s": start_s}
        run_operation("CUTS", config, [str(noisy)], str(out), ["clip"], seed=1, handoff="part")
        halves.append(len(rgb_frames(out)))
    # Each cut falls on the frame nearest its exact time (12.6 · k): 63 then 63 frames, 126 in all
    # (5.04 s), as the second group starts where the first ends — not 13 a slice (130: the cuts
    # 0.16 s late by the end, and later the longer the track).
    assert halves == [63, 63]


def test_a_run_of_pointwise_effects_is_one_colour_table_with_the_same_pixels() -> None:
    from artdag_common.operations import EffectConfig
    from artdag_effects import make_frame_processor
    from services.executor.primitives.chain import ColourTableStage, colour_table

    configs = [
        EffectConfig(effect="brightness_contrast", params={"brightness": 0.1, "contrast": 1.2}),
        EffectConfig(effect="saturation", params={"amount": 1.5}),
        EffectConfig(effect="hue_shift", params={"degrees": 90}),
        EffectConfig(effect="posterize", params={"levels": 6}),
    ]
    table = ColourTableStage(configs, (96, 64), [1, 2, 3, 4])
    frame = np.random.default_rng(7).integers(0, 256, size=(64, 96, 3), dtype=np.uint8)
    frame[0, :8] = [
        [0, 0, 0],
        [255, 255, 255],
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [1, 2, 3],
        [254, 1, 128],
        [7, 7, 7],
    ]
    expected = frame
    for config in configs:
        process = make_frame_processor(config.effect, config.params, {}, seed=1, width=96, height=64, fps=25.0)
        expected = process(expected, 0)
    made = table.effect(frame, 0)
    assert np.array_equal(made, expected), "the table holds what the effects make of each colour"
    assert np.array_equal(table.effect(frame[::-1].copy(), 1), expected[::-1]), "frames share nothing"
    # The chunks of one chain (other step ids, other seeds) use the table this worker already made.
    again = ColourTableStage([c.model_copy() for c in configs], (96, 64), [5, 6, 7, 8])
    assert np.array_equal(again.effect(frame, 0), expected)
    assert colour_table(configs) is colour_table([c.model_copy() for c in configs])


CROSSFADES = """
name: three-clips
inputs: [video]
steps:
  - {id: a, type: SEGMENT, inputs: [video], config: {start: 0, end: 0.6}}
  - {id: cut_b, type: SEGMENT, inputs: [video], config: {start: 0.4, end: 1.0}}
  - {id: b, type: EFFECT, inputs: [cut_b], config: {effect: invert}}
  - {id: c, type: SEGMENT, inputs: [video], config: {start: 0.8, end: 1.4}}
  - {id: all, type: SEQUENCE, inputs: [a, b, c], config: {transition: {type: KIND, duration: 0.12}}}
output: all
"""


def _noisy_media(noisy: Path) -> dict[str, MediaInfo]:
    return {
        "video": MediaInfo(
            cid=cid_of_file(noisy),
            duration_s=40 / FPS,
            has_video=True,
            has_audio=True,
            audio_codec="aac",
            width=320,
            height=240,
            fps=FPS,
            frame_count=40,
        )
    }


@pytest.mark.parametrize("kind", ["crossfade", "fade"])
def test_a_transition_renders_only_the_frames_around_it(kind: str, noisy: Path, tmp_path: Path) -> None:
    text = CROSSFADES.replace("KIND", kind)
    media = _noisy_media(noisy)
    split, plan = _render(text, {"video": noisy}, tmp_path / "split", media=media)
    # Without the sources' formats the planner cannot cut the clips into pieces: the SEQUENCE mixes whole clips.
    whole, whole_plan = _render(text, {"video": noisy}, tmp_path / "whole")
    assert [s.name for s in whole_plan.steps if s.node_type == "SEQUENCE"] == ["all/L0.0", "all"]

    steps = {s.name: s for s in plan.steps}
    assert steps["all"].config["transition"]["type"] == "cut", "the clips' bodies and the transitions are cut together"
    joints = [s for s in plan.steps if s.node_type == "SEQUENCE" and s.name != "all"]
    assert [s.name for s in joints] == [f"all/{kind}1", f"all/{kind}2"]
    assert all(steps[n].handoff == "lossless" for j in joints for n in (_name(plan, i) for i in j.inputs))
    assert {s.handoff for s in joints} == {"part"}
    bodies = [s for s in plan.steps if ".body" in s.name]
    assert [s.config["frames"] for s in bodies] == [[0, 12], [3, 12], [3, 15]]
    assert steps["all/1.body[3:12]"].covers == ["cut_b", "b"]

    frames = estimate_frames(plan, media)
    encoded = encoded_frames(plan, frames)
    mixed = sum(encoded[s.step_id] for s in joints)
    assert mixed == (2 * 3 if kind == "crossfade" else 2 * 6), "only the frames of the transitions are mixed"
    assert encoded[steps["all"].step_id] == 0, "the SEQUENCE copies every piece"

    ours, theirs = rgb_frames(split), rgb_frames(whole)
    assert len(ours) == len(theirs) == frames[steps["all"].step_id] == (39 if kind == "crossfade" else 45)
    # Both are one lossy generation of the same pictures, frame for frame: each frame is far closer
    # to its counterpart than to the frames beside it (the texture moves 3 pixels a frame, and the
    # middle clip is inverted), so a transition a frame early or late would stand out.
    assert psnr(ours, theirs) > 30
    for index, frame in enumerate(ours):
        same = psnr([frame], [theirs[index]])
        beside = [psnr([frame], [theirs[k]]) for k in (index - 1, index + 1) if 0 <= k < len(theirs)]
        assert same > 25 and same > max(beside) + 6, (index, same, beside)
    with av.open(str(split)) as container, av.open(str(whole)) as reference:
        sound = container.streams.audio[0]
        assert sound.codec_context.name == "aac"
        heard = sum(f.samples for f in container.decode(audio=0))
        expected = sum(f.samples for f in reference.decode(audio=0))
        assert abs(heard - expected) <= 1024, (heard, expected)
    # The first body's packets are in the output as they are: copied, not encoded again.
    body = _output_of(tmp_path / "split", bodies[0])
    with av.open(str(body)) as piece, av.open(str(split)) as container:
        first = [bytes(p) for p in piece.demux(video=0) if p.size]
        delivered = [bytes(p) for p in container.demux(video=0) if p.size]
    assert delivered[: len(first)] == first


def _name(plan: Plan, step_id: str) -> str:
    return next(s.name for s in plan.steps if s.step_id == step_id)


def _output_of(directory: Path, step: PlanStep) -> Path:
    return next(
        p for p in directory.iterdir() if p.name.startswith(f"{step.name.replace('/', '_')}-{step.step_id[:8]}")
    )
