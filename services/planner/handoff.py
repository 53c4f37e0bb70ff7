"""From the recipe's logical steps to the steps executors run: fused, chunked, with hand-offs.

A recipe's nodes are the unit of meaning; what an executor runs is chosen here so that
every frame of the run's output passes the lossy encoder once:

1. **Fusion.** A line of one-input per-frame nodes (SEGMENT, TRANSFORM, RESIZE, EFFECT)
   whose middle results only the next node reads becomes one CHAIN step: one decode,
   every node's filters in memory, one encode. Time changes (a SEGMENT's window, a
   TRANSFORM's speed) may not follow an EFFECT in a chain (the effect would see other
   frames than it does on its own), so a chain breaks there.
   **Cuts.** The slices a cut-only SEQUENCE takes one after another from one source (beat-synced
   slices, a montage of segments) become a few CUTS steps of about `GROUP_SECONDS` of output each:
   one decoder and one encoder per group instead of per slice, groups rendered in parallel.
2. **Chunks.** A long per-frame render that does not change time (an EFFECT, or a CHAIN of
   pictures only) is split into chunks of whole GOPs, each rendered by any executor and
   joined back by stream copy (JOIN).
   **Transitions.** A crossfade or fade SEQUENCE of clips cut from sources of one format is
   rendered in pieces: each clip's frames away from its transitions (a ``part``), and per
   transition one small SEQUENCE of the frames around it (the two clips' ends, ``lossless``);
   the SEQUENCE itself becomes a cut that copies them all, so only the transitions are mixed.
3. **Hand-offs.** Walking back from the output, each step learns how its consumers read it:
   a JOIN, a cut-only SEQUENCE and a MUX's video copy its packets, so it is encoded with the
   delivery encoder as a ``part``; anything that decodes it gets a ``lossless`` intermediate;
   the output itself is ``deliver``. The hand-off is part of the step id (it changes the bytes).

Ids are computed last, from the inputs' final ids, so the same recipe and inputs give the
same steps on every planner.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from artdag_common.errors import InvalidInputError
from artdag_common.ids import step_id
from artdag_common.operations import (
    CHAIN_STAGE_TYPES,
    OPERATIONS,
    ChainConfig,
    ChainStage,
    CutsConfig,
    CutsPiece,
    SegmentConfig,
    SequenceConfig,
    TimeWindow,
    TransformConfig,
)
from artdag_common.schemas import MediaInfo, PlanStep

RangeFinder = Callable[[MediaInfo | None], list[tuple[int, int]]]
"""Frame ranges to render a long input in (empty: in one piece); see `planning.Chunking`."""

GROUP_SECONDS = 8.0
"""About how much output one CUTS step renders: small enough to spread over executors, big enough
that a slice's fixed costs (an encoder start, a seek) are shared by many slices."""


@dataclass
class _Node:
    """A step being shaped: ids are given once the graph is final."""

    key: str
    node_type: str
    name: str
    config: dict[str, Any]
    inputs: list[str]
    step: PlanStep | None = None  # the logical step it stands for (None for a CHAIN or a chunk)
    covers: list[str] = field(default_factory=list)
    handoff: str = "deliver"


def fusable(step: PlanStep) -> bool:
    """Whether a logical step may be a stage of a CHAIN."""
    if step.node_type not in CHAIN_STAGE_TYPES or len(step.inputs) != 1:
        return False
    if step.node_type == "SEGMENT" and step.config.get("precise") is False:
        return False  # a keyframe copy decodes nothing: nothing to fuse
    if step.node_type == "EFFECT" and _unresolved_bindings(step.config):
        # Planned before its analysis ran: the plan made once the data is in fuses it.
        return False
    return not (step.node_type == "EFFECT" and step.config.get("frames") is not None)


def _unresolved_bindings(config: dict[str, object]) -> bool:
    """Whether an EFFECT's bindings still name an ANALYZE step instead of carrying its data."""
    bindings = config.get("bindings")
    return isinstance(bindings, dict) and any(isinstance(b, dict) and "analysis" in b for b in bindings.values())


def _stage(step: PlanStep) -> ChainStage:
    return ChainStage.model_validate({"type": step.node_type, "config": step.config})


def _temporal(stage: ChainStage) -> bool:
    """Whether an EFFECT stage carries state from frame to frame (so it cannot be chunked)."""
    from artdag_effects import get_effect

    return stage.type == "EFFECT" and get_effect(str(stage.config["effect"])).temporal


def shape_plan(
    steps: list[PlanStep],
    output: str,
    *,
    cluster_key: str | None,
    media_by_step: Mapping[str, MediaInfo],
    ranges: RangeFinder | None,
    max_steps: int,
) -> tuple[list[PlanStep], str]:
    """Fuse, chunk and assign hand-offs (see the module docstring); returns the steps and the output's id."""
    by_key = {s.step_id: s for s in steps}
    consumers: dict[str, int] = {}
    for s in steps:
        for i in s.inputs:
            consumers[i] = consumers.get(i, 0) + 1
    readers: dict[str, list[str]] = {}
    for s in steps:
        for i in s.inputs:
            readers.setdefault(i, []).append(s.step_id)

    # 1. Fusion: lines of fusable steps, each link read by the next one only.
    nodes: dict[str, _Node] = {}
    fused: set[str] = set()
    for s in steps:
        if s.step_id in fused:
            continue
        line = [s]
        if fusable(s):
            effect_seen = s.node_type == "EFFECT"
            tail = s
            while tail.step_id != output and consumers.get(tail.step_id) == 1:
                nxt = by_key[readers[tail.step_id][0]]
                if not fusable(nxt) or nxt.step_id in fused:
                    break
                if effect_seen and _stage(nxt).changes_time():
                    break
                effect_seen = effect_seen or nxt.node_type == "EFFECT"
                line.append(nxt)
                tail = nxt
        if len(line) == 1:
            nodes[s.step_id] = _Node(s.step_id, s.node_type, s.name, dict(s.config), list(s.inputs), step=s)
            continue
        config = ChainConfig(stages=[_stage(x) for x in line]).model_dump(mode="json", exclude_none=True)
        last = line[-1]
        nodes[last.step_id] = _Node(
            last.step_id, "CHAIN", last.name, config, list(s.inputs), covers=[x.name for x in line]
        )
        fused.update(x.step_id for x in line)

    # 1b. Cuts: the slices a cut-only SEQUENCE takes from one source, rendered a group at a time.
    _group_cuts(nodes)
    # 1c. Transitions: only the frames around each crossfade or fade are rendered together.
    _split_transitions(nodes, media_by_step, ranges)

    # 2. Chunks: long picture-only renders split at GOP boundaries, joined by stream copy.
    if ranges is not None:
        for key, node in list(nodes.items()):
            if not chunkable(node.node_type, node.config) or node.config.get("frames") is not None:
                continue
            source = nodes.get(node.inputs[0])
            parts = ranges(media_by_step.get(node.inputs[0])) if source is not None else []
            if not parts:
                continue
            chunk_keys = []
            for first, end in parts:
                chunk_key = f"{key}[{first}:{end}]"
                nodes[chunk_key] = _Node(
                    chunk_key,
                    node.node_type,
                    f"{node.name}[{first}:{end}]",
                    {**node.config, "frames": [first, end]},
                    list(node.inputs),
                    covers=node.covers or [node.name],
                )
                chunk_keys.append(chunk_key)
            covers = node.covers or [node.name]
            nodes[key] = _Node(key, "JOIN", node.name, {}, [*chunk_keys, node.inputs[0]], covers=covers)

    # Topological order: every input before its reader (chunks were appended after their JOIN).
    order = _topological(nodes)

    # 3. Hand-offs, from the output back: every reader of a step is settled before the step.
    wants: dict[str, set[str]] = {}
    for key in reversed(order):
        node = nodes[key]
        wanted = wants.get(key, set())
        if key == output or not wanted:
            node.handoff = "deliver"
        else:
            node.handoff = "lossless" if "lossless" in wanted else "part"
        for slot, ref in enumerate(node.inputs):
            wants.setdefault(ref, set()).add(_wanted(node, slot))

    # 4. Ids, from the inputs' final ids.
    ids: dict[str, str] = {}
    result: dict[str, PlanStep] = {}
    levels: dict[str, int] = {}
    for key in order:
        node = nodes[key]
        inputs = [ids[i] for i in node.inputs]
        logical = node.step
        if logical is not None and logical.node_type in ("SOURCE", "ANALYZE"):
            ids[key] = logical.step_id
            result.setdefault(logical.step_id, logical)
            levels[logical.step_id] = logical.level
            continue
        op = OPERATIONS[node.node_type]
        handoff = node.handoff if op.output_media_type == "video/mp4" else "deliver"
        if logical is not None and handoff == "deliver" and inputs == logical.inputs:
            # Nothing about it changed (a NOOP tree, a final step on untouched inputs): its id stands.
            ids[key] = logical.step_id
            if logical.step_id not in result:
                result[logical.step_id] = logical
                levels[logical.step_id] = logical.level
            continue
        new_id = step_id(op.node_type, node.config, inputs, op.op_version, cluster_key, handoff)
        ids[key] = new_id
        if new_id in result:
            continue  # two nodes that came out the same: one step
        if len(result) >= max_steps:
            raise InvalidInputError(f"the plan would exceed {max_steps} steps (MAX_PLAN_STEPS)", field="recipe")
        level = 1 + max((levels[i] for i in inputs), default=-1)
        levels[new_id] = level
        media_type = logical.media_type if logical is not None else op.output_media_type
        result[new_id] = PlanStep(
            step_id=new_id,
            name=node.name,
            node_type=op.node_type,
            config=node.config,
            inputs=inputs,
            op_version=op.op_version,
            level=level,
            media_type=media_type,
            handoff=handoff,
            covers=node.covers,
        )
    return list(result.values()), ids[output]


def _piece_stages(node: _Node) -> list[ChainStage] | None:
    """A SEQUENCE input's nodes as chain stages, if it can be a piece of a CUTS step."""
    if node.node_type == "CHAIN":
        if node.config.get("frames") is not None:
            return None
        return [ChainStage.model_validate(stage) for stage in node.config["stages"]]
    if node.step is not None and fusable(node.step):
        return [_stage(node.step)]
    return None


def piece_seconds(stages: list[ChainStage]) -> float | None:
    """How long a piece's output lasts, when its windows say (None: to the end of its input)."""
    seconds = TimeWindow.of(stages).seconds()
    return None if seconds is None else float(seconds)


_NEUTRAL_TRANSFORM = TransformConfig().model_dump(mode="json", exclude_none=True, exclude={"speed"})


def _picture(stages: list[ChainStage]) -> list[Any]:
    """What a piece does to pictures (its size and looks), without its windows and speeds."""
    kept: list[Any] = []
    for stage in stages:
        if stage.type == "SEGMENT":
            continue
        config = dict(stage.config)
        if stage.type == "TRANSFORM":
            config.pop("speed", None)
            if config == _NEUTRAL_TRANSFORM:
                continue  # only a speed change
        kept.append((stage.type, config))
    return kept


def _group_cuts(nodes: dict[str, _Node]) -> None:
    """Replace runs of slices of one source in cut-only SEQUENCEs by a few CUTS steps."""
    reads: dict[str, int] = {}
    readers: dict[str, list[tuple[str, int]]] = {}
    for key, node in nodes.items():
        for slot, ref in enumerate(node.inputs):
            reads[ref] = reads.get(ref, 0) + 1
            readers.setdefault(ref, []).append((key, slot))
    for key, node in list(nodes.items()):
        if node.node_type != "SEQUENCE" or (node.config.get("transition") or {}).get("type", "cut") != "cut":
            continue
        # A MUX that takes only this SEQUENCE's pictures replaces its sound: the pieces need none.
        audio = [nodes[k].node_type for k, slot in readers.get(key, []) if slot == 0] != ["MUX"] or reads[key] != 1
        runs: list[list[tuple[str, list[ChainStage], float]]] = []
        inputs: list[str | list[tuple[str, list[ChainStage], float]]] = []
        for ref in node.inputs:
            piece = nodes[ref]
            stages = _piece_stages(piece) if reads.get(ref) == 1 else None
            seconds = piece_seconds(stages) if stages is not None else None
            run = runs[-1] if runs and inputs and inputs[-1] is runs[-1] else None
            if stages is None or seconds is None or (run is not None and not _same_cut(nodes, run[0], piece, stages)):
                inputs.append(ref)
                continue
            if run is None:
                run = []
                runs.append(run)
                inputs.append(run)
            run.append((ref, stages, seconds))
        if not any(len(run) > 1 for run in runs):
            continue
        new_inputs: list[str] = []
        position = 0
        for item in inputs:
            if isinstance(item, str):
                new_inputs.append(item)
                position += 1
                continue
            if len(item) == 1:
                new_inputs.append(item[0][0])
                position += 1
                continue
            elapsed = 0.0  # seconds of this run's output before the group
            for group in _split(item):
                first, end = position, position + len(group)
                position = end
                start_s = round(elapsed, 6)
                elapsed += sum(seconds for _, _, seconds in group)
                group_key = f"{key}[{first}:{end}]"
                covers = [name for ref, _, _ in group for name in (nodes[ref].covers or [nodes[ref].name])]
                config = CutsConfig(
                    pieces=[CutsPiece(stages=stages) for _, stages, _ in group], audio=audio, start_s=start_s
                ).model_dump(mode="json", exclude_none=True)
                source = nodes[group[0][0]].inputs
                for ref, _, _ in group:
                    del nodes[ref]
                nodes[group_key] = _Node(
                    group_key, "CUTS", f"{node.name}[{first}:{end}]", config, list(source), covers=covers
                )
                new_inputs.append(group_key)
        node.inputs = new_inputs


@dataclass
class _Clip:
    """One input of a transition SEQUENCE as frames of a chain over a source."""

    ref: str
    source: str
    stages: list[ChainStage]
    frames: int


def _clip_of(nodes: Mapping[str, _Node], ref: str, media_by_step: Mapping[str, MediaInfo]) -> _Clip | None:
    """`ref` as a chain over a source whose frame count the plan knows exactly, if it is one."""
    node = nodes[ref]
    if node.step is not None and node.step.node_type == "SOURCE":
        stages = [ChainStage(type="SEGMENT", config=SegmentConfig(start=0).model_dump(mode="json", exclude_none=True))]
        source = ref
    else:
        found = _piece_stages(node)
        if found is None or len(node.inputs) != 1:
            return None
        stages, source = found, node.inputs[0]
    info = media_by_step.get(source)
    if info is None or not info.has_video or not info.fps or not info.width or not info.height:
        return None
    if any(stage.type not in ("SEGMENT", "EFFECT") or _temporal(stage) for stage in stages):
        return None  # a speed, a new size or state carried between frames: rendered whole
    if any(stage.type == "EFFECT" and stage.config.get("size") is not None for stage in stages):
        return None
    fps = _rate(info)
    window = TimeWindow.of(stages)
    counted = bool(info.frame_count) and abs(info.duration_s * float(fps) - (info.frame_count or 0)) < 0.5
    if window.end is not None and window.end <= Fraction(info.duration_s) - 1 / fps:
        end = window.end
    elif counted:
        end = Fraction(info.frame_count or 0) / fps  # to the input's end: its last frame, as counted
        end = end if window.end is None else min(end, window.end)
    else:
        return None  # the input's length is not known to the frame
    frames = math.floor((end - window.start) * fps + Fraction(1, 2))
    return _Clip(ref, source, stages, frames) if frames > 0 else None


def _rate(info: MediaInfo) -> Fraction:
    """A probed frame rate as the exact fraction the executor reads (30000/1001 for 29.97)."""
    return Fraction(info.fps or 0).limit_denominator(1001)


def _flattened(nodes: Mapping[str, _Node], node: _Node, reads: Mapping[str, int], top: str = "") -> list[str]:
    """A transition SEQUENCE's clips, with the pairwise tree the planner made under it opened up."""
    top = top or node.name
    refs: list[str] = []
    for ref in node.inputs:
        inner = nodes[ref]
        tree = inner.name.startswith(f"{top}/L")  # planning's pairwise levels under this SEQUENCE
        if inner.node_type == "SEQUENCE" and tree and inner.config == node.config and reads[ref] == 1:
            refs.extend(_flattened(nodes, inner, reads, top))
        else:
            refs.append(ref)
    return refs


def _split_transitions(
    nodes: dict[str, _Node], media_by_step: Mapping[str, MediaInfo], ranges: RangeFinder | None
) -> None:
    """Render each crossfade or fade SEQUENCE of same-format clips as pieces and transitions, cut together.

    A clip of n frames with transitions of t frames on both sides becomes its head [0, t),
    its body [t, n − t) and its tail [n − t, n), each a CHAIN piece with its sound; each
    transition is a two-clip SEQUENCE (the same config) of one clip's tail and the next one's
    head. The SEQUENCE is then a cut of bodies and transitions, which copies their packets.
    A long body is rendered in chunks, as a long effect is. Clips of other sizes or rates,
    changed speeds, temporal effects or unknown lengths leave the SEQUENCE whole.
    """
    reads: dict[str, int] = {}
    for node in nodes.values():
        for ref in node.inputs:
            reads[ref] = reads.get(ref, 0) + 1
    for key in reversed(list(nodes)):  # a tree's top before its levels, which it takes apart
        if key not in nodes or nodes[key].node_type != "SEQUENCE":
            continue
        node = nodes[key]
        config = SequenceConfig.model_validate(node.config)
        kind = config.transition.type
        if kind == "cut":
            continue
        refs = _flattened(nodes, node, reads)
        clips = [
            _clip_of(nodes, ref, media_by_step) if reads.get(ref) == 1 or _is_source(nodes[ref]) else None
            for ref in refs
        ]
        if len(clips) < 2 or any(clip is None for clip in clips):
            continue
        found = [clip for clip in clips if clip is not None]
        infos = [media_by_step[clip.source] for clip in found]
        shapes = {(info.width, info.height, _rate(info)) for info in infos}
        if len(shapes) != 1:
            continue
        width, height, fps = shapes.pop()
        if config.target_size == "explicit" and (config.width, config.height) != (width, height):
            continue
        if (width or 0) % 2 or (height or 0) % 2:
            continue
        overlap = max(1, math.floor(Fraction(config.transition.duration) * fps + Fraction(1, 2)))
        last = len(found) - 1
        if any(clip.frames < overlap * ((i > 0) + (i < last)) for i, clip in enumerate(found)):
            continue  # too short for its transitions: the whole SEQUENCE says so when it renders

        bodies = _body_ranges(ranges, media_by_step[found[0].source], fps)
        _cut_into_pieces(nodes, key, node, found, overlap, refs, bodies)


def _body_ranges(
    ranges: RangeFinder | None, info: MediaInfo, fps: Fraction
) -> Callable[[int, int], list[tuple[int, int]]]:
    """How a clip's body [first, end) is rendered: in chunks when long (`ranges`), else whole."""

    def split(first: int, end: int) -> list[tuple[int, int]]:
        length = end - first
        body = info.model_copy(update={"frame_count": length, "duration_s": float(length / fps)})
        parts = ranges(body) if ranges is not None else []
        return [(first + a, first + b) for a, b in parts] or [(first, end)]

    return split


def _cut_into_pieces(
    nodes: dict[str, _Node],
    key: str,
    node: _Node,
    clips: list[_Clip],
    overlap: int,
    refs: list[str],
    bodies: Callable[[int, int], list[tuple[int, int]]],
) -> None:
    """Replace a transition SEQUENCE's clips by pieces and two-clip transitions, and make it a cut."""
    kind = SequenceConfig.model_validate(node.config).transition.type

    def piece(clip: _Clip, index: int, first: int, end: int, role: str) -> str:
        piece_key = f"{key}/{index}.{role}[{first}:{end}]"
        chain = ChainConfig(stages=clip.stages, frames=(first, end), sound=True)
        nodes[piece_key] = _Node(
            piece_key,
            "CHAIN",
            f"{node.name}/{index}.{role}[{first}:{end}]",
            chain.model_dump(mode="json", exclude_none=True),
            [clip.source],
            covers=list(nodes[clip.ref].covers or [nodes[clip.ref].name]),
        )
        return piece_key

    last = len(clips) - 1
    cut_inputs: list[str] = []
    tails: list[str] = []
    for index, clip in enumerate(clips):
        head_end = overlap if index > 0 else 0
        body_end = clip.frames - overlap if index < last else clip.frames
        if index > 0:
            head = piece(clip, index, 0, head_end, "head")
            joint = f"{key}/{kind}{index}"
            nodes[joint] = _Node(
                joint,
                "SEQUENCE",
                f"{node.name}/{kind}{index}",
                dict(node.config),
                [tails[-1], head],
                covers=[node.name],
            )
            cut_inputs.append(joint)
        if body_end > head_end:
            cut_inputs.extend(piece(clip, index, a, b, "body") for a, b in bodies(head_end, body_end))
        if index < last:
            tails.append(piece(clip, index, body_end, clip.frames, "tail"))
    for ref in _tree_and_clips(nodes, node, refs):
        if not _is_source(nodes[ref]):
            del nodes[ref]
    cut = {**node.config, "transition": {"type": "cut"}}
    node.config = SequenceConfig.model_validate(cut).model_dump(mode="json", exclude_none=True)
    node.inputs = cut_inputs
    node.covers = [node.name]


def has_transition(node_type: str, config: Mapping[str, Any]) -> bool:
    """Whether a step is a crossfade or fade SEQUENCE (its clips are cut into pieces, given their formats)."""
    return node_type == "SEQUENCE" and (config.get("transition") or {}).get("type", "cut") != "cut"


def _is_source(node: _Node) -> bool:
    return node.step is not None and node.step.node_type == "SOURCE"


def _tree_and_clips(nodes: Mapping[str, _Node], node: _Node, clips: list[str]) -> list[str]:
    """The inner SEQUENCEs of a flattened tree and its clips: what the pieces replace."""
    found: list[str] = []
    for ref in node.inputs:
        if ref in clips:
            found.append(ref)
        else:
            found.append(ref)
            found.extend(_tree_and_clips(nodes, nodes[ref], clips))
    return found


def _same_cut(
    nodes: Mapping[str, _Node], first: tuple[str, list[ChainStage], float], piece: _Node, stages: list[ChainStage]
) -> bool:
    """Whether `piece` can be cut together with the run that starts with `first`: same source, same looks."""
    return nodes[first[0]].inputs == piece.inputs and _picture(first[1]) == _picture(stages)


def _split(run: list[tuple[str, list[ChainStage], float]]) -> list[list[tuple[str, list[ChainStage], float]]]:
    """Consecutive groups of about `GROUP_SECONDS` of output each, of similar lengths."""
    total = sum(seconds for _, _, seconds in run)
    count = max(1, min(len(run), round(total / GROUP_SECONDS)))
    groups: list[list[tuple[str, list[ChainStage], float]]] = [[]]
    done = 0.0
    for item in run:
        # Start the next group once this one holds its share of the whole.
        if groups[-1] and done >= total * len(groups) / count and len(groups) < count:
            groups.append([])
        groups[-1].append(item)
        done += item[2]
    return groups


def _wanted(reader: _Node, slot: int) -> str:
    """How `reader` wants the input in `slot`: copied into what it writes (part), or decoded (lossless)."""
    copies = (
        reader.node_type == "JOIN"
        or (reader.node_type == "MUX" and slot == 0)
        or (reader.node_type == "SEQUENCE" and (reader.config.get("transition") or {}).get("type", "cut") == "cut")
    )
    if copies and reader.handoff in ("deliver", "part"):
        return "part"
    return "lossless"


def chunkable(node_type: str, config: Mapping[str, Any]) -> bool:
    """Whether a step renders each frame on its own, without changing time (so it can be split into chunks)."""
    if node_type == "CHAIN":
        stages = [ChainStage.model_validate(stage) for stage in config["stages"]]
        return not any(stage.changes_time() or _temporal(stage) for stage in stages)
    if node_type != "EFFECT" or config.get("frames") is not None:
        return False
    # A temporal effect carries state from frame to frame: it must see the whole input in one pass.
    return not _temporal(ChainStage(type="EFFECT", config=dict(config)))


def _topological(nodes: Mapping[str, _Node]) -> list[str]:
    """Keys with every input before its reader, in first-seen order otherwise (deterministic)."""
    order: list[str] = []
    done: set[str] = set()
    for root in nodes:
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            key, expanded = stack.pop()
            if key in done:
                continue
            if expanded:
                done.add(key)
                order.append(key)
                continue
            stack.append((key, True))
            for ref in reversed(nodes[key].inputs):
                if ref not in done:
                    stack.append((ref, False))
    return order
