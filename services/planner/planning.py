"""Recipe + input cids → a plan whose every step has a deterministic id."""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from artdag_common.cid import validate_cid
from artdag_common.errors import InvalidInputError
from artdag_common.ids import sha3_hex, source_step_id, step_id
from artdag_common.operations import (
    GOP_FRAMES,
    OPERATIONS,
    BeatSyncConfig,
    ChainStage,
    MapConfig,
    RandomSliceConfig,
    SegmentAtConfig,
)
from artdag_common.recipe import Recipe, RecipeStep
from artdag_common.schemas import MAX_LIST_ITEMS, AnalysisReply, AnalyzeRequest, MediaInfo, Plan, PlanStep
from services.planner.handoff import piece_seconds, shape_plan


def bind_inputs(recipe: Recipe, inputs: Mapping[str, str]) -> dict[str, str]:
    """Check that every recipe input is bound to a well-formed cid, and nothing else is."""
    for name in inputs:
        if name not in recipe.inputs:
            known = ", ".join(sorted(recipe.inputs)) or "none"
            raise InvalidInputError(
                f"recipe {recipe.name!r} has no input {name!r} (its inputs: {known})", field=f"inputs.{name}"
            )
    bound: dict[str, str] = {}
    for name, spec in recipe.inputs.items():
        if name not in inputs:
            raise InvalidInputError(f"input {name!r} is required by the recipe", field=f"inputs.{name}")
        items = [item.strip() for item in inputs[name].split(",")] if spec.list else [inputs[name]]
        if not 1 <= len(items) <= MAX_LIST_ITEMS:
            raise InvalidInputError(f"a list of 1 to {MAX_LIST_ITEMS} cids, comma-separated", field=f"inputs.{name}")
        try:
            bound[name] = ",".join(validate_cid(item) for item in items)
        except InvalidInputError as exc:
            raise InvalidInputError(exc.message, field=f"inputs.{name}") from None
    return bound


def input_items(name: str, value: str, is_list: bool) -> list[tuple[str, str]]:
    """(label, cid) of each item a recipe input is bound to: `name`, or `name[i]` for a list."""
    return [(f"{name}[{i}]", cid) for i, cid in enumerate(value.split(","))] if is_list else [(name, value)]


@dataclass(frozen=True)
class Chunking:
    """How long per-frame effects are split: chunks of whole GOPs, each rendered by any executor."""

    chunk_seconds: float = 15.0
    gop_frames: int = GOP_FRAMES

    def chunk_frames(self, fps: float) -> int:
        gops = max(1, round(fps * self.chunk_seconds / self.gop_frames))
        return gops * self.gop_frames

    def ranges(self, media: MediaInfo | None) -> list[tuple[int, int]]:
        """Frame ranges to render separately, or [] when the input is better done in one piece."""
        if media is None or not media.has_video or not media.frame_count or not media.fps:
            return []
        if media.has_audio and media.audio_codec != "aac":
            return []  # the join copies the sound as it is: only AAC can be copied into MP4
        size = self.chunk_frames(media.fps)
        if media.frame_count < 2 * size:
            return []
        # Chunks of about the same length (whole GOPs), so that executors finish together.
        count = round(media.frame_count / size)
        gops = math.ceil(media.frame_count / self.gop_frames)
        size = math.ceil(gops / count) * self.gop_frames
        return [(start, min(start + size, media.frame_count)) for start in range(0, media.frame_count, size)]


def build_plan(
    recipe: Recipe,
    input_cids: Mapping[str, str],
    *,
    cluster_key: str | None = None,
    max_steps: int = 20_000,
    media: Mapping[str, MediaInfo] | None = None,
    chunking: Chunking | None = None,
    media_types: Mapping[str, str] | None = None,
    analyses: Mapping[str, AnalysisReply] | None = None,
) -> Plan:
    """Plan the recipe: steps in topological order, identical nodes merged into one step.

    `analyses` (ANALYZE step id → result) resolve analysis bindings and expand BEAT_SYNC;
    without them those stay placeholders (a preliminary plan, to validate early). Each recipe
    step becomes plan steps by its type's hook in `EXPANDERS` (one step of its type otherwise).
    """
    builder = PlanBuilder(recipe, input_cids, cluster_key, max_steps, media, media_types, analyses)
    for recipe_step in recipe.steps:
        expand = EXPANDERS.get(recipe_step.type, expand_node)
        builder.ids_by_name[recipe_step.id] = expand(builder, recipe_step)
    output = builder.ids_by_name[recipe.output]
    if isinstance(output, list):
        raise InvalidInputError(f"the output {recipe.output!r} is a list: SEQUENCE it into one clip", field="output")
    ordered, output_step = shape_plan(
        list(builder.steps.values()),
        output,
        cluster_key=cluster_key,
        media_by_step=builder.media_by_step,
        ranges=chunking.ranges if chunking is not None else None,
        max_steps=max_steps,
    )
    plan_id = sha3_hex({"recipe": recipe.recipe_id, "steps": [s.step_id for s in ordered], "output": output_step})
    return Plan(
        plan_id=plan_id,
        recipe_id=recipe.recipe_id,
        recipe_name=recipe.name,
        input_cids=dict(input_cids),
        steps=ordered,
        output_step=output_step,
    )


# What a recipe step stands for in the plan: one step's id, or a list's (MAP, SEGMENT_AT, a list input).
Ids = str | list[str]


@dataclass
class PlanBuilder:
    """A plan being built: its steps so far (identical ones added once), the ids each recipe step
    stands for, and the inputs' media by their SOURCE steps."""

    recipe: Recipe
    input_cids: Mapping[str, str]
    cluster_key: str | None
    max_steps: int
    media: Mapping[str, MediaInfo] | None
    media_types: Mapping[str, str] | None
    analyses: Mapping[str, AnalysisReply] | None
    steps: dict[str, PlanStep] = field(default_factory=dict)
    ids_by_name: dict[str, Ids] = field(default_factory=dict)
    media_by_step: dict[str, MediaInfo] = field(default_factory=dict)

    def add(self, step: PlanStep) -> str:
        if step.step_id not in self.steps:
            if len(self.steps) >= self.max_steps:
                raise InvalidInputError(
                    f"the plan would exceed {self.max_steps} steps (MAX_PLAN_STEPS)", field="recipe"
                )
            self.steps[step.step_id] = step
        return step.step_id

    def source(self, input_name: str) -> Ids:
        spec = self.recipe.inputs[input_name]
        media_types = self.media_types or {}
        ids = []
        for label, cid in input_items(input_name, self.input_cids[input_name], spec.list):
            if self.media and label in self.media:
                self.media_by_step[source_step_id(cid, self.cluster_key)] = self.media[label]
            ids.append(
                self.add(
                    PlanStep(
                        step_id=source_step_id(cid, self.cluster_key),
                        name=f"input:{label}",
                        node_type="SOURCE",
                        config={"cid": cid},
                        inputs=[],
                        op_version=OPERATIONS["SOURCE"].op_version,
                        source_cid=cid,
                        media_type=media_types.get(label, media_types.get(input_name, "application/octet-stream")),
                    )
                )
            )
        return ids if spec.list else ids[0]

    def node(self, node_type: str, name: str, config: Mapping[str, Any], input_ids: list[str]) -> str:
        op = OPERATIONS[node_type]
        return self.add(
            PlanStep(
                step_id=step_id(op.node_type, config, input_ids, op.op_version, self.cluster_key),
                name=name,
                node_type=op.node_type,
                config=dict(config),
                inputs=input_ids,
                op_version=op.op_version,
                level=1 + max((self.steps[i].level for i in input_ids), default=-1),
                media_type=op.output_media_type
                if op.video_slots != "none" or node_type != "SEGMENT"
                else self.steps[input_ids[0]].media_type,
            )
        )

    def sequence_tree(self, name: str, config: Mapping[str, Any], input_ids: list[str]) -> str:
        """A SEQUENCE of many inputs as a tree of steps.

        With transitions: n−1 pairwise steps in ⌈log₂ n⌉ levels, independent pairs rendered in
        parallel. Cuts copy their inputs' packets (no encoding to share out): one step for up to
        256 inputs, groups of 256 beyond that.
        """
        cut = (config.get("transition") or {}).get("type", "cut") == "cut"
        fan_in = OPERATIONS["SEQUENCE"].max_inputs if cut else 2
        level, items = 0, list(input_ids)
        while len(items) > fan_in:
            items = [
                self.node("SEQUENCE", f"{name}/L{level}.{k // fan_in}", config, items[k : k + fan_in])
                if len(items[k : k + fan_in]) > 1
                else items[k]
                for k in range(0, len(items), fan_in)
            ]
            level += 1
        return self.node("SEQUENCE", name, config, items)

    def resolved(self, recipe_step: RecipeStep) -> list[Ids]:
        """What each of the step's inputs stands for (a recipe input named for the first time is added)."""
        return [self.ids_by_name[ref] if ref in self.ids_by_name else self.source(ref) for ref in recipe_step.inputs]

    def input_ids(self, recipe_step: RecipeStep) -> list[str]:
        """The step's inputs as one list of step ids: lists flattened where the operation takes them."""
        op = OPERATIONS[recipe_step.type]
        resolved = self.resolved(recipe_step)
        return _flat(resolved) if op.takes_lists else [_single(r) for r in resolved]


def _single(value: Ids) -> str:
    if isinstance(value, list):  # pragma: no cover - the recipe parser refuses lists in single slots
        raise InvalidInputError("a list where a single clip is needed", field="recipe")
    return value


def _flat(values: list[Ids]) -> list[str]:
    return [item for value in values for item in (value if isinstance(value, list) else [value])]


def _normalised(node_type: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    return OPERATIONS[node_type].parse_config(dict(raw)).model_dump(mode="json", exclude_none=True)


# -- expansion: what each recipe step becomes in the plan --------------------------------------


def expand_node(plan: PlanBuilder, recipe_step: RecipeStep) -> Ids:
    """One step of the recipe step's own type over its inputs (every type without an expander of its own)."""
    return plan.node(recipe_step.type, recipe_step.id, recipe_step.config, plan.input_ids(recipe_step))


def _expand_source(plan: PlanBuilder, recipe_step: RecipeStep) -> Ids:
    return plan.source(recipe_step.config["input"])


def _expand_analyze(plan: PlanBuilder, recipe_step: RecipeStep) -> Ids:
    """An ANALYZE step of a recipe input; with its analysis done, the result's cid is its output."""
    input_ids = plan.input_ids(recipe_step)
    if plan.steps[input_ids[0]].node_type != "SOURCE":
        raise InvalidInputError(f"ANALYZE {recipe_step.id!r} must read a recipe input", field="recipe")
    op = OPERATIONS["ANALYZE"]
    reply = (plan.analyses or {}).get(recipe_step.id)
    return plan.add(
        PlanStep(
            step_id=step_id("ANALYZE", recipe_step.config, input_ids, op.op_version, plan.cluster_key),
            name=recipe_step.id,
            node_type="ANALYZE",
            config=dict(recipe_step.config),
            inputs=input_ids,
            op_version=op.op_version,
            level=1,
            media_type=op.output_media_type,
            source_cid=reply.result_cid if reply is not None else None,
        )
    )


def _expand_effect(plan: PlanBuilder, recipe_step: RecipeStep) -> Ids:
    """One EFFECT step; with the analyses done, the data its bindings name is put into its config."""
    input_ids = plan.input_ids(recipe_step)
    config = recipe_step.config
    if plan.analyses is not None:
        config = resolve_bindings(config, plan.analyses)
    return plan.node("EFFECT", recipe_step.id, config, input_ids)


def _expand_sequence(plan: PlanBuilder, recipe_step: RecipeStep) -> Ids:
    """A SEQUENCE of more than two inputs is a tree of steps (unless the recipe says `tree: false`)."""
    input_ids = plan.input_ids(recipe_step)
    if recipe_step.config.get("tree", True) and len(input_ids) > 2:
        return plan.sequence_tree(recipe_step.id, recipe_step.config, input_ids)
    return plan.node("SEQUENCE", recipe_step.id, recipe_step.config, input_ids)


def _expand_map(plan: PlanBuilder, recipe_step: RecipeStep) -> Ids:
    """A MAP: its operation applied to each item of a list, one step each (a RANDOM_SLICE is a seeded SEGMENT)."""
    name, items = recipe_step.id, plan.resolved(recipe_step)[0]
    cfg = MapConfig.model_validate(recipe_step.config)
    operation = cfg.operation.upper()
    results = []
    for k, item in enumerate(items if isinstance(items, list) else [items]):
        if operation == "RANDOM_SLICE":
            slice_cfg = RandomSliceConfig.model_validate(cfg.config)
            info = plan.media_by_step.get(item)
            room = max(0.0, info.duration_s - slice_cfg.duration) if info is not None else 0.0
            # Seeded from the item and the slice settings: the same step wherever it is planned.
            start = _seeded_fraction(int(sha3_hex([item, slice_cfg.seed])[:15], 16), k) * room
            results.append(
                plan.node(
                    "SEGMENT",
                    f"{name}[{k}]",
                    _normalised("SEGMENT", {"start": round(start, 4), "end": round(start + slice_cfg.duration, 4)}),
                    [item],
                )
            )
        else:
            results.append(plan.node(operation, f"{name}[{k}]", _normalised(operation, cfg.config), [item]))
    return results


def _expand_segment_at(plan: PlanBuilder, recipe_step: RecipeStep) -> Ids:
    """A SEGMENT_AT: a list of SEGMENTs between the analysed times (one placeholder step before the analysis)."""
    name, config, video = recipe_step.id, recipe_step.config, _single(plan.resolved(recipe_step)[0])
    cfg = SegmentAtConfig.model_validate(config)
    reply = (plan.analyses or {}).get(cfg.times_from)
    if reply is None:  # preliminary plan: the analysis has not run yet
        return [plan.node("SEGMENT_AT", name, config, [video])]
    data = feature_data(reply.result, cfg.feature) or {}
    marks = [float(t) for t in data.get("events", [])][:: cfg.every]
    cuts = list(itertools.pairwise(marks))[: cfg.max_segments]
    if not cuts:
        raise InvalidInputError(f"SEGMENT_AT {name!r}: fewer than two {cfg.feature} to cut between", field="recipe")
    return [
        plan.node(
            "SEGMENT",
            f"{name}[{k}]",
            _normalised("SEGMENT", {"start": round(a, 4), "end": round(b, 4), "precise": cfg.precise}),
            [video],
        )
        for k, (a, b) in enumerate(cuts)
    ]


def _expand_beat_sync(plan: PlanBuilder, recipe_step: RecipeStep) -> Ids:
    """A BEAT_SYNC: the video cut (or stretched) to the track's beats, joined, muxed with the track;
    one placeholder step before the analysis."""
    input_ids = plan.input_ids(recipe_step)
    if plan.analyses is None:
        return plan.node("BEAT_SYNC", recipe_step.id, recipe_step.config, input_ids)
    result = plan.analyses[recipe_step.inputs[1]].result
    name = recipe_step.id
    cfg = BeatSyncConfig.model_validate(recipe_step.config)
    video, analysis = input_ids
    beats = ((result.get("audio") or {}).get("beats") or {}).get("beat_times") or []
    marks = [float(t) for t in beats[:: cfg.every]]
    intervals = list(itertools.pairwise(marks))[: cfg.max_slices]
    if not intervals:
        raise InvalidInputError(f"BEAT_SYNC {name!r}: the track has too few beats to cut on", field="recipe")
    info = plan.media_by_step.get(video)
    duration = info.duration_s if info is not None and info.duration_s > 0 else None
    pieces: list[str] = []
    if cfg.mode == "stretch":
        part = (duration / len(intervals)) if duration else sum(b - a for a, b in intervals) / len(intervals)
        for k, (first, end) in enumerate(intervals):
            piece = plan.node(
                "SEGMENT",
                f"{name}/slice{k}",
                _normalised("SEGMENT", {"start": round(k * part, 4), "end": round((k + 1) * part, 4)}),
                [video],
            )
            speed = min(4.0, max(0.25, part / (end - first)))
            if abs(speed - 1.0) > 1e-3:
                piece = plan.node(
                    "TRANSFORM", f"{name}/stretch{k}", _normalised("TRANSFORM", {"speed": round(speed, 4)}), [piece]
                )
            pieces.append(piece)
    else:
        for k, (first, end) in enumerate(intervals):
            length = end - first
            start = first
            if duration and cfg.seed is not None:
                start = _seeded_fraction(cfg.seed, k) * max(0.0, duration - length)
            elif duration and first + length > duration:
                start = first % max(duration - length, 1e-3)
            pieces.append(
                plan.node(
                    "SEGMENT",
                    f"{name}/slice{k}",
                    _normalised("SEGMENT", {"start": round(start, 4), "end": round(start + length, 4)}),
                    [video],
                )
            )
    joined = (
        plan.sequence_tree(f"{name}/joined" if cfg.mux else name, _normalised("SEQUENCE", {}), pieces)
        if len(pieces) > 1
        else pieces[0]
    )
    if not cfg.mux:
        return joined
    track = plan.steps[analysis].inputs[0]
    return plan.node("MUX", name, _normalised("MUX", {"shortest": True}), [joined, track])


Expander = Callable[[PlanBuilder, RecipeStep], Ids]

# The recipe step types that are not one step of their own type (`expand_node`).
EXPANDERS: dict[str, Expander] = {
    "SOURCE": _expand_source,
    "ANALYZE": _expand_analyze,
    "EFFECT": _expand_effect,
    "SEQUENCE": _expand_sequence,
    "MAP": _expand_map,
    "SEGMENT_AT": _expand_segment_at,
    "BEAT_SYNC": _expand_beat_sync,
}


def analysis_requests(plan: Plan) -> dict[str, AnalyzeRequest]:
    """What to ask the analyzer for each ANALYZE step of a (preliminary) plan, by step name: its
    input's cid, the features and the params as the recipe wrote them (a tempo hint among them)."""
    by_id = {s.step_id: s for s in plan.steps}
    return {
        step.name: AnalyzeRequest(
            cid=by_id[step.inputs[0]].source_cid or "",
            features=step.config["features"],
            params=step.config.get("params", {}),
        )
        for step in plan.steps
        if step.node_type == "ANALYZE"
    }


def estimate_frames(plan: Plan, media: Mapping[str, MediaInfo]) -> dict[str, int]:
    """Video frames in each step's output, from the inputs' frame counts where known."""
    by_cid = {m.cid: m for m in media.values()}
    frames: dict[str, int] = {}
    for step in plan.steps:
        inputs = [frames.get(i, 0) for i in step.inputs]
        first = inputs[0] if inputs else 0
        if step.node_type == "SOURCE":
            info = by_cid.get(step.source_cid or "")
            count = info.frame_count if info is not None and info.frame_count else 0
        elif step.node_type == "CHAIN":
            count = _chain_frames(plan, step, step.config["stages"], first, by_cid)
            if step.config.get("frames"):
                count = int(step.config["frames"][1]) - int(step.config["frames"][0])
        elif step.node_type == "CUTS":
            count = _cuts_frames(plan, step, first, by_cid)
        elif step.node_type == "SEQUENCE":
            count = sum(inputs) - _crossfade_frames(plan, step, by_cid) * (len(inputs) - 1)
        elif step.node_type == "JOIN":
            count = sum(inputs[:-1])
        elif step.node_type in ("AUDIO_MIX", "ANALYZE", "NOOP"):
            count = 0
        elif step.node_type == "THUMBNAIL":
            count = 1
        else:
            count = _node_frames(plan, step, step.node_type, step.config, first, by_cid)
        frames[step.step_id] = max(0, count)
    return frames


def _cuts_frames(plan: Plan, step: PlanStep, first: int, by_cid: Mapping[str, MediaInfo]) -> int:
    """Frames of a CUTS step: its pieces' exact lengths, cut on the frames nearest (as it renders)."""
    stages = [[ChainStage.model_validate(stage) for stage in piece["stages"]] for piece in step.config["pieces"]]
    lengths = [piece_seconds(piece) for piece in stages]
    rate = _rate(plan, step, by_cid)
    if rate is None or any(length is None for length in lengths):
        return sum(_chain_frames(plan, step, piece["stages"], first, by_cid) for piece in step.config["pieces"])
    start = float(step.config.get("start_s", 0.0))
    total = sum(length or 0.0 for length in lengths)
    return math.floor((start + total) * rate + 0.5) - math.floor(start * rate + 0.5)


def _chain_frames(
    plan: Plan, step: PlanStep, stages: list[dict[str, Any]], first: int, by_cid: Mapping[str, MediaInfo]
) -> int:
    """Frames out of a line of fused nodes given `first` frames in."""
    count = first
    for stage in stages:
        count = _node_frames(plan, step, stage["type"], stage["config"], count, by_cid)
    return count


def _node_frames(
    plan: Plan, step: PlanStep, node_type: str, config: Mapping[str, Any], first: int, by_cid: Mapping[str, MediaInfo]
) -> int:
    """Frames out of one one-input node given `first` frames in."""
    if node_type == "SEGMENT":
        start = config.get("start", config.get("offset")) or 0.0
        end = config.get("end")
        if end is None and config.get("duration") is not None:
            end = float(start) + float(config["duration"])
        rate = _rate(plan, step, by_cid)
        if rate is None:
            return first
        left = first - round(float(start) * rate)
        return left if end is None else min(left, round((float(end) - float(start)) * rate))
    if node_type == "EFFECT" and config.get("frames"):
        return int(config["frames"][1]) - int(config["frames"][0])
    if node_type == "TRANSFORM":
        return round(first / float(config.get("speed", 1.0)))
    return first


def encoded_frames(plan: Plan, frames: Mapping[str, int]) -> dict[str, int]:
    """Frames each step passes through an encoder (what it costs): none where it copies packets.

    A JOIN, a keyframe-copy SEGMENT, a cut-only SEQUENCE of parts made for it and a MUX of
    such a part copy their video; everything else encodes every frame it outputs.
    """
    by_id = {s.step_id: s for s in plan.steps}

    def copies_from(step: PlanStep, refs: list[str]) -> bool:
        lossless = step.handoff == "lossless"
        return all(
            ref in by_id
            and by_id[ref].node_type not in ("SOURCE", "ANALYZE")
            and (by_id[ref].handoff == "lossless") == lossless
            for ref in refs
        )

    encoded: dict[str, int] = {}
    for step in plan.steps:
        copy = False
        if step.node_type in ("JOIN", "SOURCE", "ANALYZE", "AUDIO_MIX", "NOOP"):
            copy = True
        elif step.node_type == "SEGMENT":
            copy = step.config.get("precise") is False
        elif step.node_type == "SEQUENCE":
            cut = (step.config.get("transition") or {}).get("type", "cut") == "cut"
            copy = cut and copies_from(step, step.inputs)
        elif step.node_type == "MUX":
            copy = copies_from(step, step.inputs[:1])
        encoded[step.step_id] = 0 if copy else frames.get(step.step_id, 0)
    return encoded


def _crossfade_frames(plan: Plan, step: PlanStep, by_cid: Mapping[str, MediaInfo]) -> int:
    """Frames each crossfade of a SEQUENCE overlaps its neighbours by (0 for cuts and fades)."""
    transition = step.config.get("transition") or {}
    rate = _rate(plan, step, by_cid)
    if transition.get("type") != "crossfade" or rate is None:
        return 0
    return max(1, math.floor(float(transition.get("duration", 0.5)) * rate + 0.5))


def _rate(plan: Plan, step: PlanStep, by_cid: Mapping[str, MediaInfo]) -> float | None:
    """The frame rate of the source a step ultimately reads (first input, all the way up)."""
    by_id = {s.step_id: s for s in plan.steps}
    current: PlanStep | None = step
    while current is not None and current.node_type != "SOURCE":
        current = by_id.get(current.inputs[0]) if current.inputs else None
    if current is None:
        return None
    info = by_cid.get(current.source_cid or "")
    return info.fps if info is not None else None


def _seeded_fraction(seed: int, index: int) -> float:
    """A number in [0, 1) fixed by (seed, index): the same on every planner."""
    digest = hashlib.sha3_256(f"{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def resolve_bindings(config: Mapping[str, Any], analyses: Mapping[str, AnalysisReply]) -> dict[str, Any]:
    """Put the analysed data into bindings that name an ANALYZE step (so the step id covers the data)."""
    bindings = dict(config.get("bindings") or {})
    for name, binding in bindings.items():
        if not isinstance(binding, dict) or "analysis" not in binding:
            continue
        result = analyses[binding["analysis"]].result
        data = feature_data(result, str(binding["feature"]))
        if data is None:
            raise InvalidInputError(
                f"analysis {binding['analysis']!r} has no {binding['feature']!r} data", field=f"bindings.{name}"
            )
        rest = {k: v for k, v in binding.items() if k not in ("analysis", "feature", "times", "values", "events")}
        bindings[name] = rest | data
    return {**config, "bindings": bindings}


def feature_data(result: Mapping[str, Any], feature: str) -> dict[str, list[float]] | None:
    """A bindable feature of an analysis result as binding data: a curve or events."""
    audio = result.get("audio") or {}
    video = result.get("video") or {}
    if feature in ("beats", "downbeats"):
        beats = audio.get("beats") or {}
        key = "beat_times" if feature == "beats" else "downbeat_times"
        return {"events": list(beats[key])} if beats.get(key) else None
    if feature == "onsets":
        return {"events": list(audio["onsets"]["times"])} if (audio.get("onsets") or {}).get("times") else None
    if feature == "scene_changes":
        scenes = video.get("scene_changes") or {}
        return {"events": list(scenes["times"])} if scenes.get("times") else None
    if feature.startswith("spectrum."):
        spectrum = audio.get("spectrum") or {}
        values = (spectrum.get("bands") or {}).get(feature.removeprefix("spectrum."))
        return {"times": list(spectrum["times"]), "values": list(values)} if values else None
    curve = audio.get(feature) or video.get(feature)
    if isinstance(curve, dict) and curve.get("values"):
        return {"times": list(curve["times"]), "values": list(curve["values"])}
    return None
