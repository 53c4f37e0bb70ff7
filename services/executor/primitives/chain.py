"""CHAIN: several per-frame nodes rendered in one decode → filters → encode pass.

The planner fuses a line of one-input nodes (SEGMENT, TRANSFORM, RESIZE, EFFECT) whose
middle results nobody else reads into one CHAIN step, so that a frame is decoded once,
goes through every node's filters and effects in memory, and is encoded once. The time
changes of the chain (segment windows, speeds) all come before its first effect, so
they compose into one window and one speed on the source; the picture stages then run in
the recipe's order, each seeing the same sizes, frame indices and times it would see on
its own. Consecutive effects hand each other RGB arrays without a conversion between.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
from av.video.frame import VideoFrame

from artdag_common.errors import InvalidInputError, PermanentError
from artdag_common.ids import sha3_hex
from artdag_common.operations import (
    OPERATIONS,
    ChainConfig,
    ChainStage,
    EffectConfig,
    ResizeConfig,
    TimeWindow,
    TransformConfig,
)
from services.executor.frames import (
    U8,
    Step,
    VideoChain,
    from_rgb,
    orient_steps,
    resize_steps,
    rgb_to_output,
    scale_step,
    slot_of,
    source_matrix,
    to_rgb,
)
from services.executor.media import MediaReader, parse_colour, probe
from services.executor.primitives.single import even_size, render_single
from services.executor.primitives.transform import colour_steps, geometry_steps

Picture = VideoFrame | U8
"""A frame between stages: a libav frame, or an (H, W, 3) RGB array between effects."""


class _FilterStage:
    """RESIZE or the picture part of TRANSFORM: a libavfilter chain on yuv420p."""

    def __init__(self, plan: Callable[[VideoFrame, Fraction | None], list[Step]], width: int, height: int) -> None:
        self.plan = plan
        self.width, self.height = width, height
        self._chain = VideoChain(lambda frame: self.plan(frame, None))

    def apply(self, picture: Picture, index: int) -> Picture:
        frame = from_rgb(picture) if isinstance(picture, np.ndarray) else picture
        return self._chain(frame)


class _EffectStage:
    """A frame effect: RGB in, RGB out, optionally resized (its `size`) before it sees the frame."""

    def __init__(self, config: EffectConfig, in_size: tuple[int, int], seed: int, fps: Fraction, frames: int | None):
        from artdag_effects import make_frame_processor

        self._take_shape(config, in_size, seed)
        self._process = make_frame_processor(
            config.effect,
            config.params,
            config.bindings,
            seed=seed,
            width=self.width,
            height=self.height,
            fps=float(fps),
            frame_count=frames,
        )

    def _take_shape(self, config: EffectConfig, in_size: tuple[int, int], seed: int) -> None:
        """What the stage reads: its size, and the conversion of a libav frame to its RGB input."""
        self.name = config.effect
        self.config, self.seed = config, seed
        self.size = config.size
        self.width, self.height = (config.size.width, config.size.height) if config.size is not None else in_size
        self.resizes = config.size is not None or in_size != (self.width, self.height)
        self._to_rgb = VideoChain(lambda frame: self.plan(frame, None))

    def plan(self, frame: VideoFrame, sar: Fraction | None) -> list[Step]:
        """Steps that turn a frame into this effect's RGB input."""
        if self.size is not None:
            colour = parse_colour(self.size.background)
            mode = self.size.mode
            return resize_steps(frame, sar, self.width, self.height, mode=mode, colour=colour, pix_fmt="rgb24")
        return resize_steps(frame, sar, self.width, self.height, mode="stretch", pix_fmt="rgb24")

    def apply(self, picture: Picture, index: int) -> Picture:
        if isinstance(picture, np.ndarray) and not self.resizes:
            return self.effect(picture, index)
        frame = from_rgb(picture) if isinstance(picture, np.ndarray) else picture
        return self.effect(to_rgb(self._to_rgb(frame)), index)

    def effect(self, rgb: U8, index: int) -> U8:
        """The effect on an RGB frame that is already this stage's size."""
        result = self._process(rgb, index)
        if (
            not isinstance(result, np.ndarray)
            or result.shape != (self.height, self.width, 3)
            or result.dtype != np.uint8
        ):
            shape = getattr(result, "shape", None)
            raise PermanentError(
                f"effect {self.name!r} returned {shape} instead of a ({self.height}, {self.width}, 3) uint8 frame"
            )
        return result


U32 = npt.NDArray[np.uint32]

_COLOURS = 1 << 24
_SLAB = 1 << 20  # colours a time while a table is built: 1,048,576 pixels, like a 1024x1024 frame
_TABLES_KEPT = 2
_tables: OrderedDict[str, U32] = OrderedDict()
"""The worker process's last colour tables: the chunks of one chain share theirs."""


def _build_colour_table(configs: list[EffectConfig]) -> U32:
    """Every colour r | g << 8 | b << 16, made over by the effects in turn, as the same kind of word."""
    from artdag_effects import make_frame_processor

    side = 1 << 10
    # Pointwise effects do not depend on the seed, the place or the time (`EffectSpec.pointwise`).
    processors = [
        make_frame_processor(c.effect, c.params, {}, seed=0, width=side, height=side, fps=30.0) for c in configs
    ]
    table = np.zeros((_COLOURS, 4), dtype=np.uint8)
    for start in range(0, _COLOURS, _SLAB):
        codes = np.arange(start, start + _SLAB, dtype="<u4")
        colours = np.stack([codes & 0xFF, (codes >> 8) & 0xFF, codes >> 16], axis=-1).astype(np.uint8)
        rgb = colours.reshape(side, side, 3)
        for process in processors:
            rgb = process(rgb, 0)
        table[start : start + _SLAB, :3] = rgb.reshape(-1, 3)
    return table.view("<u4").reshape(_COLOURS)


def colour_table(configs: list[EffectConfig]) -> U32:
    """The table of a run of pointwise effects, built once per worker process for the same effects."""
    from artdag_effects import get_effect

    key = sha3_hex([[c.effect, get_effect(c.effect).version, c.params] for c in configs])
    table = _tables.pop(key, None)
    if table is None:
        table = _build_colour_table(configs)
    _tables[key] = table
    while len(_tables) > _TABLES_KEPT:
        _tables.popitem(last=False)
    return table


class ColourTableStage(_EffectStage):
    """Two or more pointwise effects in a row, folded into one table of every RGB colour.

    The table is made by the effects' own code, run over all 16,777,216 colours (in 1024x1024
    slabs, ~1 s) before the first frame, and kept by the worker for the chain's other chunks: a
    frame is then one lookup (about 7 ms at 720p, where brightness_contrast → saturation →
    hue_shift take 35 ms) however many effects the run holds, and every pixel comes out exactly
    as the effects make it. 64 MB a table: a colour is kept as a 4-byte word, which numpy looks up
    several times faster than 3-byte rows.
    """

    def __init__(self, configs: list[EffectConfig], in_size: tuple[int, int], seeds: list[int]) -> None:
        self._take_shape(configs[0], in_size, seeds[0])
        self.name = "+".join(config.effect for config in configs)
        self._configs = configs
        self._table: U32 | None = None
        self._codes: U8 | None = None

    def effect(self, rgb: U8, index: int) -> U8:
        if self._table is None:
            self._table = colour_table(self._configs)
        height, width = rgb.shape[:2]
        pixels = height * width
        if self._codes is None or self._codes.size != pixels * 3 + 1:
            self._codes = np.zeros(pixels * 3 + 1, dtype=np.uint8)
        self._codes[: pixels * 3] = rgb.reshape(-1)
        # Each pixel's code read as a little-endian word at its own offset: r | g << 8 | b << 16
        # (and the next pixel's red in the top byte, masked off). One pass, no per-channel copies.
        words = np.ndarray(shape=(pixels,), dtype="<u4", buffer=self._codes.data, strides=(3,))
        made = np.take(self._table, words & np.uint32(0xFFFFFF))
        # Written back the same way, in order: each word's top byte (zero) is overwritten by the
        # next pixel's red, and the spare byte at the end takes the last one.
        out = np.empty(pixels * 3 + 1, dtype=np.uint8)
        np.ndarray(shape=(pixels,), dtype="<u4", buffer=out.data, strides=(3,))[...] = made
        return out[: pixels * 3].reshape(height, width, 3)


def _foldable(config: object) -> bool:
    """A pointwise effect with static params that keeps the picture's size."""
    if not isinstance(config, EffectConfig) or config.bindings or config.size is not None:
        return False
    from artdag_effects import get_effect

    return get_effect(config.effect).pointwise


_Stage = _FilterStage | _EffectStage


def _fold_colour_runs(stages: list[_Stage]) -> list[_Stage]:
    """Runs of two or more foldable effects become one `ColourTableStage` each."""
    folded: list[_Stage] = []
    run: list[_EffectStage] = []

    def close() -> None:
        if len(run) >= 2:
            configs = [stage.config for stage in run]
            folded.append(ColourTableStage(configs, (run[0].width, run[0].height), [s.seed for s in run]))
        else:
            folded.extend(run)
        run.clear()

    for stage in stages:
        if isinstance(stage, _EffectStage) and _foldable(stage.config):
            run.append(stage)
            continue
        close()
        folded.append(stage)
    close()
    return folded


def _resize_plan(config: ResizeConfig, colour: str, frame: VideoFrame, sar: Fraction | None) -> list[Step]:
    return resize_steps(frame, sar, config.width, config.height, mode=config.mode, colour=colour)


def _transform_plan(
    size_in: tuple[int, int], picture: list[Step], size_out: tuple[int, int], frame: VideoFrame, sar: Fraction | None
) -> list[Step]:
    upright, _, _ = orient_steps(frame, sar)
    source = source_matrix(frame)
    return [*upright, *scale_step(*size_in, source=source), *picture, *scale_step(*size_out), ("setsar", "1")]


def _upright_plan(size: tuple[int, int], frame: VideoFrame, sar: Fraction | None) -> list[Step]:
    """Only time changes: the picture is put upright at its even size, as SEGMENT does."""
    return resize_steps(frame, sar, size[0], size[1], mode="stretch")


def _stage_seed(seed: int, index: int) -> int:
    """Each fused effect's own seed, fixed by the chain's step id and its place in the chain."""
    return int(sha3_hex(["chain-stage", seed, index])[:16], 16)


@dataclass
class Pipeline:
    """One chain, ready to render: where it reads the source, and what it does to each frame."""

    window: TimeWindow
    width: int
    height: int
    total_frames: int | None
    first_plan: Callable[[VideoFrame, Fraction | None], list[Step]]
    """Filters for each decoded frame (the first stage's own, or an effect's conversion to RGB)."""
    hook: Callable[[VideoFrame, int], VideoFrame]
    """The rest of the stages: (first plan's frame, output index) → output-profile frame."""


def build_pipeline(
    stages: list[ChainStage], size: tuple[int, int], fps: Fraction, duration: Fraction, *, seed: int, offset: int = 0
) -> Pipeline:
    """Compose a chain's time changes into one window and its picture stages into one frame hook.

    `size` is the source's even displayed size; effects see output indices from `offset`.
    """
    window = TimeWindow.of(stages)
    limit = window.end if window.end is not None else duration
    if duration and window.start >= limit:
        raise InvalidInputError(
            f"starts at {float(window.start):g} s of its input, after what it reads ends ({float(limit):.3f} s)",
            field="start",
        )
    parsed = [OPERATIONS[stage.type].parse_config(stage.config) for stage in stages]
    span = (window.end if window.end is not None else duration) - window.start
    total_frames = slot_of(span / window.speed, fps) if span > 0 else None

    picture_stages: list[_Stage] = []
    effect_index = 0
    for cfg in parsed:
        width, height = size
        if isinstance(cfg, ResizeConfig):
            plan = functools.partial(_resize_plan, cfg, parse_colour(cfg.background))
            picture_stages.append(_FilterStage(plan, cfg.width, cfg.height))
            size = (cfg.width, cfg.height)
        elif isinstance(cfg, TransformConfig):
            geometry, out_w, out_h = geometry_steps(cfg, width, height)
            picture_steps = [*geometry, *colour_steps(cfg, out_w, out_h)]
            if not picture_steps:
                continue  # only a speed change: nothing to do to the picture
            plan = functools.partial(_transform_plan, (width, height), picture_steps, (out_w, out_h))
            picture_stages.append(_FilterStage(plan, out_w, out_h))
            size = (out_w, out_h)
        elif isinstance(cfg, EffectConfig):
            stage = _EffectStage(cfg, size, _stage_seed(seed, effect_index), fps, total_frames)
            effect_index += 1
            picture_stages.append(stage)
            size = (stage.width, stage.height)
    picture_stages = _fold_colour_runs(picture_stages)
    width, height = size

    head = picture_stages[0] if picture_stages else None
    first_plan: Callable[[VideoFrame, Fraction | None], list[Step]] = (
        head.plan if head is not None else functools.partial(_upright_plan, size)
    )
    rest = picture_stages[1:]
    to_output = rgb_to_output(width, height)
    to_yuv = VideoChain(lambda _frame: [*scale_step(width, height), ("setsar", "1")])

    def hook(frame: VideoFrame, index: int) -> VideoFrame:
        picture: Picture = frame
        position = offset + index
        if isinstance(head, _EffectStage):
            picture = head.effect(to_rgb(frame), position)
        for stage in rest:
            picture = stage.apply(picture, position)
        if isinstance(picture, np.ndarray):
            return to_output(from_rgb(picture))
        if picture.width == width and picture.height == height and picture.format.name == "yuv420p":
            return picture
        return to_yuv(picture)

    return Pipeline(window, width, height, total_frames, first_plan, hook)


def render_chain(input_path: Path, output_path: Path, config: ChainConfig, *, seed: int) -> None:
    """Render every stage of `config` over `input_path` in one pass (see the module docstring).

    With `frames` (a chunk, or a piece of a transition) only those output frames are
    rendered, with sound only if `sound` says; effects still see the whole output's indices.
    """
    size = even_size(probe(input_path))
    with MediaReader(input_path) as reader:
        fps, duration = reader.fps, reader.duration
    offset = config.frames[0] if config.frames is not None else 0
    pipeline = build_pipeline(config.stages, size, fps, duration, seed=seed, offset=offset)
    window = pipeline.window
    start, end, speed, audio = window.start, window.end, float(window.speed), True
    if config.frames is not None:
        if pipeline.total_frames is not None and config.frames[0] >= pipeline.total_frames:
            raise InvalidInputError(
                f"the input has {pipeline.total_frames} frames, fewer than {config.frames[0] + 1}", field="frames"
            )
        # A piece: those frames of the chain's output (its speed is 1), at their place in its window.
        # A chunk goes without sound (the JOIN copies it once); a transition's piece carries its own.
        first, last = (window.start + Fraction(frame) / fps for frame in config.frames)
        start, end, speed, audio = first, last if end is None else min(last, end), 1.0, bool(config.sound)
    render_single(
        input_path,
        output_path,
        width=pipeline.width,
        height=pipeline.height,
        plan=pipeline.first_plan,
        hook=pipeline.hook,
        start=start,
        end=end,
        speed=speed,
        audio=audio,
    )
