"""The node types a recipe may use: each one's typed config, input arity and version.

The config model is the single source of truth for a node's keys, defaults and
ranges; the version is part of every step id, so changing what an operation
renders means bumping its version here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from importlib.metadata import version as package_version
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from artdag_common.errors import InvalidInputError, first_problem

_COLOUR_RE = re.compile(r"^(#[0-9a-fA-F]{6}|black|white|red|green|blue|gray)$")

# Rendered bytes depend on the FFmpeg/x264 build inside the PyAV wheel, and on how steps hand
# media to each other ("h2": stitchable x264 headers, hand-off profiles, fused chains).
MEDIA_ENGINE = f"av-{package_version('av')}.h2"

Handoff = Literal["deliver", "part", "lossless"]
"""How a step's output is encoded, chosen by the planner from what consumes it.

deliver: the run's output (lossy H.264 + AAC); part: lossy video a later step copies packet
for packet into a delivered file (sound kept lossless until then); lossless: an intermediate
a later step decodes. So every delivered frame passes the lossy encoder once.
"""

HANDOFFS: tuple[str, ...] = ("deliver", "part", "lossless")

GOP_FRAMES = 48
"""Frames per GOP of every rendered video (fixed keyframe interval, no scene cuts).

The executor's encoder profile uses it; the planner splits long renders at GOP
boundaries so chunks can be joined by stream copy.
"""


class NodeConfig(BaseModel):
    """Base of every config model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(NodeConfig):
    """A recipe input, bound to content by cid when the run is submitted."""

    input: str | None = Field(default=None, description="the recipe input this source reads")


class ResizeConfig(NodeConfig):
    """Scale a video to `width`×`height` (even numbers, for yuv420p)."""

    width: int = Field(ge=2, le=7680)
    height: int = Field(ge=2, le=4320)
    mode: Literal["fit", "fill", "stretch", "pad"] = "fit"
    background: str = "black"

    @field_validator("width", "height")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("must be an even number of pixels")
        return value

    @field_validator("background")
    @classmethod
    def _colour(cls, value: str) -> str:
        return _check_colour(value)


class SegmentConfig(NodeConfig):
    """Keep a time range: ``offset``/``duration`` or ``start``/``end`` (seconds), not both styles.

    ``precise`` decodes and re-encodes frame-accurately; ``precise: false`` copies
    the streams from the keyframe at or before the start (fast, no re-encode).
    """

    offset: float | None = Field(default=None, ge=0, le=86_400)
    duration: float | None = Field(default=None, gt=0, le=86_400)
    start: float | None = Field(default=None, ge=0, le=86_400)
    end: float | None = Field(default=None, gt=0, le=86_400)
    precise: bool = True

    @model_validator(mode="after")
    def _one_style(self) -> SegmentConfig:
        if (self.offset is not None or self.duration is not None) and (self.start is not None or self.end is not None):
            raise ValueError("use offset/duration or start/end, not both")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        return self

    def window(self) -> tuple[float, float | None]:
        """The range to keep as (start, end) seconds; end None means "to the end"."""
        if self.start is not None or self.end is not None:
            return (self.start or 0.0, self.end)
        begin = self.offset or 0.0
        return (begin, None if self.duration is None else begin + self.duration)


class CropRect(NodeConfig):
    """A crop rectangle in displayed pixels; all values even (yuv420p chroma)."""

    x: int = Field(default=0, ge=0, le=8192)
    y: int = Field(default=0, ge=0, le=8192)
    width: int = Field(ge=16, le=8192)
    height: int = Field(ge=16, le=8192)

    @field_validator("x", "y", "width", "height")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("must be an even number of pixels")
        return value


class TransformConfig(NodeConfig):
    """Colour, blur, sharpen, speed and geometry changes; every default is neutral.

    Applied in this order: crop, rotate (clockwise), flip, eq (saturation,
    contrast, brightness, gamma), hue, blur, sharpen; speed retimes the video
    and pitch-preserves the audio.
    """

    saturation: float = Field(default=1.0, ge=0.0, le=3.0)
    contrast: float = Field(default=1.0, ge=-2.0, le=2.0)
    brightness: float = Field(default=0.0, ge=-1.0, le=1.0)
    gamma: float = Field(default=1.0, ge=0.1, le=10.0)
    hue: float = Field(default=0.0, ge=-360.0, le=360.0, description="hue rotation in degrees")
    blur: int = Field(default=0, ge=0, le=64, description="box blur radius in pixels")
    sharpen: float = Field(default=0.0, ge=0.0, le=5.0, description="unsharp-mask amount")
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    rotate: Literal[0, 90, 180, 270] = 0
    flip: Literal["h", "v"] | None = None
    crop: CropRect | None = None


class Transition(NodeConfig):
    """How consecutive SEQUENCE clips meet."""

    type: Literal["cut", "crossfade", "fade"] = "cut"
    duration: float = Field(default=0.5, gt=0.0, le=5.0)


class SequenceConfig(NodeConfig):
    """Concatenate inputs, normalising size (fit + pad), frame rate, pixel format and sample rate."""

    transition: Transition = Transition()
    # first, last, largest: that clip's size (associative, so a long SEQUENCE split into pairs keeps it)
    target_size: Literal["first", "last", "largest", "explicit"] = "first"
    width: int | None = Field(default=None, ge=16, le=7680)
    height: int | None = Field(default=None, ge=16, le=4320)
    background: str = "black"
    tree: bool = Field(
        default=True, description="plan more than two inputs as a balanced tree of pairwise steps (parallel, cached)"
    )

    @field_validator("width", "height")
    @classmethod
    def _even(cls, value: int | None) -> int | None:
        if value is not None and value % 2:
            raise ValueError("must be an even number of pixels")
        return value

    @field_validator("background")
    @classmethod
    def _colour(cls, value: str) -> str:
        return _check_colour(value)

    @model_validator(mode="after")
    def _explicit_size(self) -> SequenceConfig:
        explicit = self.target_size == "explicit"
        if explicit and (self.width is None or self.height is None):
            raise ValueError("target_size explicit needs width and height")
        if not explicit and (self.width is not None or self.height is not None):
            raise ValueError("width and height are only used with target_size explicit")
        return self


class LayerInput(NodeConfig):
    """Placement of one overlay: top-left position, opacity and scale."""

    position: tuple[int, int] = (0, 0)
    opacity: float = Field(default=1.0, ge=0.0, le=1.0)
    scale: float = Field(default=1.0, gt=0.0, le=8.0)


class LayerConfig(NodeConfig):
    """Composite inputs 1… over input 0, in order; one entry per overlay (empty: all defaults)."""

    inputs: list[LayerInput] = Field(default_factory=list, max_length=15)


BlendMode = Literal["multiply", "screen", "overlay", "add", "subtract", "average", "difference", "lighten", "darken"]


class BlendConfig(NodeConfig):
    """Blend input 1 onto input 0 in RGB with `mode`; `opacity` mixes the result with input 0."""

    mode: BlendMode = "overlay"
    opacity: float = Field(default=1.0, ge=0.0, le=1.0)


class MuxConfig(NodeConfig):
    """Video of input 0 with the audio of input 1; `shortest` ends with the shorter one."""

    shortest: bool = True


class AudioMixConfig(NodeConfig):
    """Mix the audio of every input: a gain per input; `normalize` divides the sum by the count."""

    gains: list[float] = Field(default_factory=list, max_length=32)
    normalize: bool = True

    @field_validator("gains")
    @classmethod
    def _gains(cls, value: list[float]) -> list[float]:
        for gain in value:
            if not (math.isfinite(gain) and 0.0 <= gain <= 10.0):
                raise ValueError("each gain must be between 0 and 10")
        return value


class EffectConfig(NodeConfig):
    """A frame effect from `artdag_effects`, validated (and normalised) by that library."""

    effect: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)
    bindings: dict[str, Any] = Field(default_factory=dict)
    frames: tuple[int, int] | None = Field(
        default=None, description="render only frames [first, end) of the input, video only (planner chunks)"
    )
    size: ResizeConfig | None = Field(
        default=None, description="resize in the same pass (as RESIZE does) before the effect sees the frame"
    )

    @field_validator("frames")
    @classmethod
    def _frame_range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 0 <= value[0] < value[1]:
            raise ValueError("must be [first, end) with 0 <= first < end")
        return value

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        effect, params, bindings = data.get("effect"), data.get("params", {}), data.get("bindings", {})
        if not (isinstance(effect, str) and isinstance(params, dict) and isinstance(bindings, dict)):
            return data  # field validation reports the type error
        # Imported here so that importing artdag_common does not import the effects.
        from artdag_effects import validate_effect_config
        from artdag_effects.registry import resolve_alias

        try:
            # An original effect name (e.g. pixelsort) becomes its canonical effect and params
            # here, so both spellings normalise, and hash, alike.
            effect, params, bindings = resolve_alias(effect, params, bindings)
            params, bindings = validate_effect_config(effect, params, bindings)
        except InvalidInputError as exc:
            loc = tuple(exc.field.split(".")) if exc.field else ("effect",)
            detail = InitErrorDetails(type=PydanticCustomError("effect", exc.message), loc=loc, input=data)
            raise ValidationError.from_exception_data(cls.__name__, [detail]) from None
        return {**data, "effect": effect, "params": params, "bindings": bindings}


def _check_colour(value: str) -> str:
    if not _COLOUR_RE.match(value):
        raise ValueError("must be #rrggbb or one of black, white, red, green, blue, gray")
    return value


AUDIO_FEATURES = frozenset({"beats", "tempo", "energy", "spectrum", "onsets"})
"""Features the analyzer extracts from sound ("tempo" is another name for "beats")."""

VIDEO_FEATURES = frozenset({"metadata", "scene_changes", "motion"})
"""Features the analyzer extracts from pictures."""

BINDABLE_FEATURES = ("energy", "onsets", "beats", "downbeats", "motion", "scene_changes", "spectrum.<band>")
"""What an EFFECT binding may follow: curves (energy, motion, spectrum bands) or events (the others)."""


_BAND_NAME = re.compile(r"[a-z0-9_]+")
MAX_BANDS = 16
"""How many spectrum bands one analysis may ask for."""

_RENAMED_PARAMS = {"min_bpm": "tempo_min", "max_bpm": "tempo_max"}


def _field_error(model: str, field: str, message: str, value: Any) -> ValidationError:
    """A validation error placed on `field` (a model validator's own errors have no place)."""
    error = PydanticCustomError("analysis_params", "{message}", {"message": message})
    return ValidationError.from_exception_data(model, [InitErrorDetails(type=error, loc=(field,), input=value)])


class AnalysisParams(NodeConfig):
    """The analyzer's tunable parameters: window size, spectrum bands, scene threshold, tempo range and hint.

    Defined here, not in the analyzer, so that the planner checks an ANALYZE step's `params`
    when the recipe comes in; the analyzer validates its requests with the same model, and the
    validated params are part of the analysis id.
    """

    window_ms: float = Field(default=50.0, ge=5, le=1000, description="energy and spectrum window, in ms")
    bands: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {"bass": (20.0, 200.0), "mid": (200.0, 2000.0), "high": (2000.0, 20000.0)},
        description="spectrum bands: name → (low Hz, high Hz)",
    )
    scene_threshold: float = Field(default=0.3, ge=0, le=1, description="how different a frame is at a scene change")
    tempo_min: float = Field(default=40.0, ge=20, le=400, description="slowest beat rate to consider, in BPM")
    tempo_max: float = Field(default=240.0, ge=20, le=400, description="fastest beat rate to consider, in BPM")
    tempo_hint: float | None = Field(
        default=None,
        description="the beat rate a listener would tap, roughly, in BPM (within tempo_min..tempo_max):"
        " picks the metrical level the beats come at",
    )

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        # Said here rather than as pydantic's "Extra inputs are not permitted": which names there are.
        if isinstance(data, dict):
            for key, value in data.items():
                if key in cls.model_fields:
                    continue
                if key in _RENAMED_PARAMS:
                    message = f"unknown parameter {key!r}: it is called {_RENAMED_PARAMS[key]!r} now"
                else:
                    message = f"unknown parameter {key!r} (known: {', '.join(sorted(cls.model_fields))})"
                raise _field_error(cls.__name__, str(key), message, value)
        return data

    @field_validator("bands")
    @classmethod
    def _check_bands(cls, bands: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        if not bands:
            raise ValueError("at least one band is needed")
        if len(bands) > MAX_BANDS:
            raise ValueError(f"at most {MAX_BANDS} bands, got {len(bands)}")
        for name, (lo, hi) in bands.items():
            if not _BAND_NAME.fullmatch(name):
                raise ValueError(f"band name {name!r} must match [a-z0-9_]+")
            if not 0 <= lo < hi:
                raise ValueError(f"band {name!r}: need 0 <= low < high, got ({lo}, {hi})")
        return bands

    @model_validator(mode="after")
    def _check_tempo_range(self) -> AnalysisParams:
        name = type(self).__name__
        if not self.tempo_max >= 1.5 * self.tempo_min:
            message = (
                f"tempo_max ({self.tempo_max:g}) must be at least 1.5 × tempo_min ({self.tempo_min:g}):"
                " the range must hold more than one metrical level"
            )
            raise _field_error(name, "tempo_max", message, self.tempo_max)
        hint = self.tempo_hint
        if hint is not None and not self.tempo_min <= hint <= self.tempo_max:
            message = (
                f"tempo_hint ({hint:g}) must lie between tempo_min ({self.tempo_min:g})"
                f" and tempo_max ({self.tempo_max:g})"
            )
            raise _field_error(name, "tempo_hint", message, hint)
        return self


class AnalyzeConfig(NodeConfig):
    """Analyze a recipe input before planning; its result feeds bindings and BEAT_SYNC."""

    features: list[str] = Field(min_length=1, max_length=8)
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="analyzer parameters (AnalysisParams: window_ms, bands, scene_threshold, tempo_min, tempo_max,"
        " tempo_hint); checked when the recipe comes in, kept as written",
    )

    @field_validator("params")
    @classmethod
    def _analysis_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Kept as written (the step id stays what it was); the analyzer fills in the defaults.
        AnalysisParams.model_validate(value)
        return value

    @field_validator("features")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        for feature in value:
            if feature not in AUDIO_FEATURES | VIDEO_FEATURES:
                known = ", ".join(sorted(AUDIO_FEATURES | VIDEO_FEATURES))
                raise ValueError(f"unknown feature {feature!r} (known: {known})")
        return sorted(set(value))


class BeatSyncConfig(NodeConfig):
    """Cut a video on the beats of a track (input 0: the video; input 1: an ANALYZE step with beats)."""

    mode: Literal["cut", "stretch"] = Field(
        default="cut", description="cut: one slice per beat interval; stretch: time-stretch slices to fill them"
    )
    every: int = Field(default=1, ge=1, le=64, description="beats per slice")
    seed: int | None = Field(default=None, description="cut mode: pick slices at seeded random places")
    mux: bool = Field(default=True, description="put the analysed track's sound under the result")
    max_slices: int = Field(default=4000, ge=1, le=20_000)


class SegmentAtConfig(NodeConfig):
    """Cut a video at the times an ANALYZE step found (beats, onsets, scene changes): a list of segments."""

    times_from: str = Field(min_length=1, max_length=64, description="the ANALYZE step whose times to cut at")
    feature: Literal["beats", "downbeats", "onsets", "scene_changes"] = "beats"
    every: int = Field(default=1, ge=1, le=64, description="use every n-th time")
    precise: bool = True
    max_segments: int = Field(default=4000, ge=1, le=20_000)


class RandomSliceConfig(NodeConfig):
    """MAP's RANDOM_SLICE: a slice of `duration` seconds at a place seeded from the step."""

    duration: float = Field(gt=0, le=3600)
    seed: int = 0


class MapConfig(NodeConfig):
    """Apply one operation to every item of a list (a list input, SEGMENT_AT's segments, another MAP)."""

    operation: str = Field(min_length=1, max_length=32, description="a node type taking one input, or RANDOM_SLICE")
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _operation(self) -> MapConfig:
        if self.operation.upper() == "RANDOM_SLICE":
            RandomSliceConfig.model_validate(self.config)
            return self
        op = OPERATIONS.get(self.operation.upper())
        if op is None or not op.in_recipes or not op.rendered or not op.min_inputs <= 1 <= op.max_inputs:
            raise ValueError(f"operation {self.operation!r} cannot be mapped (a node type taking one input)")
        op.parse_config(self.config)
        return self


class ThumbnailConfig(NodeConfig):
    """A still of a video: the frame at `at_s`, `width` pixels wide, as a PNG."""

    width: int = Field(default=320, ge=16, le=1920)
    at_s: float = Field(default=1.0, ge=0, le=86_400)


class NoopConfig(NodeConfig):
    """Does nothing but make a tiny, distinct output: for tests and dispatch benchmarks."""

    n: int = Field(default=0, ge=0, le=10**9, description="any number, to tell steps apart")


class JoinConfig(NodeConfig):
    """Concatenate video chunks (all inputs but the last) and copy the last input's sound."""


CHAIN_STAGE_TYPES = ("SEGMENT", "TRANSFORM", "RESIZE", "EFFECT")
"""Node types the planner fuses into one decode → filters → encode pass (CHAIN)."""

TIME_STAGE_TYPES = ("SEGMENT", "TRANSFORM")
"""Stages that may change time (a SEGMENT's window, a TRANSFORM's speed)."""


class ChainStage(NodeConfig):
    """One fused node: its type and its (validated, normalised) config."""

    type: Literal["SEGMENT", "TRANSFORM", "RESIZE", "EFFECT"]
    config: dict[str, Any] = Field(default_factory=dict)

    def changes_time(self) -> bool:
        """Whether this stage cuts or retimes (so no effect may come before it)."""
        if self.type == "SEGMENT":
            return True
        return self.type == "TRANSFORM" and float(self.config.get("speed", 1.0)) != 1.0


@dataclass(frozen=True)
class TimeWindow:
    """Where a chain reads its input, and how fast: output time t shows input time start + t·speed."""

    start: Fraction = Fraction(0)
    end: Fraction | None = None
    speed: Fraction = Fraction(1)

    @classmethod
    def of(cls, stages: Sequence[ChainStage]) -> TimeWindow:
        """The one window and speed that a line of stages' SEGMENT windows and speeds compose to.

        A SEGMENT's times are on the timeline it receives (after the speeds before it).
        """
        start, end, speed = Fraction(0), None, Fraction(1)
        for stage in stages:
            if stage.type == "SEGMENT":
                first, last = SegmentConfig.model_validate(stage.config).window()
                if last is not None:
                    new_end = start + Fraction(last) * speed
                    end = new_end if end is None else min(end, new_end)
                start += Fraction(first) * speed
            elif stage.type == "TRANSFORM":
                speed *= Fraction(float(stage.config.get("speed", 1.0)))
        return cls(start, end, speed)

    def seconds(self) -> Fraction | None:
        """How long the output lasts (None: to the end of the input)."""
        return None if self.end is None else max(Fraction(0), (self.end - self.start) / self.speed)


class ChainConfig(NodeConfig):
    """Per-frame nodes fused by the planner into one pass: time changes first, then pictures.

    Every time change (SEGMENT, TRANSFORM speed) comes before the first EFFECT, so
    that effects see the same frames, indices and times as they would unfused.
    """

    stages: list[ChainStage] = Field(min_length=1, max_length=64)
    frames: tuple[int, int] | None = Field(
        default=None,
        description="render only frames [first, end) of the output (planner chunks and transition pieces)",
    )
    sound: bool | None = Field(
        default=None, description="with frames: the piece's sound too, cut at those frames (a transition's pieces)"
    )

    @model_validator(mode="after")
    def _stages(self) -> ChainConfig:
        seen_effect = False
        for index, stage in enumerate(self.stages):
            op = OPERATIONS[stage.type]
            try:
                op.parse_config(stage.config)
            except ValidationError as exc:
                raise ValueError(f"stage {index} ({stage.type}): {first_problem(exc)[0]}") from None
            if stage.type == "SEGMENT" and stage.config.get("precise") is False:
                raise ValueError(f"stage {index}: a keyframe-copy SEGMENT is not fused")
            if stage.type == "EFFECT" and stage.config.get("frames") is not None:
                raise ValueError(f"stage {index}: a chunk of an EFFECT is not fused")
            if stage.changes_time() and seen_effect:
                raise ValueError(f"stage {index} ({stage.type}) changes time after an EFFECT")
            seen_effect = seen_effect or stage.type == "EFFECT"
        if self.frames is not None:
            if not 0 <= self.frames[0] < self.frames[1]:
                raise ValueError("frames must be [first, end) with 0 <= first < end")
            if TimeWindow.of(self.stages).speed != 1:
                raise ValueError("a chain that changes speed is rendered whole, not in pieces")
        elif self.sound is not None:
            raise ValueError("sound is for pieces of a chain (with frames)")
        return self


class CutsPiece(NodeConfig):
    """One piece of a CUTS step: a chain over the input that ends where the next piece starts."""

    stages: list[ChainStage] = Field(min_length=1, max_length=64)


class CutsConfig(NodeConfig):
    """Pieces of one input rendered one after another in one pass (a cut-only SEQUENCE of chains).

    The planner groups the slices a SEQUENCE cuts together from one source (beat-synced
    slices, a montage of segments) into a few CUTS steps: one decoder and one encoder per
    group instead of one per slice, groups rendered in parallel and joined by stream copy.
    """

    pieces: list[CutsPiece] = Field(min_length=1, max_length=4096)
    audio: bool = Field(default=True, description="false: no sound (the consumer replaces it, as a MUX does)")
    start_s: float = Field(
        default=0.0,
        ge=0,
        le=10**6,
        description="where the first piece starts in the whole cut: each cut lands on the frame nearest its exact "
        "time, so slices that last fractions of a frame do not drift off the beat",
    )

    @model_validator(mode="after")
    def _pieces(self) -> CutsConfig:
        for index, piece in enumerate(self.pieces):
            try:
                ChainConfig(stages=piece.stages)
            except ValidationError as exc:
                raise ValueError(f"piece {index}: {first_problem(exc)[0]}") from None
        return self


@dataclass(frozen=True)
class Operation:
    """What the planner and executor agree on about one node type."""

    node_type: str
    config_model: type[NodeConfig]
    version: str
    min_inputs: int
    max_inputs: int
    description: str
    in_recipes: bool = True  # False: only the planner makes these steps
    rendered: bool = True  # False: the planner resolves it (SOURCE, ANALYZE, BEAT_SYNC…); executors never see it
    takes_lists: bool = False  # whether an input may be a list (spliced in order)
    video_slots: Literal["all", "first", "none"] = "all"  # which inputs must carry video
    output_media_type: str = "video/mp4"
    # True: no media work (instant, inputs unread); dispatched on a work queue of its own that
    # executors drain many at a time, rendered in memory, without claim or RUNNING event.
    inline: bool = False

    @property
    def op_version(self) -> str:
        """The version mixed into step ids: the operation's own and the media engine's."""
        return f"{self.version}+{MEDIA_ENGINE}"

    def parse_config(self, raw: dict[str, Any]) -> NodeConfig:
        """Validate a raw config; raises pydantic's `ValidationError` naming the field."""
        return self.config_model.model_validate(raw)


OPERATIONS: dict[str, Operation] = {
    op.node_type: op
    for op in (
        Operation("SOURCE", SourceConfig, "1", 0, 0, "a recipe input", video_slots="none", rendered=False),
        Operation("RESIZE", ResizeConfig, "2", 1, 1, "scale a video: fit, fill, stretch or pad"),
        Operation(
            "SEGMENT",
            SegmentConfig,
            "1",
            1,
            1,
            "cut a time range, frame-accurate or by keyframe copy",
            video_slots="none",
        ),
        Operation("TRANSFORM", TransformConfig, "1", 1, 1, "colour, blur, sharpen, speed, rotate, flip, crop"),
        Operation(
            "SEQUENCE",
            SequenceConfig,
            "1",
            1,
            256,
            "concatenate clips with cuts, crossfades or fades",
            takes_lists=True,
        ),
        Operation("LAYER", LayerConfig, "1", 2, 16, "composite overlays onto input 0"),
        Operation("BLEND", BlendConfig, "1", 2, 2, "blend input 1 onto input 0 with a blend mode"),
        Operation("MUX", MuxConfig, "1", 2, 2, "video of input 0 with audio of input 1", video_slots="first"),
        Operation(
            "AUDIO_MIX",
            AudioMixConfig,
            "1",
            2,
            32,
            "mix the audio of the inputs into an M4A",
            video_slots="none",
            output_media_type="audio/mp4",
        ),
        Operation("EFFECT", EffectConfig, "1", 1, 1, "run a frame effect from artdag_effects"),
        Operation("JOIN", JoinConfig, "1", 2, 4097, "join chunks without re-encoding", in_recipes=False),
        Operation(
            "CHAIN", ChainConfig, "1", 1, 1, "per-frame nodes fused into one decode-encode pass", in_recipes=False
        ),
        Operation("CUTS", CutsConfig, "1", 1, 1, "pieces of one input cut together in one pass", in_recipes=False),
        Operation(
            "ANALYZE",
            AnalyzeConfig,
            "1",
            1,
            1,
            "analyze an input (planned, not rendered)",
            video_slots="none",
            output_media_type="application/json",
            rendered=False,
        ),
        Operation(
            "BEAT_SYNC",
            BeatSyncConfig,
            "1",
            2,
            2,
            "cut a video on the beats of a track (expands in the plan)",
            video_slots="first",
            rendered=False,
        ),
        Operation("THUMBNAIL", ThumbnailConfig, "1", 1, 1, "a PNG still of a video", output_media_type="image/png"),
        Operation(
            "NOOP",
            NoopConfig,
            "1",
            0,
            2,
            "does nothing (tests and benchmarks)",
            video_slots="none",
            output_media_type="text/plain",
            inline=True,
        ),
        Operation(
            "SEGMENT_AT",
            SegmentAtConfig,
            "1",
            1,
            1,
            "cut at analysed times into a list (expands in the plan)",
            rendered=False,
        ),
        Operation(
            "MAP",
            MapConfig,
            "1",
            1,
            1,
            "apply an operation to every item of a list (expands in the plan)",
            video_slots="none",
            rendered=False,
            takes_lists=True,
        ),
    )
}


INLINE_NODE_TYPES: frozenset[str] = frozenset(op.node_type for op in OPERATIONS.values() if op.inline)
"""Node types that are no media work (see `Operation.inline`): dispatched on their own queue, rendered in memory."""


def get_operation(node_type: str) -> Operation | None:
    """The operation for a node type name (case-insensitive), or None."""
    return OPERATIONS.get(node_type.upper())
