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
coordinates) is computed once per run and parameter values; an expression of each channel's
own value alone (invert, levels, curves) becomes a 256-entry table per channel.
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
from artdag_effects.imaging import apply_lut
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


@dataclass
class _Frame:
    """What one evaluation sees."""

    frame: Array  # (H, W, 3) float32
    params: dict[str, float | Array]
    t: float
    i: int
    rng: np.random.Generator


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
    uses_frame: bool = False
    const: float | Array | None = None
    params: frozenset[str] = field(default_factory=frozenset)


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


def _gather_plan(xs: Num, ys: Num, h: int, w: int) -> _Gather:
    fx = np.clip(np.broadcast_to(_plane(xs), (h, w, 1))[:, :, 0] * (w - 1), 0, w - 1).astype(np.float32)
    fy = np.clip(np.broadcast_to(_plane(ys), (h, w, 1))[:, :, 0] * (h - 1), 0, h - 1).astype(np.float32)
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
    return lambda f, _p: f.frame[:, :, k : k + 1]


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
            return Node(_constant(number), CONST, 0, value.pos, const=number)
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
        return Node(_constant(array), CONST, 0, value.pos, const=array)

    def vector_error(self, value: SList) -> Node:
        raise value.pos.error(
            f"a vector holds 1 to {MAX_KERNEL} literal numbers (a colour [255 0 0]) or rows of them (a kernel)"
        )

    def name(self, symbol: Symbol, scope: dict[str, Node]) -> Node:
        name = symbol.name
        if name in scope:
            return scope[name]
        if name in self.params:
            return Node(_param_reader(name), PLACE, 0, symbol.pos, params=frozenset({name}))
        pos = symbol.pos
        match name:
            case "frame":
                return Node(_read_frame, FRAME, 0, pos, uses_frame=True)
            case "r" | "g" | "b":
                k = "rgb".index(name)
                return Node(_channel_reader(k), FRAME, 0, pos, pointwise=False, uses_frame=True)
            case "x" | "y" | "cx" | "cy":
                return Node(_place_reader(name), PLACE, 0, pos, pointwise=False)
            case "width" | "height":
                return Node(_place_reader(name), PLACE, 0, pos)
            case "t":
                return Node(_read_time, FRAME, 0, pos)
            case "i":
                return Node(_read_index, FRAME, 0, pos)
            case "pi":
                return Node(_constant(math.pi), CONST, 0, pos, const=math.pi)
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

        return self.cached(
            Node(run, max(img.varies, xs.varies, ys.varies), img.cost + xs.cost + ys.cost + 6, value.pos, False),
            [img, xs, ys],
        )

    def noise(self, value: SList, args: tuple[Value, ...]) -> Node:
        """(noise): a plane of uniform 0..1 values, new every frame, seeded from the step; (noise 3): a colour."""
        channels = 1
        if args:
            if len(args) > 1 or not isinstance(args[0], Atom) or args[0].value not in (1, 3):
                raise value.pos.error("(noise) or (noise 3): one plane, or three channels")
            channels = int(args[0].value or 1)

        def run(f: _Frame, p: _Place) -> Num:
            return f.rng.random((p.height, p.width, channels), dtype=np.float32)

        return Node(run, FRAME, channels, value.pos, pointwise=False)

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
        lut = _lut_of(body, name) if body.pointwise and body.uses_frame else None

        def apply(frame: Frame, ctx: FrameContext) -> Frame:
            values = {p.name: _param_value(getattr(ctx.params, p.name)) for p in self.params}
            try:
                return evaluate(frame, ctx, values)
            except (ValueError, IndexError) as exc:  # shapes that do not go together
                raise InvalidMediaError(f"effect {name}: {exc}") from None

        def evaluate(frame: Frame, ctx: FrameContext, values: dict[str, float | Array]) -> Frame:
            if lut is not None:
                tables = lut(values)  # (256, 3): one column per channel
                if (tables == tables[:, :1]).all():
                    return apply_lut(frame, np.ascontiguousarray(tables[:, 0]))
                return apply_lut(frame, np.ascontiguousarray(tables.T))
            env = _Frame(
                frame.astype(np.float32),
                values,
                ctx.time_s,
                ctx.index,
                np.random.default_rng([setup.seed, ctx.index]),
            )
            return _to_frame(body.run(env, place), frame.shape, name, ctx.index)

        return apply


def _param_value(value: Any) -> float | Array:
    if isinstance(value, tuple):
        return np.asarray(value, np.float32).reshape(1, 1, 3)
    return float(value)


def _place(width: int, height: int) -> _Place:
    x = (np.arange(width, dtype=np.float32) / np.float32(max(1, width - 1))).reshape(1, width, 1)
    y = (np.arange(height, dtype=np.float32) / np.float32(max(1, height - 1))).reshape(height, 1, 1)
    return _Place(width, height, x, y, (x * 2 - 1).astype(np.float32), (y * 2 - 1).astype(np.float32))


def _lut_of(body: Node, name: str) -> Callable[[dict[str, float | Array]], npt.NDArray[np.uint8]]:
    """For a body of each channel's own value: its 256-entry table per channel, per parameter values."""
    ramp = np.repeat(np.arange(256, dtype=np.float32).reshape(256, 1, 1), 3, axis=2)
    place = _place(1, 256)
    memo: dict[tuple[Any, ...], npt.NDArray[np.uint8]] = {}

    def table(values: dict[str, float | Array]) -> npt.NDArray[np.uint8]:
        key = tuple(_key(values[n]) for n in sorted(values))
        if key not in memo:
            memo.clear()
            env = _Frame(ramp, values, 0.0, 0, np.random.default_rng(0))
            memo[key] = _to_frame(body.run(env, place), (256, 1, 3), name, 0)[:, 0, :]
        return memo[key]

    return table


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
