from pathlib import Path
from typing import Any

import pytest

from artdag_common.errors import InvalidInputError
from artdag_common.ids import source_step_id
from artdag_common.operations import AnalysisParams
from artdag_common.recipe import Recipe, parse_recipe
from artdag_common.schemas import AnalysisReply, MediaInfo, RunStatus, StepEvent, StepStatus
from services.analyzer.features import analyze_file
from services.planner.planning import (
    Chunking,
    analysis_requests,
    bind_inputs,
    build_plan,
    encoded_frames,
    estimate_frames,
)
from services.planner.runs import apply_step_event, merge_states, new_run_state, ready_steps
from tests.unit.analyzer.media import click, place, write_wav

CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
OTHER = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"

CHAIN = """
name: chain
inputs: [video]
steps:
  - {id: a, type: RESIZE, inputs: [video], config: {width: 64, height: 48}}
  - {id: b, type: RESIZE, inputs: [a], config: {width: 32, height: 24}}
  - {id: twin, type: RESIZE, inputs: [video], config: {width: 64, height: 48}}
output: b
"""


# `a` is read twice (by the cut and by `twin`'s twin): a step of its own, copied into the output.
PAIR = """
name: pair
inputs: [video]
steps:
  - {id: a, type: RESIZE, inputs: [video], config: {width: 64, height: 48}}
  - {id: b, type: SEQUENCE, inputs: [a, a]}
  - {id: twin, type: RESIZE, inputs: [video], config: {width: 64, height: 48}}
output: b
"""


def test_plan_has_a_source_and_deterministic_step_ids() -> None:
    recipe = parse_recipe(PAIR)
    plan = build_plan(recipe, {"video": CID})
    assert [s.node_type for s in plan.steps] == ["SOURCE", "RESIZE", "SEQUENCE"]
    assert plan.steps[0].step_id == source_step_id(CID)
    assert plan.steps[0].source_cid == CID
    # Identical nodes (a and twin) are one step: rendered once.
    assert len({s.step_id for s in plan.steps}) == 3
    assert plan == build_plan(parse_recipe(PAIR), {"video": CID})
    assert plan.output_step == plan.steps[2].step_id
    assert plan.steps[2].inputs == [plan.steps[1].step_id] * 2
    # The cut copies `a` into the output: `a` is encoded for delivery, as a part.
    assert [s.handoff for s in plan.steps[1:]] == ["part", "deliver"]


def test_a_line_of_per_frame_nodes_is_one_fused_step() -> None:
    plan = build_plan(parse_recipe(CHAIN), {"video": CID})
    assert [s.node_type for s in plan.steps] == ["SOURCE", "CHAIN"]
    chain = plan.steps[1]
    assert chain.covers == ["a", "b"] and chain.name == "b" and chain.step_id == plan.output_step
    assert [stage["type"] for stage in chain.config["stages"]] == ["RESIZE", "RESIZE"]
    assert chain.config["stages"][1]["config"]["width"] == 32
    # The unused twin of `a` is not fused into anything and not rendered for the output.
    assert plan == build_plan(parse_recipe(CHAIN), {"video": CID})


def test_ids_change_with_the_input_content_and_the_cluster_key() -> None:
    recipe = parse_recipe(CHAIN)
    base = build_plan(recipe, {"video": CID})
    assert build_plan(recipe, {"video": OTHER}).output_step != base.output_step
    assert build_plan(recipe, {"video": CID}, cluster_key="k").output_step != base.output_step
    assert build_plan(recipe, {"video": CID}, cluster_key="k").plan_id != base.plan_id


def test_plan_size_is_bounded() -> None:
    with pytest.raises(InvalidInputError, match="MAX_PLAN_STEPS"):
        build_plan(parse_recipe(CHAIN), {"video": CID}, max_steps=2)


@pytest.mark.parametrize(
    ("inputs", "field", "words"),
    [
        ({}, "inputs.video", "required"),
        ({"video": CID, "audio": CID}, "inputs.audio", "has no input 'audio'"),
        ({"video": "not-a-cid"}, "inputs.video", "CID"),
    ],
)
def test_binding_inputs_names_the_problem(inputs: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        bind_inputs(parse_recipe(CHAIN), inputs)
    assert info.value.field == field
    assert words in info.value.message


def test_run_state_machine_dispatches_by_dependency_and_completes() -> None:
    plan = build_plan(parse_recipe(PAIR), {"video": CID})
    state = new_run_state("run-" + "0" * 32, plan)
    first, second = plan.steps[1], plan.steps[2]
    assert [s.step_id for s in ready_steps(state, plan)] == [first.step_id]
    apply_step_event(
        state, StepEvent(run_id=state.run_id, step_id=first.step_id, status=StepStatus.COMPLETED, output_cid=OTHER)
    )
    assert state.status == RunStatus.RUNNING
    assert [s.step_id for s in ready_steps(state, plan)] == [second.step_id]
    apply_step_event(
        state, StepEvent(run_id=state.run_id, step_id=second.step_id, status=StepStatus.COMPLETED, output_cid=CID)
    )
    assert state.status == RunStatus.COMPLETED
    assert state.output_cid == CID
    # A late duplicate changes nothing.
    assert not apply_step_event(
        state, StepEvent(run_id=state.run_id, step_id=second.step_id, status=StepStatus.FAILED, error="late")
    )


def test_two_replicas_views_of_a_run_merge_to_all_either_learnt() -> None:
    recipe = PAIR.replace(
        "id: twin, type: RESIZE, inputs: [video], config: {width: 64",
        "id: twin, type: RESIZE, inputs: [video], config: {width: 66",
    )
    plan = build_plan(parse_recipe(recipe), {"video": CID})
    by_name = {step.name: step.step_id for step in plan.steps}
    a, b, twin = by_name["a"], by_name["b"], by_name["twin"]
    ours = new_run_state("run-" + "0" * 32, plan)
    theirs = ours.model_copy(deep=True)
    # This replica heard `a` and `twin` were done; the other heard `a` too and then the output `b`.
    for step_id, cid in ((a, OTHER), (twin, OTHER)):
        done = StepEvent(run_id=ours.run_id, step_id=step_id, status=StepStatus.COMPLETED, output_cid=cid)
        apply_step_event(ours, done)
    apply_step_event(theirs, StepEvent(run_id=ours.run_id, step_id=a, status=StepStatus.COMPLETED, output_cid=OTHER))
    theirs.plan_cid = CID
    apply_step_event(theirs, StepEvent(run_id=ours.run_id, step_id=b, status=StepStatus.COMPLETED, output_cid=CID))
    assert theirs.status == RunStatus.COMPLETED and theirs.steps[twin].status == StepStatus.PENDING
    for merged in (merge_states(ours, theirs), merge_states(theirs, ours)):
        assert merged.status == RunStatus.COMPLETED and merged.output_cid == CID
        assert {merged.steps[s].status for s in (a, b, twin)} == {StepStatus.COMPLETED}
        assert merged.plan_cid == CID and merged.finished_at is not None
    assert ours.steps[b].status == StepStatus.PENDING, "the views merged are left as they were"
    # A step the finished view had not heard of is still recorded when its event comes late.
    late = StepEvent(run_id=ours.run_id, step_id=twin, status=StepStatus.COMPLETED, output_cid=OTHER)
    assert apply_step_event(theirs, late)
    assert theirs.steps[twin].output_cid == OTHER and theirs.status == RunStatus.COMPLETED
    assert not apply_step_event(theirs, StepEvent(run_id=ours.run_id, step_id=twin, status=StepStatus.RUNNING))


def test_a_failed_step_fails_the_run_with_its_name() -> None:
    plan = build_plan(parse_recipe(PAIR), {"video": CID})
    state = new_run_state("run-" + "0" * 32, plan)
    apply_step_event(
        state,
        StepEvent(
            run_id=state.run_id,
            step_id=plan.steps[1].step_id,
            status=StepStatus.FAILED,
            error="input 'video': cannot decode",
        ),
    )
    assert state.status == RunStatus.FAILED
    assert state.error == "step 'a' (RESIZE) failed: input 'video': cannot decode"
    assert ready_steps(state, plan) == []


LONG_EFFECT = """
name: long
inputs: [video]
steps:
  - {id: fx, type: EFFECT, inputs: [video], config: {effect: invert}}
output: fx
"""


def _media(frames: int, *, audio_codec: str | None = "aac", fps: float = 25.0) -> MediaInfo:
    return MediaInfo(
        cid=CID,
        duration_s=frames / fps,
        has_video=True,
        has_audio=audio_codec is not None,
        width=640,
        height=360,
        fps=fps,
        frame_count=frames,
        video_codec="h264",
        audio_codec=audio_codec,
    )


def test_a_long_per_frame_effect_is_split_into_gop_chunks_and_joined() -> None:
    chunking = Chunking(chunk_seconds=10)  # 250 frames at 25 fps → 5 GOPs of 48 = 240
    plan = build_plan(parse_recipe(LONG_EFFECT), {"video": CID}, media={"video": _media(1000)}, chunking=chunking)
    source, *chunks, join = plan.steps
    assert source.node_type == "SOURCE"
    # About 4 chunks of 240 frames: 4 of the same length in whole GOPs (6 × 48), the last one shorter.
    assert [c.config["frames"] for c in chunks] == [[0, 288], [288, 576], [576, 864], [864, 1000]]
    assert all(c.node_type == "EFFECT" and c.inputs == [source.step_id] for c in chunks)
    assert join.node_type == "JOIN"
    assert join.inputs == [*(c.step_id for c in chunks), source.step_id]
    assert plan.output_step == join.step_id
    again = build_plan(parse_recipe(LONG_EFFECT), {"video": CID}, media={"video": _media(1000)}, chunking=chunking)
    assert again == plan


@pytest.mark.parametrize(
    ("recipe", "media"),
    [
        (LONG_EFFECT, _media(400)),  # short: one piece
        (LONG_EFFECT, _media(1000, audio_codec="mp3")),  # sound that cannot be copied into MP4
        (LONG_EFFECT.replace("invert", "echo"), _media(1000)),  # temporal: needs every frame in order
        (
            LONG_EFFECT.replace("type: EFFECT", "type: RESIZE").replace("{effect: invert}", "{width: 64, height: 64}"),
            _media(1000),
        ),
    ],
)
def test_what_is_not_split(recipe: str, media: MediaInfo) -> None:
    plan = build_plan(parse_recipe(recipe), {"video": CID}, media={"video": media}, chunking=Chunking(10))
    assert [s.node_type for s in plan.steps] != [] and "JOIN" not in {s.node_type for s in plan.steps}
    assert len(plan.steps) == 2


def test_join_is_not_for_recipes() -> None:
    with pytest.raises(InvalidInputError, match="unknown node type 'JOIN'"):
        parse_recipe(LONG_EFFECT.replace("type: EFFECT", "type: JOIN"))


FIVE = """
name: five
inputs: [a, b, c, d, e]
steps:
  - {id: all, type: SEQUENCE, inputs: [a, b, c, d, e], config: {transition: {type: crossfade, duration: 0.25}}}
output: all
"""


def test_a_long_sequence_is_a_balanced_tree_of_pairs() -> None:
    cids = dict(zip("abcde", [CID, OTHER, *_more_cids(3)], strict=True))
    plan = build_plan(parse_recipe(FIVE), cids)
    by_id = {s.step_id: s for s in plan.steps}
    sequences = [s for s in plan.steps if s.node_type == "SEQUENCE"]
    assert [s.name for s in sequences] == ["all/L0.0", "all/L0.1", "all/L1.0", "all"]
    names = {s.step_id: s.name for s in plan.steps}
    assert [[names[i] for i in s.inputs] for s in sequences] == [
        ["input:a", "input:b"],
        ["input:c", "input:d"],
        ["all/L0.0", "all/L0.1"],
        ["all/L1.0", "input:e"],
    ]
    assert [s.level for s in sequences] == [1, 1, 2, 3]
    assert by_id[plan.output_step].name == "all"
    flat = build_plan(parse_recipe(FIVE.replace("duration: 0.25}", "duration: 0.25}, tree: false")), cids)
    assert [s.node_type for s in flat.steps].count("SEQUENCE") == 1


def test_a_tree_of_crossfades_over_clips_of_one_format_is_opened_into_pieces() -> None:
    cids = dict(zip("abcde", [CID, OTHER, *_more_cids(3)], strict=True))
    media = {name: _media(100).model_copy(update={"cid": cid}) for name, cid in cids.items()}
    plan = build_plan(parse_recipe(FIVE), cids, media=media)
    names = {s.step_id: s.name for s in plan.steps}
    sequences = [s for s in plan.steps if s.node_type == "SEQUENCE"]
    assert [s.name for s in sequences] == [*(f"all/crossfade{k}" for k in range(1, 5)), "all"]
    top = sequences[-1]
    assert top.config["transition"]["type"] == "cut" and top.step_id == plan.output_step
    # 0.25 s at 25 fps: crossfades of 6 frames; each clip's body is what no transition touches.
    assert [names[i] for i in top.inputs] == [
        "all/0.body[0:94]",
        "all/crossfade1",
        "all/1.body[6:94]",
        "all/crossfade2",
        "all/2.body[6:94]",
        "all/crossfade3",
        "all/3.body[6:94]",
        "all/crossfade4",
        "all/4.body[6:100]",
    ]
    assert [names[i] for i in sequences[0].inputs] == ["all/0.tail[94:100]", "all/1.head[0:6]"]
    frames = estimate_frames(plan, media)
    assert frames[plan.output_step] == 5 * 100 - 4 * 6
    # Bodies once; per crossfade the two ends (lossless) and the mix: 524 encodes for 476 frames.
    assert sum(encoded_frames(plan, frames).values()) == 3 * 88 + 2 * 94 + 4 * (6 + 6 + 6)

    # Long bodies are rendered in chunks of whole GOPs, as a long effect is; every piece has its sound.
    long = {name: _media(300).model_copy(update={"cid": cid}) for name, cid in cids.items()}
    chunked = build_plan(parse_recipe(FIVE), cids, media=long, chunking=Chunking(chunk_seconds=2))
    pieces = [s for s in chunked.steps if s.name.startswith("all/1.body")]
    assert [s.config["frames"] for s in pieces] == [[6 + 48 * k, 6 + 48 * (k + 1)] for k in range(6)]
    assert all(s.config["sound"] for s in chunked.steps if s.node_type == "CHAIN")
    assert not [s for s in chunked.steps if s.node_type == "JOIN"]

    # A clip of another size: the SEQUENCE fits and pads it, so it stays whole (a tree of pairs),
    # though the pair of clips of one format under it is still cut into pieces.
    media["e"] = media["e"].model_copy(update={"width": 320})
    mixed = build_plan(parse_recipe(FIVE), cids, media=media)
    mixed_names = [s.name for s in mixed.steps if s.node_type == "SEQUENCE"]
    assert mixed_names[-1] == "all" and "all/L1.0" in mixed_names and "all/L0.0/crossfade1" in mixed_names


def _more_cids(n: int) -> list[str]:
    from artdag_common.cid import cid_of_bytes

    return [cid_of_bytes(bytes([i])) for i in range(n)]


def test_levels_and_media_types() -> None:
    text = """
inputs:
  clip: {type: video}
  song: {type: audio}
steps:
  - {id: cut, type: SEGMENT, inputs: [song], config: {start: 0, end: 1}}
  - {id: mix, type: AUDIO_MIX, inputs: [cut, song]}
  - {id: small, type: RESIZE, inputs: [clip], config: {width: 32, height: 32}}
  - {id: both, type: MUX, inputs: [small, mix]}
output: both
"""
    plan = build_plan(
        parse_recipe(text), {"clip": CID, "song": OTHER}, media_types={"clip": "video/mp4", "song": "audio/wav"}
    )
    info = {s.name: (s.level, s.media_type) for s in plan.steps}
    assert info == {
        "input:song": (0, "audio/wav"),
        "cut": (1, "audio/wav"),
        "mix": (2, "audio/mp4"),
        "input:clip": (0, "video/mp4"),
        "small": (1, "video/mp4"),
        "both": (3, "video/mp4"),
    }


BEAT_SYNC = """
name: sync
inputs:
  video: {type: video}
  audio: {type: audio}
steps:
  - {id: listen, type: ANALYZE, inputs: [audio], config: {features: [beats, energy]}}
  - {id: synced, type: BEAT_SYNC, inputs: [video, listen], config: {mode: MODE}}
output: synced
"""


def _analysis(beats: list[float]) -> AnalysisReply:
    result = {"audio": {"beats": {"beat_times": beats}, "energy": {"times": [0.0, 1.0], "values": [0.2, 1.0]}}}
    return AnalysisReply(analysis_id="a" * 64, result_cid=OTHER, cached=False, result=result)


def _video(duration: float) -> MediaInfo:
    return MediaInfo(cid=CID, duration_s=duration, has_video=True, has_audio=False, fps=25.0, frame_count=100)


def test_beat_sync_cut_slices_the_video_on_the_beats_and_muxes_the_track() -> None:
    recipe = parse_recipe(BEAT_SYNC.replace("MODE", "cut"))
    plan = build_plan(
        recipe,
        {"video": CID, "audio": OTHER},
        analyses={"listen": _analysis([0.5, 1.0, 1.5, 2.0])},
        media={"video": _video(10.0)},
    )
    segments = [stage["config"] for s in plan.steps for stage in _stages(s) if stage["type"] == "SEGMENT"]
    assert [(c["start"], c["end"]) for c in segments] == [(0.5, 1.0), (1.0, 1.5), (1.5, 2.0)]
    # The slices of one source are cut together in one pass (CUTS), which names the nodes it covers.
    cuts = next(s for s in plan.steps if s.node_type == "CUTS")
    assert cuts.covers == ["synced/slice0", "synced/slice1", "synced/slice2"]
    assert cuts.config["audio"] is False, "the MUX replaces the sound: the slices need none"
    analyze = next(s for s in plan.steps if s.node_type == "ANALYZE")
    assert analyze.source_cid == OTHER, "an analysis is done before the run: its result is its output"
    output = next(s for s in plan.steps if s.step_id == plan.output_step)
    assert output.node_type == "MUX"
    names = {s.step_id: s.name for s in plan.steps}
    assert names[output.inputs[1]] == "input:audio"


def test_beat_sync_stretch_fits_equal_parts_of_the_video_to_each_interval() -> None:
    recipe = parse_recipe(BEAT_SYNC.replace("MODE", "stretch"))
    plan = build_plan(
        recipe,
        {"video": CID, "audio": OTHER},
        analyses={"listen": _analysis([0.0, 0.5, 1.5])},
        media={"video": _video(2.0)},
    )
    stages = [stage for s in plan.steps for stage in _stages(s)]
    segments = [stage["config"] for stage in stages if stage["type"] == "SEGMENT"]
    assert [(c["start"], c["end"]) for c in segments] == [(0.0, 1.0), (1.0, 2.0)]
    speeds = [stage["config"]["speed"] for stage in stages if stage["type"] == "TRANSFORM"]
    assert speeds == [2.0]  # 1 s of video into 0.5 s; the second part already lasts 1 s
    # Slices and stretches are one pass (CUTS), its part copied into the cut, the cut into the MUX.
    cuts = next(s for s in plan.steps if s.node_type == "CUTS")
    assert cuts.covers == ["synced/slice0", "synced/stretch0", "synced/slice1"] and cuts.handoff == "part"
    assert {s.node_type: s.handoff for s in plan.steps if s.node_type in ("SEQUENCE", "MUX")} == {
        "SEQUENCE": "part",
        "MUX": "deliver",
    }


def _stages(step: Any) -> list[dict[str, Any]]:
    """A step's nodes as CHAIN stages (a plain step is a chain of one)."""
    if step.node_type == "CHAIN":
        return list(step.config["stages"])
    if step.node_type == "CUTS":
        return [stage for piece in step.config["pieces"] for stage in piece["stages"]]
    return [{"type": step.node_type, "config": step.config}]


def test_beat_sync_needs_beats_and_refs_must_exist() -> None:
    with pytest.raises(InvalidInputError, match="too few beats"):
        build_plan(
            parse_recipe(BEAT_SYNC.replace("MODE", "cut")),
            {"video": CID, "audio": OTHER},
            analyses={"listen": _analysis([1.0])},
        )
    with pytest.raises(InvalidInputError, match="must be an ANALYZE step with beats"):
        parse_recipe(BEAT_SYNC.replace("MODE", "cut").replace("features: [beats, energy]", "features: [energy]"))


def _hinted(bpm: float) -> Recipe:
    hint = f"features: [beats, energy], params: {{tempo_hint: {bpm:g}}}"
    return parse_recipe(BEAT_SYNC.replace("MODE", "cut").replace("features: [beats, energy]", hint))


def _slices(recipe: Recipe, analysis: AnalysisReply) -> int:
    plan = build_plan(
        recipe, {"video": CID, "audio": OTHER}, analyses={"listen": analysis}, media={"video": _video(10.0)}
    )
    return sum(stage["type"] == "SEGMENT" for s in plan.steps for stage in _stages(s))


def test_a_tempo_hint_goes_to_the_analyzer_and_beat_sync_cuts_at_its_level() -> None:
    plain, half = parse_recipe(BEAT_SYNC.replace("MODE", "cut")), _hinted(70)
    asked = {
        name: analysis_requests(build_plan(r, {"video": CID, "audio": OTHER}))
        for name, r in [("plain", plain), ("half", half)]
    }
    assert asked["plain"]["listen"].params == {} and asked["half"]["listen"].params == {"tempo_hint": 70}
    assert asked["half"]["listen"].cid == OTHER and asked["half"]["listen"].features == ["beats", "energy"]
    # The analyzer answers at the level asked for: every quarter note of 140 BPM, or every other one.
    quarters = [round(i * 60 / 140, 4) for i in range(17)]
    assert _slices(plain, _analysis(quarters)) == 16
    assert _slices(half, _analysis(quarters[::2])) == 8


def _half_time_track(path: Path, seconds: float = 8.0) -> None:
    """140 BPM hats on every quarter note, a kick on every other one: 140 or 70, as you tap it."""
    beat = 60 / 140
    events = [(i * beat, click(1000, 0.25)) for i in range(int(seconds / beat))]
    events += [(i * beat, click(60, 0.9)) for i in range(0, int(seconds / beat), 2)]
    write_wav(path, [place(seconds, events)])


def test_the_same_track_hinted_at_half_the_tempo_gives_half_the_slices(tmp_path: Path) -> None:
    track = tmp_path / "half-time.wav"
    _half_time_track(track)
    slices: dict[int, int] = {}
    tempo: dict[int, float] = {}
    for bpm in (140, 70):
        recipe = _hinted(bpm)
        # What the planner asks the analyzer, analysed as the analyzer does.
        request = analysis_requests(build_plan(recipe, {"video": CID, "audio": OTHER}))["listen"]
        result = analyze_file(track, request.features, AnalysisParams.model_validate(request.params))
        tempo[bpm] = result["audio"]["beats"]["tempo"]
        reply = AnalysisReply(analysis_id="a" * 64, result_cid=OTHER, cached=False, result=result)
        slices[bpm] = _slices(recipe, reply)
    assert tempo[140] == pytest.approx(140, rel=0.02) and tempo[70] == pytest.approx(70, rel=0.02)
    assert slices[140] >= 14 and abs(2 * slices[70] - slices[140]) <= 2


def test_two_bound_effects_plan_before_and_fuse_after_their_analysis() -> None:
    recipe = parse_recipe("""
name: two-bound
inputs:
  video: {type: video}
  audio: {type: audio}
steps:
  - {id: listen, type: ANALYZE, inputs: [audio], config: {features: [energy]}}
  - id: bright
    type: EFFECT
    inputs: [video]
    config: {effect: brightness_contrast, bindings: {brightness: {analysis: listen, feature: energy, range: [0, 0.2]}}}
  - id: rich
    type: EFFECT
    inputs: [bright]
    config: {effect: saturation, bindings: {amount: {analysis: listen, feature: energy, range: [0.5, 1.5]}}}
output: rich
""")
    # Before the analysis ran (a dry run's first plan): the effects stay apart, their bindings unresolved.
    early = build_plan(recipe, {"video": CID, "audio": OTHER})
    assert [s.node_type for s in early.steps if s.node_type in ("EFFECT", "CHAIN")] == ["EFFECT", "EFFECT"]
    # With the data in, they fuse into one pass as any two effects do.
    final = build_plan(recipe, {"video": CID, "audio": OTHER}, analyses={"listen": _analysis([0.0])})
    chain = next(s for s in final.steps if s.node_type == "CHAIN")
    assert [stage["type"] for stage in chain.config["stages"]] == ["EFFECT", "EFFECT"]


def test_bindings_that_follow_analysis_carry_the_data_into_the_step_id() -> None:
    recipe = parse_recipe("""
name: glow
inputs:
  video: {type: video}
  audio: {type: audio}
steps:
  - {id: listen, type: ANALYZE, inputs: [audio], config: {features: [energy]}}
  - id: glow
    type: EFFECT
    inputs: [video]
    config: {effect: bloom, bindings: {intensity: {analysis: listen, feature: energy, range: [0, 1]}}}
output: glow
""")
    binding = recipe.steps[-1].config["bindings"]["intensity"]
    assert binding["analysis"] == "listen" and "values" not in binding
    first = build_plan(recipe, {"video": CID, "audio": OTHER}, analyses={"listen": _analysis([0.0])})
    effect = next(s for s in first.steps if s.node_type == "EFFECT")
    assert effect.config["bindings"]["intensity"]["values"] == [0.2, 1.0]
    louder = _analysis([0.0])
    louder.result["audio"]["energy"]["values"] = [0.9, 1.0]
    second = build_plan(recipe, {"video": CID, "audio": OTHER}, analyses={"listen": louder})
    assert second.output_step != first.output_step, "other analysis data, another step"
    with pytest.raises(InvalidInputError, match="does not extract 'beats'"):
        parse_recipe("""
inputs: {video: {type: video}, audio: {type: audio}}
steps:
  - {id: listen, type: ANALYZE, inputs: [audio], config: {features: [energy]}}
  - id: fx
    type: EFFECT
    inputs: [video]
    config: {effect: zoom, bindings: {amount: {analysis: listen, feature: beats}}}
output: fx
""")


LISTS = """
name: montage
inputs:
  clips: {type: video, list: true}
steps:
  - {id: small, type: MAP, inputs: [clips], config: {operation: RESIZE, config: {width: 64, height: 48}}}
  - {id: all, type: SEQUENCE, inputs: [small]}
output: all
"""


def test_a_list_input_is_mapped_then_sequenced() -> None:
    cids = _more_cids(3)
    plan = build_plan(parse_recipe(LISTS), {"clips": ",".join(cids)})
    names = [s.name for s in plan.steps]
    assert names[:4] == ["input:clips[0]", "input:clips[1]", "input:clips[2]", "small[0]"]
    resizes = [s for s in plan.steps if s.node_type == "RESIZE"]
    assert len(resizes) == 3 and all(s.config["width"] == 64 for s in resizes)
    sequences = [s for s in plan.steps if s.node_type == "SEQUENCE"]
    assert [len(s.inputs) for s in sequences] == [3]  # cuts copy packets: one step for all
    with pytest.raises(InvalidInputError) as info:
        bind_inputs(parse_recipe(LISTS), {"clips": f"{cids[0]},not-a-cid"})
    assert info.value.field == "inputs.clips"


def test_random_slices_are_seeded_and_fit_their_clip() -> None:
    text = LISTS.replace(
        "{operation: RESIZE, config: {width: 64, height: 48}}",
        "{operation: RANDOM_SLICE, config: {duration: 1.0, seed: 7}}",
    )
    cids = _more_cids(2)
    media = {
        f"clips[{i}]": MediaInfo(cid=c, duration_s=5.0, has_video=True, has_audio=False, fps=25.0)
        for i, c in enumerate(cids)
    }
    first = build_plan(parse_recipe(text), {"clips": ",".join(cids)}, media=media)
    again = build_plan(parse_recipe(text), {"clips": ",".join(cids)}, media=media)
    assert first == again
    slices = [s.config for s in first.steps if s.node_type == "SEGMENT"]
    assert len(slices) == 2
    assert all(0 <= c["start"] <= 4.0 and c["end"] - c["start"] == pytest.approx(1.0) for c in slices)
    reseeded = build_plan(parse_recipe(text.replace("seed: 7", "seed: 8")), {"clips": ",".join(cids)}, media=media)
    assert [s.config for s in reseeded.steps if s.node_type == "SEGMENT"] != slices


def test_segment_at_cuts_between_analysed_times() -> None:
    text = """
inputs: {video: {type: video}, audio: {type: audio}}
steps:
  - {id: listen, type: ANALYZE, inputs: [audio], config: {features: [beats]}}
  - {id: cuts, type: SEGMENT_AT, inputs: [video], config: {times_from: listen, every: 2}}
  - {id: back, type: SEQUENCE, inputs: [cuts]}
output: back
"""
    plan = build_plan(
        parse_recipe(text), {"video": CID, "audio": OTHER}, analyses={"listen": _analysis([0.0, 0.5, 1.0, 1.5, 2.0])}
    )
    stages = [stage["config"] for s in plan.steps for stage in _stages(s) if stage["type"] == "SEGMENT"]
    assert [(c["start"], c["end"]) for c in stages] == [(0.0, 1.0), (1.0, 2.0)]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            LISTS.replace("inputs: [small]", "inputs: [clips]")
            .replace("type: SEQUENCE", "type: RESIZE")
            .replace(
                "{id: all, type: RESIZE, inputs: [clips]}",
                "{id: all, type: RESIZE, inputs: [clips], config: {width: 8, height: 8}}",
            ),
            "is a list; RESIZE takes single clips",
        ),
        (LISTS.replace("list: true", "list: false"), "MAP needs a list"),
        (LISTS.replace("output: all", "output: small"), "SEQUENCE it"),
        (LISTS.replace("operation: RESIZE", "operation: JOIN"), "cannot be mapped"),
    ],
)
def test_list_misuse_is_refused(text: str, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        build_plan(parse_recipe(text), {"clips": CID})


def test_mutated_example_recipes_are_planned_or_refused_never_crash() -> None:
    """Every example recipe, with fields removed, retyped and swapped for odd values a few at a
    time (a fixed seed: the same recipes each run): parsing and planning either succeed or raise
    a typed error that says what is wrong (a 4xx), never anything else (a 500)."""
    import random
    from pathlib import Path

    import yaml

    from artdag_common.errors import ArtdagError
    from artdag_common.examples import example_path

    examples = [path.read_text() for path in sorted(Path(example_path("resize")).parent.glob("*.yaml"))]
    odd: list[object] = [0, -1, 2**63, 1e308, 0.5, "", "x", "NOOP", "SOURCE", None, True, [], {}, [1], {"a": 1}]
    odd += ["video", "beats", "a" * 100, "../etc/passwd", [None], {"analysis": "x", "feature": "energy"}]
    keys = ["id", "type", "inputs", "config", "mode", "every", "features", "times_from", "operation", "items"]
    keys += ["seed", "tree", "input", "effect", "params", "bindings", "start", "end", "offset", "duration"]
    rng = random.Random(5)

    def mutate(value: object) -> None:
        if not isinstance(value, dict | list) or not value:
            return
        slot: Any = rng.choice(list(value)) if isinstance(value, dict) else rng.randrange(len(value))
        roll = rng.random()
        if roll < 0.3:
            value[slot] = rng.choice(odd)
        elif roll < 0.4:
            del value[slot]
        elif roll < 0.5:  # grows: a field more, or an item twice
            if isinstance(value, dict):
                value[rng.choice(keys)] = rng.choice(odd)
            else:
                value.append(value[slot])
        else:
            mutate(value[slot])

    outcomes = {"planned": 0, "refused": 0}
    for _ in range(1500):
        document = yaml.safe_load(rng.choice(examples))
        for _ in range(rng.randint(1, 4)):
            mutate(document)
        text = yaml.safe_dump(document)
        try:
            recipe = parse_recipe(text)
            build_plan(recipe, bind_inputs(recipe, dict.fromkeys(recipe.inputs, CID)))
            outcomes["planned"] += 1
        except ArtdagError:
            outcomes["refused"] += 1
    assert outcomes["planned"] > 50 and outcomes["refused"] > 500, outcomes


TEN_CUTS = "\n".join(
    [
        "name: ten-cuts",
        "inputs: [video]",
        "steps:",
        *[
            f"  - {{id: cut{k}, type: SEGMENT, inputs: [video], config: {{start: {5 * k + 1}, end: {5 * k + 4}}}}}"
            for k in range(10)
        ],
        f"  - {{id: montage, type: SEQUENCE, inputs: [{', '.join(f'cut{k}' for k in range(10))}]}}",
        "output: montage",
    ]
)

FIVE_EFFECTS = """
name: grade
inputs: [video]
steps:
  - {id: punch, type: EFFECT, inputs: [video], config: {effect: brightness_contrast, params: {contrast: 1.2}}}
  - {id: rich, type: EFFECT, inputs: [punch], config: {effect: saturation, params: {amount: 1.3}}}
  - {id: warm, type: EFFECT, inputs: [rich], config: {effect: hue_shift, params: {degrees: 20}}}
  - {id: edges, type: EFFECT, inputs: [warm], config: {effect: vignette}}
  - {id: negative, type: EFFECT, inputs: [edges], config: {effect: invert}}
output: negative
"""


def _clip(cid: str, seconds: float) -> MediaInfo:
    frames = round(30 * seconds)
    return MediaInfo(
        cid=cid, duration_s=seconds, has_video=True, has_audio=True, audio_codec="aac", fps=30.0, frame_count=frames
    )


@pytest.mark.parametrize("case", ["beat-sync", "ten-cuts", "five-effects"])
def test_each_output_frame_is_encoded_about_once(case: str) -> None:
    from artdag_common.examples import example_path
    from services.planner.planning import encoded_frames, estimate_frames

    if case == "beat-sync":
        beats = [round(60 / 117 * k, 4) for k in range(69)]  # ~35 s of a 117 BPM track
        recipe, inputs = example_path("beat-sync").read_text(), {"video": CID, "audio": OTHER}
        media = {"video": _clip(CID, 20.0)}
        analyses = {"analyze_audio": _analysis(beats)}
    else:
        recipe, inputs = (TEN_CUTS if case == "ten-cuts" else FIVE_EFFECTS), {"video": CID}
        media, analyses = {"video": _clip(CID, 60.0)}, None
    plan = build_plan(parse_recipe(recipe), inputs, media=media, analyses=analyses, chunking=Chunking())
    output_frames = estimate_frames(plan, media)
    encoded = encoded_frames(plan, output_frames)
    ratio = sum(encoded.values()) / output_frames[plan.output_step]
    assert 0.95 <= ratio <= 1.2, (case, ratio, [(s.node_type, encoded[s.step_id]) for s in plan.steps])
    kinds = {s.node_type for s in plan.steps}
    if case == "five-effects":
        # One pass for all five, split into chunks that render in parallel and join by copy.
        assert kinds == {"SOURCE", "CHAIN", "JOIN"}
    else:
        assert "CUTS" in kinds and "SEGMENT" not in kinds and "TRANSFORM" not in kinds
