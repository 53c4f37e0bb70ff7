"""Effects users write: a small expression language over the frame, compiled to vectorised numpy.

    (define-effect tint
      :params ((amount :default 0.5 :range [0 1])
               (color :type color :default [255 128 0]))
      (mix frame (* frame (/ color 255)) amount))

The body is one expression, evaluated for every frame. Its names are the frame (`frame`, `r`,
`g`, `b`, 0..255), where a pixel is (`x`, `y` in 0..1 across the frame; `cx`, `cy` in -1..1 from
its centre), when (`t` seconds, `i` frame index), the frame's `width` and `height`, and the
effect's parameters (a bound parameter follows the analysis it is bound to, frame by frame).
`(let [name expr …] body)` names intermediate values. The rest are the functions in `FUNCTIONS`:
arithmetic, comparisons and `if` (per pixel), colour spaces, convolution, geometric remaps
(`sample`), and noise seeded from the step.

Nothing in it can reach outside the frame: there is no attribute access, import, I/O, loop or
user-defined function (so no recursion), and an effect is refused at compile time when it is
larger than `MAX_NODES` or its estimated work per frame is over `MAX_COST` full-frame passes.
A value that turns NaN or infinite (a division by zero) fails the frame with the effect's name.

Speed: a part of the expression that depends on no pixel value (a vignette's gain, a remap's
coordinates) is computed once per run and parameter values. Common shapes of body then run in
integer arithmetic on the uint8 frame, as fast as the built-in effects they resemble (see "fast
paths" below): each channel's own value alone (invert, levels, curves) is a table per channel;
frame·gain + offset (a vignette, a tint) is fixed point; channels copied or remapped by
coordinates that read no pixel (rgb_split, shifts, mirrors) are integer gathers or slices.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field, create_model

from artdag_common.errors import InvalidInputError, InvalidMediaError
from artdag_common.sexp import Atom, Keyword, Pos, SexpError, SList, SMap, Symbol, Value, head, read_one
from artdag_effects.imaging import table_pass
from artdag_effects.spec import EffectParams, EffectSetup, EffectSpec, Frame, FrameContext, FrameEffect, Rgb

MAX_NODES = 2000
MAX_COST = 200.0
MAX_KERNEL = 15
MAX_BLUR_RADIUS = 64.0
MAX_PARAMS = 32
LANGUAGE_VERSION = "1"

Array = npt.NDArray[np.float32]
Num = Array | float

# How a value varies: not at all, with the place only (and the parameters), or with the frame.
CONST, PLACE, FRAME = 0, 1, 2


class _Frame:
    """What one evaluation sees: the pixels (converted to float only when read), the parameters, the time."""

    def __init__(self, pixels: npt.NDArray[Any], params: dict[str, float | Array], t: float, i: int, seed: int) -> None:
        self.pixels = pixels  # (H, W, 3) uint8, or float32 (a colour table's ramp)
        self.params = params
        self.t, self.i, self.seed = t, i, seed
        self._frame: Array | None = None
        self._rng: np.random.Generator | None = None

    @property
    def frame(self) -> Array:
        """The whole frame as float32 (converted on first use)."""
        if self._frame is None:
            self._frame = self.pixels.astype(np.float32, copy=False)
        return self._frame

    def channel(self, k: int) -> Array:
        """One channel as float32 (H, W, 1): a single-channel read converts that channel alone."""
        if self._frame is not None:
            return self._frame[:, :, k : k + 1]
        plane: Array = self.pixels[:, :, k : k + 1].astype(np.float32)
        return plane

    @property
    def rng(self) -> np.random.Generator:
        """The frame's noise generator, seeded from the step and the frame index."""
        if self._rng is None:
            self._rng = np.random.default_rng([self.seed, self.i])
        return self._rng


@dataclass
class _Place:
    """The frame's geometry, built once per run."""

    width: int
    height: int
    x: Array  # (1, W, 1)
    y: Array  # (H, 1, 1)
    cx: Array
    cy: Array


Eval = Callable[[_Frame, _Place], Num]


@dataclass
class Node:
    """A compiled expression: how to evaluate it, how it varies, what it costs per frame."""

    run: Eval
    varies: int
    cost: float
    pos: Pos
    pointwise: bool = True  # a function of each channel's own value (and constants) only
    uses_frame: bool = False  # reads pixel values
    const: float | Array | None = None
    params: frozenset[str] = field(default_factory=frozenset)
    clock: bool = False  # reads the time or the frame index
    op: str = ""  # what it is, for the fast paths: a function's name, "frame", "r", "sample", …
    args: tuple[Node, ...] = ()


def _as_array(value: Num) -> Array:
    return value if isinstance(value, np.ndarray) else np.float32(value) * np.ones((1, 1, 1), np.float32)


def _plane(value: Num) -> Num:
    """A value as one plane (H, W, 1): a colour value's mean over its channels."""
    if isinstance(value, np.ndarray) and value.ndim == 3 and value.shape[2] == 3:
        plane: Array = value.mean(axis=2, keepdims=True, dtype=np.float32)
        return plane
    return value


# -- functions: name → (min args, max args, per-frame cost, numpy implementation) ----------------


def _clamp(v: Num, lo: Num, hi: Num) -> Num:
    return np.clip(v, lo, hi)


def _mix(a: Num, b: Num, k: Num) -> Num:
    return a + (b - a) * k


def _smoothstep(e0: Num, e1: Num, v: Num) -> Num:
    with np.errstate(divide="ignore", invalid="ignore"):
        k: Array = np.clip((np.asarray(v, np.float32) - e0) / (np.asarray(e1, np.float32) - e0), 0, 1)
    smooth: Array = k * k * (3 - 2 * k)
    return smooth


def _rgb(r: Num, g: Num, b: Num) -> Array:
    parts = np.broadcast_arrays(_as_array(_plane(r)), _as_array(_plane(g)), _as_array(_plane(b)))
    return np.concatenate(parts, axis=2)


def _channel(img: Num, k: Num) -> Num:
    index = int(k) if not isinstance(k, np.ndarray) else int(k.flat[0])
    if not 0 <= index <= 2:
        raise InvalidInputError(f"channel {index}: a colour has channels 0, 1 and 2")
    if isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3:
        return img[:, :, index : index + 1]
    return img


def _gray(img: Num) -> Num:
    if isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3:
        weights = np.asarray([0.299, 0.587, 0.114], np.float32)
        return (img @ weights)[:, :, None]
    return img


def _rgb_to_hsv(img: Num) -> Array:
    rgb = _as_array(img)
    if rgb.shape[2] != 3:
        rgb = np.repeat(rgb, 3, axis=2)
    r, g, b = (rgb[:, :, k] / 255.0 for k in range(3))
    high = np.maximum(np.maximum(r, g), b)
    low = np.minimum(np.minimum(r, g), b)
    span = high - low
    safe = np.where(span == 0, 1, span)
    h = np.where(high == r, (g - b) / safe % 6, np.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6
    h = np.where(span == 0, 0, h)
    s = np.where(high == 0, 0, span / np.where(high == 0, 1, high))
    return np.stack([h, s, high * 255.0], axis=2).astype(np.float32)


def _hsv_to_rgb(img: Num) -> Array:
    hsv = _as_array(img)
    h, s, v = (hsv[:, :, k] for k in range(3))
    h6 = (h % 1.0) * 6
    c = (v / 255.0) * s
    xx = c * (1 - np.abs(h6 % 2 - 1))
    m = v / 255.0 - c
    zero = np.zeros_like(c)
    sector = np.floor(h6).astype(np.int32) % 6
    choices = [(c, xx, zero), (xx, c, zero), (zero, c, xx), (zero, xx, c), (xx, zero, c), (c, zero, xx)]
    out = [np.select([sector == k for k in range(6)], [choice[ch] for choice in choices]) for ch in range(3)]
    return ((np.stack(out, axis=2) + m[:, :, None]) * 255.0).astype(np.float32)


def _box(img: Array, radius: int, axis: int) -> Array:
    if radius <= 0:
        return img
    pad = [(0, 0)] * img.ndim
    pad[axis] = (radius + 1, radius)
    padded = np.pad(img, pad, mode="edge")
    summed = np.cumsum(padded, axis=axis, dtype=np.float32)
    size = img.shape[axis]
    upper = np.take(summed, np.arange(2 * radius + 1, 2 * radius + 1 + size), axis=axis)
    lower = np.take(summed, np.arange(0, size), axis=axis)
    return ((upper - lower) / (2 * radius + 1)).astype(np.float32)


def _blur(img: Num, radius: Num) -> Num:
    if not isinstance(img, np.ndarray) or img.shape[0] == 1:
        return img
    r = float(radius) if not isinstance(radius, np.ndarray) else float(radius.flat[0])
    if not 0 <= r <= MAX_BLUR_RADIUS:
        raise InvalidInputError(f"blur radius {r:g}: it is 0 to {MAX_BLUR_RADIUS:g} pixels")
    # Three box passes each way approximate a Gaussian of that radius.
    k = max(0, round(r / math.sqrt(3)))
    out = img
    for _ in range(3):
        out = _box(_box(out, k, 0), k, 1)
    return out


def _convolve(img: Num, kernel: Num) -> Num:
    if not isinstance(img, np.ndarray) or img.shape[0] == 1:
        return img
    weights = np.asarray(kernel, np.float32)
    if weights.ndim == 3:
        weights = weights[:, :, 0]
    rows, cols = weights.shape
    pad = ((rows // 2, rows - 1 - rows // 2), (cols // 2, cols - 1 - cols // 2), (0, 0))
    padded = np.pad(img, pad, mode="edge")
    out = np.zeros_like(img)
    h, w = img.shape[:2]
    for dy in range(rows):
        for dx in range(cols):
            if weights[dy, dx]:
                out += weights[dy, dx] * padded[dy : dy + h, dx : dx + w]
    return out


@dataclass(frozen=True)
class _Gather:
    """Where a remap reads: four neighbours' flat indices and their bilinear weights."""

    corners: tuple[npt.NDArray[np.intp], ...]
    weights: tuple[Array, ...]


def _coords(xs: Num, ys: Num, h: int, w: int) -> tuple[Array, Array]:
    """Where a remap reads, in pixels (H, W), clamped to the frame."""
    with np.errstate(all="ignore"):  # (an infinite coordinate is clamped; NaN is refused below)
        fx = np.clip(np.broadcast_to(_plane(xs), (h, w, 1))[:, :, 0] * (w - 1), 0, w - 1).astype(np.float32)
        fy = np.clip(np.broadcast_to(_plane(ys), (h, w, 1))[:, :, 0] * (h - 1), 0, h - 1).astype(np.float32)
    if np.isnan(fx).any() or np.isnan(fy).any():
        raise ValueError("a remap's coordinates are not a number (NaN): a division by zero?")
    return fx, fy


def _gather_plan(xs: Num, ys: Num, h: int, w: int) -> _Gather:
    fx, fy = _coords(xs, ys, h, w)
    x0, y0 = np.floor(fx).astype(np.intp), np.floor(fy).astype(np.intp)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    ax, ay = (fx - x0)[:, :, None], (fy - y0)[:, :, None]
    corners = (y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1)
    weights = ((1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay)
    return _Gather(corners, tuple(wt.astype(np.float32) for wt in weights))


def _sample(img: Num, plan: _Gather) -> Num:
    """`img` read where `plan` says: bilinear, clamped at the edges."""
    if not isinstance(img, np.ndarray) or img.shape[0] == 1:
        return img
    h, w, channels = img.shape
    flat = img.reshape(h * w, channels)
    out: Array = np.zeros((h, w, channels), np.float32)
    for corner, weight in zip(plan.corners, plan.weights, strict=True):
        if weight.any():
            out += np.take(flat, corner, axis=0) * weight
    return out


def _compare(op: Callable[[Any, Any], Any]) -> Callable[..., Num]:
    def run(a: Num, b: Num) -> Num:
        result = op(a, b)
        return result.astype(np.float32) if isinstance(result, np.ndarray) else float(result)

    return run


def _safe(fn: Callable[..., Any]) -> Callable[..., Num]:
    def run(*args: Num) -> Num:
        with np.errstate(all="ignore"):  # NaN and inf are caught on the result, with the effect's name
            result = fn(*args)
        if isinstance(result, np.ndarray):
            return result.astype(np.float32, copy=False)
        return float(result)

    return run


def _fold(op: Callable[[Any, Any], Any]) -> Callable[..., Num]:
    def run(*args: Num) -> Num:
        total = args[0]
        for arg in args[1:]:
            total = op(total, arg)
        return total

    return run


def _minus(*args: Num) -> Num:
    return -args[0] if len(args) == 1 else _fold(np.subtract)(*args)


# name → (least args, most args (None: any), cost per frame, pointwise, implementation)
FUNCTIONS: dict[str, tuple[int, int | None, float, bool, Callable[..., Num]]] = {
    "+": (1, None, 1, True, _safe(_fold(np.add))),
    "-": (1, None, 1, True, _safe(_minus)),
    "*": (1, None, 1, True, _safe(_fold(np.multiply))),
    "/": (2, None, 1, True, _safe(_fold(np.divide))),
    "mod": (2, 2, 1, True, _safe(np.mod)),
    "pow": (2, 2, 2, True, _safe(np.power)),
    "sqrt": (1, 1, 1, True, _safe(np.sqrt)),
    "abs": (1, 1, 1, True, _safe(np.abs)),
    "min": (2, None, 1, True, _safe(_fold(np.minimum))),
    "max": (2, None, 1, True, _safe(_fold(np.maximum))),
    "clamp": (3, 3, 1, True, _safe(_clamp)),
    "floor": (1, 1, 1, True, _safe(np.floor)),
    "ceil": (1, 1, 1, True, _safe(np.ceil)),
    "round": (1, 1, 1, True, _safe(np.round)),
    "sin": (1, 1, 2, True, _safe(np.sin)),
    "cos": (1, 1, 2, True, _safe(np.cos)),
    "tan": (1, 1, 2, True, _safe(np.tan)),
    "atan2": (2, 2, 2, True, _safe(np.arctan2)),
    "exp": (1, 1, 2, True, _safe(np.exp)),
    "log": (1, 1, 2, True, _safe(np.log)),
    "mix": (3, 3, 2, True, _safe(_mix)),
    "smoothstep": (3, 3, 3, True, _safe(_smoothstep)),
    "<": (2, 2, 1, True, _compare(np.less)),
    ">": (2, 2, 1, True, _compare(np.greater)),
    "<=": (2, 2, 1, True, _compare(np.less_equal)),
    ">=": (2, 2, 1, True, _compare(np.greater_equal)),
    "=": (2, 2, 1, True, _compare(np.equal)),
    "if": (3, 3, 2, True, _safe(np.where)),
    "rgb": (3, 3, 1, False, _rgb),
    "channel": (2, 2, 0, False, _channel),
    "gray": (1, 1, 1, False, _gray),
    "rgb->hsv": (1, 1, 6, False, _rgb_to_hsv),
    "hsv->rgb": (1, 1, 8, False, _hsv_to_rgb),
    "blur": (2, 2, 14, False, _blur),
    "convolve": (2, 2, 0, False, _convolve),  # its cost is its kernel's size
}
NAMES = ("frame", "r", "g", "b", "x", "y", "cx", "cy", "t", "i", "width", "height", "pi")


def _constant(value: Num) -> Eval:
    return lambda _f, _p: value


def _param_reader(name: str) -> Eval:
    return lambda f, _p: f.params[name]


def _channel_reader(k: int) -> Eval:
    return lambda f, _p: f.channel(k)


def _place_reader(name: str) -> Eval:
    def read(_f: _Frame, p: _Place) -> Num:
        value: int | Array = getattr(p, name)
        return float(value) if isinstance(value, int) else value

    return read


def _read_frame(f: _Frame, _p: _Place) -> Num:
    return f.frame


def _read_time(f: _Frame, _p: _Place) -> Num:
    return f.t


def _read_index(f: _Frame, _p: _Place) -> Num:
    return float(f.i)


class _Compiler:
    def __init__(self, params: dict[str, ParamDecl]) -> None:
        self.params = params
        self.nodes = 0

    def compile(self, value: Value, scope: dict[str, Node]) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise value.pos.error(f"the effect is larger than {MAX_NODES} expressions")
        if isinstance(value, Atom):
            if isinstance(value.value, bool) or not isinstance(value.value, int | float):
                raise value.pos.error(f"{value.value!r}: only numbers are values here")
            number = float(value.value)
            return Node(_constant(number), CONST, 0, value.pos, const=number, op="const")
        if isinstance(value, Symbol):
            return self.name(value, scope)
        if isinstance(value, SList) and value.kind == "vector":
            items = [self.compile(item, scope) for item in value.items]
            if not items or len(items) > MAX_KERNEL or any(item.const is None for item in items):
                return self.vector_error(value)
            return self.literal(value, items)
        if isinstance(value, SMap | Keyword):
            raise value.pos.error("a map or :keyword is no value in an effect's body")
        assert isinstance(value, SList)
        name = head(value)
        if name is None:
            raise value.pos.error("a call starts with a function's name, like (+ frame 10)")
        args = value.items[1:]
        if name == "channel" and len(args) == 2 and head(args[0]) == "sample":
            # One channel of a remap is the remap of one channel: a third of the reads.
            remap = args[0]
            assert isinstance(remap, SList)
            if len(remap.items) == 4:
                inner = SList((value.items[0], remap.items[1], args[1]), value.pos)
                return self.compile(SList((remap.items[0], inner, *remap.items[2:]), remap.pos), scope)
        if name == "channel" and len(args) == 2 and isinstance(args[0], Symbol) and args[0].name == "frame":
            k = args[1].value if isinstance(args[1], Atom) else None
            if k in (0, 1, 2) and not isinstance(k, bool):  # (channel frame 0) is r: it reads that channel alone
                return self.name(Symbol("rgb"[int(k)], args[0].pos), scope)
        if name == "let":
            return self.let(value, args, scope)
        if name == "sample":
            return self.sample(value, args, scope)
        if name == "noise":
            return self.noise(value, args)
        if name not in FUNCTIONS:
            known = ", ".join([*sorted(FUNCTIONS), "let", "noise", "sample"])
            raise value.items[0].pos.error(f"unknown function {name!r} (known: {known})")
        least, most, cost, pointwise, fn = FUNCTIONS[name]
        if len(args) < least or (most is not None and len(args) > most):
            wanted = f"{least}" if least == most else f"{least} or more" if most is None else f"{least} to {most}"
            raise value.pos.error(f"({name} …) takes {wanted} arguments, not {len(args)}")
        compiled = [self.compile(arg, scope) for arg in args]
        if name == "convolve":
            kernel = compiled[1].const
            if not isinstance(kernel, np.ndarray) or kernel.ndim != 3 or kernel.shape[2] != 1:
                raise args[1].pos.error("a kernel is a literal matrix of numbers, like [[0 1 0] [1 -4 1] [0 1 0]]")
            cost = float(kernel.shape[0] * kernel.shape[1])
        return self.call(value.pos, name, fn, compiled, cost, pointwise)

    def literal(self, value: SList, items: list[Node]) -> Node:
        consts = [item.const for item in items]
        if all(isinstance(c, float) for c in consts):
            array = np.asarray(consts, np.float32).reshape(1, 1, len(consts))
        elif all(isinstance(c, np.ndarray) and c.shape == consts[0].shape for c in consts):  # type: ignore[union-attr]
            array = np.stack([np.asarray(c).reshape(-1) for c in consts]).astype(np.float32)[:, :, None]
        else:
            return self.vector_error(value)
        return Node(_constant(array), CONST, 0, value.pos, const=array, op="const")

    def vector_error(self, value: SList) -> Node:
        raise value.pos.error(
            f"a vector holds 1 to {MAX_KERNEL} literal numbers (a colour [255 0 0]) or rows of them (a kernel)"
        )

    def name(self, symbol: Symbol, scope: dict[str, Node]) -> Node:
        name = symbol.name
        if name in scope:
            return scope[name]
        if name in self.params:
            return Node(_param_reader(name), PLACE, 0, symbol.pos, params=frozenset({name}), op="param")
        pos = symbol.pos
        match name:
            case "frame":
                return Node(_read_frame, FRAME, 0, pos, uses_frame=True, op="frame")
            case "r" | "g" | "b":
                k = "rgb".index(name)
                return Node(_channel_reader(k), FRAME, 0, pos, pointwise=False, uses_frame=True, op=name)
            case "x" | "y" | "cx" | "cy":
                return Node(_place_reader(name), PLACE, 0, pos, pointwise=False, op=name)
            case "width" | "height":
                return Node(_place_reader(name), PLACE, 0, pos, op=name)
            case "t":
                return Node(_read_time, FRAME, 0, pos, clock=True, op="t")
            case "i":
                return Node(_read_index, FRAME, 0, pos, clock=True, op="i")
            case "pi":
                return Node(_constant(math.pi), CONST, 0, pos, const=math.pi, op="const")
            case "noise":
                raise pos.error("noise is called: (noise) for one plane, (noise 3) for a colour")
        known = ", ".join([*NAMES, *sorted(self.params), *sorted(scope)])
        raise pos.error(f"unknown name {name!r} (known: {known})")

    def let(self, value: SList, args: tuple[Value, ...], scope: dict[str, Node]) -> Node:
        if len(args) != 2 or not isinstance(args[0], SList) or len(args[0].items) % 2:
            raise value.pos.error("(let [name value …] body): names and values in pairs, then one body")
        inner = dict(scope)
        pairs = args[0].items
        for name, expr in zip(pairs[::2], pairs[1::2], strict=True):
            if not isinstance(name, Symbol) or name.name in FUNCTIONS or name.name in NAMES:
                raise name.pos.error("a let binds plain names (not a function's or a built-in name)")
            inner[name.name] = self.compile(expr, inner)
        return self.compile(args[1], inner)

    def sample(self, value: SList, args: tuple[Value, ...], scope: dict[str, Node]) -> Node:
        if len(args) != 3:
            raise value.pos.error("(sample image xs ys) takes 3 arguments")
        img, xs, ys = (self.compile(arg, scope) for arg in args)
        plans: dict[tuple[Any, ...], _Gather] = {}
        names = sorted(xs.params | ys.params)

        def plan(f: _Frame, p: _Place, h: int, w: int) -> _Gather:
            x_value, y_value = xs.run(f, p), ys.run(f, p)
            if xs.varies == FRAME or ys.varies == FRAME:
                return _gather_plan(x_value, y_value, h, w)
            # Coordinates of the place alone (a fixed remap): where to read is worked out once.
            key = (h, w, *(_key(f.params[n]) for n in names))
            found = plans.get(key)
            if found is None:
                found = _gather_plan(x_value, y_value, h, w)
                plans.clear()
                plans[key] = found
            return found

        def run(f: _Frame, p: _Place) -> Num:
            image = img.run(f, p)
            if not isinstance(image, np.ndarray) or image.shape[0] == 1:
                return image
            return _sample(image, plan(f, p, image.shape[0], image.shape[1]))

        parts = (img, xs, ys)
        node = Node(run, max(p.varies for p in parts), sum(p.cost for p in parts) + 6, value.pos, False)
        node.uses_frame, node.clock = any(p.uses_frame for p in parts), any(p.clock for p in parts)
        node.op, node.args = "sample", parts
        return self.cached(node, [img, xs, ys])

    def noise(self, value: SList, args: tuple[Value, ...]) -> Node:
        """(noise): a plane of uniform 0..1 values, new every frame, seeded from the step; (noise 3): a colour."""
        channels = 1
        if args:
            if len(args) > 1 or not isinstance(args[0], Atom) or args[0].value not in (1, 3):
                raise value.pos.error("(noise) or (noise 3): one plane, or three channels")
            channels = int(args[0].value or 1)

        def run(f: _Frame, p: _Place) -> Num:
            return f.rng.random((p.height, p.width, channels), dtype=np.float32)

        return Node(run, FRAME, channels, value.pos, pointwise=False, clock=True, op="noise")

    def call(self, pos: Pos, name: str, fn: Callable[..., Num], args: list[Node], cost: float, pointwise: bool) -> Node:
        runs = [a.run for a in args]

        def run(f: _Frame, p: _Place) -> Num:
            return fn(*(r(f, p) for r in runs))

        node = Node(
            run,
            max((a.varies for a in args), default=CONST),
            sum(a.cost for a in args) + cost,
            pos,
            pointwise and all(a.pointwise for a in args),
            any(a.uses_frame for a in args),
            clock=any(a.clock for a in args),
            op=name,
            args=tuple(args),
        )
        if node.varies == CONST and all(a.const is not None for a in args):
            folded = fn(*(a.const for a in args))
            node.const, node.run, node.cost = folded, _constant(folded), 0
            return node
        return self.cached(node, args)

    def cached(self, node: Node, args: list[Node]) -> Node:
        """A value of the place and parameters alone is computed once per run and parameter values."""
        node.params = frozenset().union(*(a.params for a in args))
        if node.varies != PLACE:
            return node
        run, names = node.run, sorted(node.params)
        memo: dict[tuple[Any, ...], Num] = {}

        def once(f: _Frame, p: _Place) -> Num:
            key = (p.width, p.height, *(_key(f.params[n]) for n in names))
            value = memo.get(key)
            if value is None:  # (runs in threads share the memo: read once, store whole)
                value = run(f, p)
                memo.clear()
                memo[key] = value
            return value

        node.run, node.cost = once, 0
        return node


def _key(value: float | Array) -> Any:
    return value.tobytes() if isinstance(value, np.ndarray) else value


# -- declarations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamDecl:
    """A declared parameter: a number (with a default and an optional range) or a colour."""

    name: str
    kind: Literal["float", "int", "color"]
    default: float | tuple[int, int, int]
    low: float | None = None
    high: float | None = None
    description: str = ""


@dataclass(frozen=True)
class UserEffect:
    """A compiled user effect: its declaration, its compiled body, and the source's CID once stored."""

    name: str
    params: tuple[ParamDecl, ...]
    body: Node
    description: str
    source: str

    def spec(self, cid: str) -> EffectSpec:
        """The effect as the renderer runs it, under its CID (which its steps' ids include)."""
        return EffectSpec(
            name=cid,
            version=LANGUAGE_VERSION,
            params_model=self.params_model(),
            description=self.description or f"{self.name} (a user effect)",
            factory=self.factory,
        )

    def params_model(self) -> type[BaseModel]:
        fields: dict[str, Any] = {}
        for p in self.params:
            if p.kind == "color":
                fields[p.name] = (Rgb, Field(p.default, description=p.description))
            else:
                fields[p.name] = (
                    float if p.kind == "float" else int,
                    Field(p.default, ge=p.low, le=p.high, description=p.description),
                )
        model: type[BaseModel] = create_model(
            f"{self.name.title().replace('-', '').replace('_', '')}Params",
            __base__=EffectParams,
            __config__=None,
            **fields,
        )
        return model

    def factory(self, params: BaseModel, setup: EffectSetup) -> FrameEffect:
        place = _place(setup.width, setup.height)
        body, name = self.body, self.name
        fast = _fast_path(body, place) if FAST_PATHS else None

        def apply(frame: Frame, ctx: FrameContext) -> Frame:
            values = {p.name: _param_value(getattr(ctx.params, p.name)) for p in self.params}
            env = _Frame(frame, values, ctx.time_s, ctx.index, setup.seed)
            if fast is not None:
                try:
                    out = fast(frame, env, place)
                except (ValueError, IndexError):  # the general evaluation says what is wrong
                    out = None
                if out is not None:
                    return out
            try:
                return _to_frame(body.run(env, place), frame.shape, name, ctx.index)
            except (ValueError, IndexError) as exc:  # shapes that do not go together
                raise InvalidMediaError(f"effect {name}: {exc}") from None

        return apply


def _param_value(value: Any) -> float | Array:
    if isinstance(value, tuple):
        return np.asarray(value, np.float32).reshape(1, 1, 3)
    return float(value)


def _place(width: int, height: int) -> _Place:
    x = (np.arange(width, dtype=np.float32) / np.float32(max(1, width - 1))).reshape(1, width, 1)
    y = (np.arange(height, dtype=np.float32) / np.float32(max(1, height - 1))).reshape(height, 1, 1)
    return _Place(width, height, x, y, (x * 2 - 1).astype(np.float32), (y * 2 - 1).astype(np.float32))


def _to_frame(value: Num, shape: tuple[int, ...], name: str, index: int) -> Frame:
    array = _as_array(value)
    try:
        out = np.broadcast_to(array, shape)  # also refuses a value larger than the frame
    except ValueError:
        raise InvalidMediaError(f"effect {name}: its value has shape {array.shape}, not a frame's {shape}") from None
    if not np.isfinite(out).all():
        raise InvalidMediaError(
            f"effect {name}: its value is not a number (NaN or infinite) at frame {index}: a division by zero?"
        )
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# -- fast paths ----------------------------------------------------------------------------------
#
# The general evaluation above works in float32 on whole frames. Most effects people write have a
# shape that integer arithmetic on the uint8 frame computes as well, several times faster. A run
# looks for one when it starts (`_fast_path`) and uses the general evaluation for any frame the
# fast path declines (a value that is no number, shapes that do not go together: the general
# evaluation then says what is wrong). Each rule below is pinned by a test against the general
# evaluation (FAST_PATHS off):
#
# - a body of each channel's own value: a 256-entry table per channel, made by the general
#   evaluation of every value, so bit-exact; applied in one integer pass where the table is a
#   clipped, shifted ramp or its negative (invert, brightness, levels' clipping), else looked up;
# - a body linear in the frame, frame·gain + offset, where gain and offset read no pixel (a
#   vignette, a tint towards a colour): (v·G + O + 128) >> 8 with G = round(256·gain) and
#   O = round(256·offset), clipped to 0..255: within ±1 of the general evaluation;
# - (rgb …) of channels as they are, remapped (`sample` with coordinates that read no pixel), or
#   of no pixel at all; and a remap of the whole frame: integer gathers, with bilinear weights
#   rounded to 1/256 (one axis) or 1/4096 (both), rounded half up: within ±1, exact where the
#   remap reads whole pixels.

FAST_PATHS = True
"""False makes every run use the general evaluation (for the tests that compare the two)."""

FastPath = Callable[[Frame, _Frame, _Place], Frame | None]
_UNSET: Any = object()


def _fast_path(body: Node, place: _Place) -> FastPath | None:
    """A faster way to run `body` over this run's frames, if it has a shape that has one."""
    if not body.uses_frame:
        return None
    if body.pointwise:
        return _TablePath(body, place)
    linear = _linear(body)
    if linear is not None:
        return _LinearPath(linear)
    return _planes_path(body)


class _PerValues:
    """Something derived from pixel-free nodes, rebuilt only when their parameters change (or every
    frame, when one of them changes with the time)."""

    def __init__(self, leaves: tuple[Node, ...], each_frame: bool) -> None:
        self.names = sorted(frozenset().union(*(n.params for n in leaves)))
        self.each_frame = each_frame
        self.key: Any = _UNSET

    def changed(self, f: _Frame) -> bool:
        """Whether the value must be rebuilt for this frame (and remember that it now will be)."""
        if self.each_frame:
            return True
        key = tuple(_key(f.params[n]) for n in self.names)
        if key == self.key:
            return False
        self.key = key
        return True


class _TablePath(_PerValues):
    """A body of each channel's own value: a table per channel, from the general evaluation."""

    RAMP = np.repeat(np.arange(256, dtype=np.float32).reshape(256, 1, 1), 3, axis=2)

    def __init__(self, body: Node, place: _Place) -> None:
        super().__init__((body,), body.clock)  # (it varies with the frame, but its table does not)
        self.body = body
        # A body of each pixel's own value reads no x or y, but may read the frame's size.
        self.place = _Place(place.width, place.height, place.x[:, :1], place.y[:1], place.cx[:, :1], place.cy[:1])
        self.apply: Callable[[Frame], Frame] | None = None

    def __call__(self, frame: Frame, f: _Frame, p: _Place) -> Frame | None:
        if self.changed(f):
            self.apply = None
            ramp = _Frame(self.RAMP, f.params, f.t, f.i, f.seed)
            tables = _as_array(self.body.run(ramp, self.place))
            if tables.ndim == 3 and tables.shape[0] in (1, 256) and tables.shape[1] == 1:
                tables = np.broadcast_to(tables, (256, 1, 3))
                if np.isfinite(tables).all():  # else the general evaluation fails the frames that have it
                    self.apply = table_pass(np.clip(np.rint(tables[:, 0, :].T), 0, 255).astype(np.uint8))
        return None if self.apply is None else self.apply(frame)


# frame·gain + offset, where gain and offset are (functions of) nodes that read no pixel.
_Term = float | Eval


@dataclass(frozen=True)
class _Linear:
    gain: _Term
    offset: _Term
    leaves: tuple[Node, ...]


def _term(term: _Term, f: _Frame, p: _Place) -> Num:
    return term if isinstance(term, float) else term(f, p)


def _join(op: Callable[[Any, Any], Any], a: _Term, b: _Term) -> _Term:
    if isinstance(a, float) and isinstance(b, float):
        return float(op(a, b))
    if (b == 0.0 and op in (np.add, np.subtract)) or (b == 1.0 and op in (np.multiply, np.divide)):
        return a
    return lambda f, p: op(_term(a, f, p), _term(b, f, p))


def _linear(node: Node) -> _Linear | None:
    """`node` as frame·gain + offset, if it is one."""
    if not node.uses_frame:
        return _Linear(0.0, node.const if isinstance(node.const, float) else node.run, (node,))
    if node.op == "frame":
        return _Linear(1.0, 0.0, ())
    if node.op not in ("+", "-", "*", "/", "mix"):
        return None
    parts = [_linear(arg) for arg in node.args]
    if any(part is None for part in parts):
        return None
    terms: list[_Linear] = parts  # type: ignore[assignment]
    leaves = tuple(leaf for part in terms for leaf in part.leaves)
    gain, offset = terms[0].gain, terms[0].offset
    match node.op:
        case "-" if len(terms) == 1:
            gain, offset = _join(np.subtract, 0.0, gain), _join(np.subtract, 0.0, offset)
        case "+" | "-":
            op = np.add if node.op == "+" else np.subtract
            for part in terms[1:]:
                gain, offset = _join(op, gain, part.gain), _join(op, offset, part.offset)
        case "*":
            linear = [part for arg, part in zip(node.args, terms, strict=True) if arg.uses_frame]
            if len(linear) > 1:  # frame·frame
                return None
            factor: _Term = 1.0
            for arg, part in zip(node.args, terms, strict=True):
                if not arg.uses_frame:
                    factor = _join(np.multiply, factor, part.offset)
            gain, offset = _join(np.multiply, linear[0].gain, factor), _join(np.multiply, linear[0].offset, factor)
        case "/":
            if any(arg.uses_frame for arg in node.args[1:]):
                return None
            for part in terms[1:]:
                gain, offset = _join(np.divide, gain, part.offset), _join(np.divide, offset, part.offset)
        case _:  # mix: a + (b - a)·k
            b, k = terms[1], terms[2].offset
            if node.args[2].uses_frame:
                return None
            gain = _join(np.add, gain, _join(np.multiply, _join(np.subtract, b.gain, gain), k))
            offset = _join(np.add, offset, _join(np.multiply, _join(np.subtract, b.offset, offset), k))
    return _Linear(gain, offset, leaves)


class _LinearPath(_PerValues):
    """frame·gain + offset in fixed point."""

    def __init__(self, linear: _Linear) -> None:
        super().__init__(linear.leaves, any(leaf.varies == FRAME for leaf in linear.leaves))
        self.linear = linear
        self.apply: Callable[[Frame], Frame] | None = None

    def __call__(self, frame: Frame, f: _Frame, p: _Place) -> Frame | None:
        if self.changed(f):
            self.apply = None
            self.apply = self.weigh(frame.shape, f, p)
        return None if self.apply is None else self.apply(frame)

    def weigh(self, shape: tuple[int, ...], f: _Frame, p: _Place) -> Callable[[Frame], Frame] | None:
        with np.errstate(all="ignore"):
            gain = np.asarray(_term(self.linear.gain, f, p), np.float64)
            offset = np.asarray(_term(self.linear.offset, f, p), np.float64)
        if np.broadcast_shapes(gain.shape, offset.shape, shape) != shape:
            return None
        if not (np.isfinite(gain).all() and np.isfinite(offset).all()):
            return None
        g, o = np.rint(gain * 256), np.rint(offset * 256) + 128
        if np.abs(g).max() * 255 + np.abs(o).max() >= 2**31:
            return None
        if g.min() >= 0 and o.min() >= 0 and g.max() * 255 + o.max() < 2**16:
            return _fixed_point(g, o, shape, np.dtype(np.uint16))  # never over 255: no clipping
        return _fixed_point(g, o, shape, np.dtype(np.int32))


def _fixed_point(
    gain: npt.NDArray[np.float64], offset: npt.NDArray[np.float64], shape: tuple[int, ...], dtype: np.dtype[Any]
) -> Callable[[Frame], Frame]:
    """(v·gain + offset) >> 8, clipped to 0..255."""

    def laid_out(values: npt.NDArray[np.float64]) -> Any:
        if (values == values.flat[0]).all():  # one value (an offset of 0·mask): a scalar, no array to read
            return dtype.type(values.flat[0])
        return np.ascontiguousarray(np.broadcast_to(values.astype(dtype), shape))  # same-shape: no broadcast

    g, o = laid_out(gain), laid_out(offset)
    clip = dtype != np.uint16

    def apply(frame: Frame) -> Frame:
        work = frame.astype(dtype)  # (a same-type multiply is faster than one that casts as it goes)
        np.multiply(work, g, out=work)
        np.add(work, o, out=work)
        np.right_shift(work, 8, out=work)
        if clip:
            np.clip(work, 0, 255, out=work)
        return work.astype(np.uint8)

    return apply


def _frame_channel(node: Node) -> int | None:
    """Which channel of the frame `node` is, read as it is (r, g, b or (channel frame k))."""
    if node.op in ("r", "g", "b"):
        return "rgb".index(node.op)
    if node.op == "channel" and node.args[0].op == "frame" and isinstance(node.args[1].const, float):
        k = node.args[1].const
        return int(k) if k in (0.0, 1.0, 2.0) else None
    return None


def _fixed_remap(node: Node) -> bool:
    """Whether a `sample` reads where no pixel value decides (its coordinates read no pixel)."""
    return not (node.args[1].uses_frame or node.args[2].uses_frame)


PlaneWriter = Callable[[Frame, _Frame, _Place, npt.NDArray[np.uint8]], bool]


def _planes_path(body: Node) -> FastPath | None:
    """(rgb …) of planes written straight into the frame, or a remap of the whole frame."""
    if body.op == "sample" and body.args[0].op == "frame" and _fixed_remap(body):
        remap = _Resample(body, None)

        def whole(frame: Frame, f: _Frame, p: _Place) -> Frame | None:
            out = np.empty(frame.shape, np.uint8)
            return out if remap(frame, f, p, out) else None

        return whole
    if body.op != "rgb":
        return None
    writers = [_plane_writer(arg) for arg in body.args]
    if any(writer is None for writer in writers):
        return None
    ready: list[PlaneWriter] = writers  # type: ignore[assignment]

    def planes(frame: Frame, f: _Frame, p: _Place) -> Frame | None:
        out = np.empty(frame.shape, np.uint8)
        for k, write in enumerate(ready):
            if not write(frame, f, p, out[:, :, k]):
                return None
        return out

    return planes


def _plane_writer(node: Node) -> PlaneWriter | None:
    k = _frame_channel(node)
    if k is not None:

        def copy(frame: Frame, _f: _Frame, _p: _Place, out: npt.NDArray[np.uint8]) -> bool:
            np.copyto(out, frame[:, :, k])
            return True

        return copy
    if node.op == "sample" and _fixed_remap(node):
        k = _frame_channel(node.args[0])
        return None if k is None else _Resample(node, k)
    if not node.uses_frame:

        def value(frame: Frame, f: _Frame, p: _Place, out: npt.NDArray[np.uint8]) -> bool:
            plane = np.broadcast_to(_as_array(_plane(node.run(f, p))), (*out.shape, 1))[:, :, 0]
            if not np.isfinite(plane).all():
                return False
            np.copyto(out, np.clip(np.rint(plane), 0, 255), casting="unsafe")
            return True

        return value
    return None


class _Resample(_PerValues):
    """A remap of the frame or of one channel, with coordinates that read no pixel: integer gathers
    from the interleaved frame, bilinear weights in fixed point."""

    def __init__(self, node: Node, channel: int | None) -> None:
        xs, ys = node.args[1], node.args[2]
        super().__init__((xs, ys), FRAME in (xs.varies, ys.varies))
        self.xs, self.ys, self.channel = xs, ys, channel
        self.run: Callable[[Frame, npt.NDArray[np.uint8]], None] | None = None

    def __call__(self, frame: Frame, f: _Frame, p: _Place, out: npt.NDArray[np.uint8]) -> bool:
        if self.changed(f):
            self.run = None
            self.run = self.plan(frame.shape, f, p)
        if self.run is None:
            return False
        self.run(frame, out)
        return True

    def plan(self, shape: tuple[int, ...], f: _Frame, p: _Place) -> Callable[[Frame, npt.NDArray[np.uint8]], None]:
        h, w = shape[:2]
        if h == 1:  # as `_sample`: a value one row high is left as it is
            return _gather1(np.arange(w * 3) if self.channel is None else np.arange(w) * 3 + self.channel)
        fx, fy = _coords(self.xs.run(f, p), self.ys.run(f, p), h, w)
        # Flat indices into the interleaved frame: pixel·3 + channel.
        lanes = np.arange(3) if self.channel is None else np.asarray([self.channel])

        def flat(rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
            pixel = (rows * w + cols).reshape(-1, 1)
            index: npt.NDArray[np.intp] = (pixel * 3 + lanes).astype(np.intp)
            return index.reshape(-1)

        def spread(weight: npt.NDArray[np.int64], dtype: type[np.unsignedinteger[Any]]) -> Any:
            lanes_of_each = np.broadcast_to(weight.reshape(-1, 1), (weight.size, lanes.size))
            return np.ascontiguousarray(lanes_of_each, dtype).reshape(-1)

        qx, qy = _shift_of(fx, 1), _shift_of(fy, 0)
        if qx is not None and qy is not None and (qx % 256 == 0 or qy % 256 == 0):
            return _shift_plan(qx, qy, self.channel)
        exact_x, exact_y = _whole(fx), _whole(fy)
        if exact_x and exact_y:
            return _gather1(flat(np.rint(fy).astype(np.int64), np.rint(fx).astype(np.int64)))
        if exact_x or exact_y:
            steps = 256
            along, size = (fy, h) if exact_x else (fx, w)
            i0, i1, a = _axis(along, size, steps)
            other = np.rint(fx if exact_x else fy).astype(np.int64)
            rows0, cols0 = (i0, other) if exact_x else (other, i0)
            rows1, cols1 = (i1, other) if exact_x else (other, i1)
            index0, index1 = flat(rows0, cols0), flat(rows1, cols1)
            moving = a[i0 != i1]
            if moving.size == 0:
                return _gather1(index0)
            if (moving == moving[0]).all():  # one weight wherever the two neighbours differ (a shift)
                weight: Any = np.uint16(moving[0])
            else:
                weight = spread(a, np.uint16)
            return _gather2(index0, index1, weight)
        x0, x1, ax = _axis(fx, w, 4096)
        y0, y1, ay = _axis(fy, h, 4096)
        corners = (flat(y0, x0), flat(y0, x1), flat(y1, x0), flat(y1, x1))
        return _gather4(corners, spread(ax, np.uint32), spread(ay, np.uint32))


def _shift_of(coords: Array, axis: int) -> int | None:
    """If a remap reads at a constant offset d along this axis (clamped at the edges): d in 1/256."""
    size = coords.shape[axis]
    ramp = np.arange(size, dtype=np.float64).reshape((-1, 1) if axis == 0 else (1, -1))
    inside = (coords > 0) & (coords < size - 1)
    if not inside.any():
        return None
    first = np.unravel_index(int(np.argmax(inside)), coords.shape)
    offset = float(coords[first]) - first[axis]
    if np.abs(coords - np.clip(ramp + offset, 0, size - 1)).max() > 1 / 1024:
        return None
    return round(offset * 256)


def _shifted(src: npt.NDArray[np.uint8], k: int, length: int, axis: int) -> npt.NDArray[np.uint8]:
    """`src` read from k places on along `axis` (the edge repeated beyond it), `length` long."""
    n = src.shape[axis]
    if k == 0 and length == n:
        return src
    shape = list(src.shape)
    shape[axis] = length
    out = np.empty(shape, np.uint8)
    lo = min(max(-k, 0), length)
    hi = min(max(n - k, lo), length)

    def span(start: int, stop: int) -> tuple[slice, ...]:
        return (slice(None),) * axis + (slice(start, stop),)

    out[span(lo, hi)] = src[span(lo + k, hi + k)]
    out[span(0, lo)] = src[span(0, 1)]
    out[span(hi, length)] = src[span(n - 1, n)]
    return out


def _shift_plan(qx: int, qy: int, channel: int | None) -> Callable[[Frame, npt.NDArray[np.uint8]], None]:
    """A remap by a constant offset (qx, qy in 1/256 px, at most one of them fractional): slices of
    the frame, and (p0·(256 − a) + p1·a + 128) >> 8 between neighbours along the fractional axis."""
    (kx, ax), (ky, ay) = divmod(qx, 256), divmod(qy, 256)
    work: list[npt.NDArray[np.uint16]] = []

    def run(frame: Frame, out: npt.NDArray[np.uint8]) -> None:
        src = frame if channel is None else frame[:, :, channel]
        h, w = src.shape[:2]
        shifted = _shifted(_shifted(src, ky, h + (ay > 0), 0), kx, w + (ax > 0), 1)
        if not ax and not ay:
            np.copyto(out, shifted)
            return
        p0, p1 = (shifted[:, :w], shifted[:, 1:]) if ax else (shifted[:h], shifted[1:])
        if not work:
            work.extend(np.empty(out.shape, np.uint16) for _ in range(2))
        acc, far = work
        a = ax or ay
        np.multiply(p0, np.uint16(256 - a), out=acc)
        np.multiply(p1, np.uint16(a), out=far)
        np.add(acc, far, out=acc)
        np.add(acc, np.uint16(128), out=acc)
        np.right_shift(acc, 8, out=out, casting="unsafe")

    return run


def _whole(coords: Array) -> bool:
    """Whether a remap reads whole pixels along this axis (to within 1/4096 of one)."""
    return bool(np.abs(coords - np.rint(coords)).max() <= 1 / 4096)


def _axis(
    coords: Array, size: int, steps: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The two neighbours along one axis and the far one's weight, in 1/`steps`."""
    q = np.rint(coords.astype(np.float64) * steps).astype(np.int64)
    i0 = q // steps
    return i0, np.minimum(i0 + 1, size - 1), q - i0 * steps


def _gather1(index: npt.NDArray[np.intp]) -> Callable[[Frame, npt.NDArray[np.uint8]], None]:
    def run(frame: Frame, out: npt.NDArray[np.uint8]) -> None:
        np.copyto(out, np.take(frame.reshape(-1), index).reshape(out.shape))

    return run


def _gather2(
    index0: npt.NDArray[np.intp], index1: npt.NDArray[np.intp], weight: Any
) -> Callable[[Frame, npt.NDArray[np.uint8]], None]:
    """(p0·(256 − a) + p1·a + 128) >> 8 in uint16."""
    near = np.uint16(256) - weight
    acc = np.empty(index0.size, np.uint16)
    far = np.empty(index0.size, np.uint16)

    def run(frame: Frame, out: npt.NDArray[np.uint8]) -> None:
        source = frame.reshape(-1)
        np.multiply(np.take(source, index0), near, out=acc)
        np.multiply(np.take(source, index1), weight, out=far)
        np.add(acc, far, out=acc)
        np.add(acc, np.uint16(128), out=acc)
        np.right_shift(acc.reshape(out.shape), 8, out=out, casting="unsafe")

    return run


def _gather4(
    corners: tuple[npt.NDArray[np.intp], ...], ax: npt.NDArray[np.uint32], ay: npt.NDArray[np.uint32]
) -> Callable[[Frame, npt.NDArray[np.uint8]], None]:
    """Bilinear in uint32, weights in 1/4096: ((top·(4096 − ay) + bottom·ay) + 2²³) >> 24."""
    left, up = np.uint32(4096) - ax, np.uint32(4096) - ay
    top = np.empty(ax.size, np.uint32)
    bottom = np.empty(ax.size, np.uint32)
    tmp = np.empty(ax.size, np.uint32)

    def row(source: Frame, i0: npt.NDArray[np.intp], i1: npt.NDArray[np.intp], acc: npt.NDArray[np.uint32]) -> None:
        np.multiply(np.take(source, i0), left, out=acc)
        np.multiply(np.take(source, i1), ax, out=tmp)
        np.add(acc, tmp, out=acc)

    def run(frame: Frame, out: npt.NDArray[np.uint8]) -> None:
        source = frame.reshape(-1)
        row(source, corners[0], corners[1], top)
        row(source, corners[2], corners[3], bottom)
        np.multiply(top, up, out=top)
        np.multiply(bottom, ay, out=bottom)
        np.add(top, bottom, out=top)
        np.add(top, np.uint32(1 << 23), out=top)
        np.right_shift(top.reshape(out.shape), 24, out=out, casting="unsafe")

    return run


# -- the define-effect form ----------------------------------------------------------------------

_NAME = r"[a-z][a-z0-9_-]{0,62}"


def _number(value: Value, what: str) -> float:
    if isinstance(value, Atom) and isinstance(value.value, int | float) and not isinstance(value.value, bool):
        return float(value.value)
    raise value.pos.error(f"{what} is a number")


def _param(value: Value) -> ParamDecl:
    if isinstance(value, Symbol):
        raise value.pos.error(f"parameter {value.name!r} needs a default: ({value.name} :default 1.0)")
    if not (isinstance(value, SList) and value.items and isinstance(value.items[0], Symbol)):
        raise value.pos.error("a parameter is (name :default value [:range [low high]] [:type float|int|color])")
    name = value.items[0].name
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name) or name in NAMES or name in FUNCTIONS:
        raise value.items[0].pos.error(f"{name!r} cannot name a parameter (lower-case, not a built-in name)")
    rest = value.items[1:]
    options: dict[str, Value] = {}
    if len(rest) == 1:  # the original's (name default)
        options["default"] = rest[0]
    else:
        if len(rest) % 2:
            raise value.pos.error(f"parameter {name!r}: options come in :key value pairs")
        for key, option in zip(rest[::2], rest[1::2], strict=True):
            if not isinstance(key, Keyword) or key.name not in ("default", "range", "type", "desc", "description"):
                raise key.pos.error("a parameter's options are :default, :range, :type and :desc")
            options[key.name] = option
    if "default" not in options:
        raise value.pos.error(f"parameter {name!r} needs a :default")
    kind_value = options.get("type")
    kind = kind_value.name if isinstance(kind_value, Symbol) else "color" if _is_colour(options["default"]) else "float"
    if kind not in ("float", "int", "color"):
        raise options["type"].pos.error(f"parameter {name!r}: :type is float, int or color")
    desc = options.get("desc") or options.get("description")
    description = desc.value if isinstance(desc, Atom) and isinstance(desc.value, str) else ""
    if kind == "color":
        default = options["default"]
        if not _is_colour(default):
            raise default.pos.error(f"parameter {name!r}: a colour default is [r g b], each 0..255")
        assert isinstance(default, SList)
        rgb = tuple(int(_number(v, "a channel")) for v in default.items)
        return ParamDecl(name, "color", (rgb[0], rgb[1], rgb[2]), description=description)
    low = high = None
    if "range" in options:
        bounds = options["range"]
        if not (isinstance(bounds, SList) and len(bounds.items) == 2):
            raise bounds.pos.error(f"parameter {name!r}: :range is [low high]")
        low, high = (_number(v, "a bound") for v in bounds.items)
        if low > high:
            raise bounds.pos.error(f"parameter {name!r}: its range [{low:g} {high:g}] is empty")
    default_value = _number(options["default"], f"parameter {name!r}'s default")
    if (low is not None and default_value < low) or (high is not None and default_value > high):
        raise options["default"].pos.error(f"parameter {name!r}: the default {default_value:g} is outside its range")
    if kind == "int":
        return ParamDecl(name, "int", int(default_value), low, high, description)
    return ParamDecl(name, "float", default_value, low, high, description)


def _is_colour(value: Value) -> bool:
    return (
        isinstance(value, SList)
        and value.kind == "vector"
        and len(value.items) == 3
        and all(isinstance(v, Atom) and isinstance(v.value, int) and 0 <= v.value <= 255 for v in value.items)
    )


def compile_effect(text: str) -> UserEffect:
    """Read and compile a `(define-effect …)`; a `SexpError` (an `InvalidInputError`) says where it is wrong."""
    form = read_one(text, "an effect")
    if head(form) != "define-effect":
        raise form.pos.error("an effect is (define-effect name [:params (…)] body)")
    assert isinstance(form, SList)
    items = list(form.items[1:])
    if not items or not isinstance(items[0], Symbol) or not re.fullmatch(_NAME, items[0].name):
        raise form.pos.error("(define-effect name …): a lower-case name comes first")
    name = items.pop(0).name  # type: ignore[union-attr]
    params: list[ParamDecl] = []
    description = ""
    # The original's positional parameter list: (define-effect name ((p default) …) body).
    if len(items) >= 2 and isinstance(items[0], SList) and items[0].kind == "list" and head(items[0]) is None:
        params = [_param(p) for p in items.pop(0).items]  # type: ignore[union-attr]
    while len(items) > 1 and isinstance(items[0], Keyword):
        key, option = items[0], items[1]
        items = items[2:]
        if key.name == "params":
            if not isinstance(option, SList):
                raise option.pos.error(":params is a list of (name :default value …)")
            params = [_param(p) for p in option.items]
        elif key.name in ("description", "desc") and isinstance(option, Atom) and isinstance(option.value, str):
            description = option.value[:500]
        else:
            raise key.pos.error("(define-effect …) takes :params and :description, then its body")
    if len(items) != 1:
        where = items[1].pos if len(items) > 1 else form.pos
        raise where.error("an effect's body is one expression (name intermediate values with let)")
    if len(params) > MAX_PARAMS:
        raise form.pos.error(f"at most {MAX_PARAMS} parameters")
    if len({p.name for p in params}) != len(params):
        raise form.pos.error("a parameter is declared twice")
    compiler = _Compiler({p.name: p for p in params})
    body = compiler.compile(items[0], {})
    if body.cost > MAX_COST:
        raise items[0].pos.error(
            f"the effect costs about {body.cost:.0f} full-frame passes a frame, over the limit of {MAX_COST:g}"
        )
    effect = UserEffect(name, tuple(params), body, description, text)
    _try_on_a_small_frame(effect, items[0])
    return effect


def _try_on_a_small_frame(effect: UserEffect, body: Value) -> None:
    """Run the effect once on a small frame: values that can never make a frame are found now."""
    spec = effect.spec("trial")
    values = spec.params_model()
    run = spec.factory(values, EffectSetup(width=7, height=5, fps=25.0, seed=0))
    frame = np.full((5, 7, 3), 128, np.uint8)
    try:
        run(frame, FrameContext(index=0, time_s=0.0, params=values))
    except InvalidMediaError as exc:
        if "not a number" not in exc.message:  # NaN depends on the pixels; a shape does not
            raise body.pos.error(exc.message.removeprefix(f"effect {effect.name}: ")) from None


def check_effect(text: str) -> UserEffect:
    """`compile_effect`, with a malformed text reported as an `InvalidInputError` naming `source`."""
    try:
        return compile_effect(text)
    except SexpError as exc:
        raise InvalidInputError(exc.message, field="source") from None
