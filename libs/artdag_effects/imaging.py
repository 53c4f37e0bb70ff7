"""Fast, vectorised image helpers the built-in effects share (numpy only).

Frames are (H, W, 3) uint8 RGB. Helpers that produce an image return a new
array and never modify their input. Geometry is precomputed where possible:
a `Remap` holds gather indices and weights so that applying it costs a few
array operations per frame.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from artdag_effects.spec import Frame

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.intp]

# Rec. 601 luma weights in 1/256 steps (they sum to 256, so white stays 255).
LUMA_WEIGHTS = (77, 150, 29)
LUMA_F = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (e.g. the frame index)."""
    return np.random.default_rng([seed & 0xFFFF_FFFF_FFFF_FFFF, *keys])


def luma(frame: Frame) -> npt.NDArray[np.uint8]:
    """(H, W) Rec. 601 luma, rounded."""
    r, g, b = LUMA_WEIGHTS
    acc = frame[..., 0] * np.uint16(r)
    acc += frame[..., 1] * np.uint16(g)
    acc += frame[..., 2] * np.uint16(b)
    acc += np.uint16(128)
    acc >>= 8
    return acc.astype(np.uint8)


def to_uint8(image: npt.NDArray[np.floating]) -> Frame:
    """Round and clip a float image into uint8."""
    out = np.rint(image)
    np.clip(out, 0, 255, out=out)
    result: Frame = out.astype(np.uint8)
    return result


def apply_lut(frame: Frame, lut: npt.NDArray[np.uint8]) -> Frame:
    """Map every value through a 256-entry table, or a (3, 256) table per channel."""
    if lut.ndim == 1:
        return np.take(lut, frame)
    flat = np.ascontiguousarray(lut, dtype=np.uint8).reshape(-1)
    index = frame.astype(np.uint16)
    index[..., 1] += 256
    index[..., 2] += 512
    return np.take(flat, index)


def table_pass(lut: npt.NDArray[np.uint8]) -> Callable[[Frame], Frame]:
    """The fastest exact way to map frames through `lut` (256 entries, or (3, 256) per channel).

    A table that is a ramp or its negative, shifted and clipped (clip(±v + c, low, high): the
    identity, an invert, a brightness step, a clamp) becomes one or two integer passes; any
    other goes through `apply_lut`. Either way the output equals the table's.
    """
    table = np.asarray(lut, dtype=np.uint8)
    if table.ndim == 2 and (table == table[:1]).all():
        table = table[0]
    if table.ndim == 2:
        flat = np.ascontiguousarray(table)
        return lambda frame: apply_lut(frame, flat)
    ramp = np.arange(256, dtype=np.int64)
    low, high = int(table.min()), int(table.max())
    if low == high:
        return lambda frame: np.full_like(frame, low)
    for negate in (False, True):
        base = 255 - ramp if negate else ramp
        inside = (table > low) & (table < high)
        shifts = np.unique(table[inside].astype(np.int64) - base[inside])
        if shifts.size != 1 or not np.array_equal(np.clip(base + shifts[0], low, high), table):
            continue
        return _shift_pass(negate, int(shifts[0]), low, high)
    return lambda frame: apply_lut(frame, table)


def _shift_pass(negate: bool, shift: int, low: int, high: int) -> Callable[[Frame], Frame]:
    """clip(±v + shift, low, high) on uint8: clip first, so that the shift stays in 0..255."""
    below, above = max(low - shift, 0), min(high - shift, 255)
    step = np.uint8(shift % 256)  # modular: every value lands in low..high, so it never wraps

    def run(frame: Frame) -> Frame:
        if not negate and shift == 0 and below == 0 and above == 255:
            return frame
        out = np.bitwise_not(frame) if negate else frame.copy()
        if below > 0 or above < 255:
            np.clip(out, below, above, out=out)
        if shift:
            np.add(out, step, out=out)
        return out

    return run


def lut_from(fn_values: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """A uint8 lookup table from float outputs for inputs 0..255 (rounded, clipped)."""
    return to_uint8(np.asarray(fn_values, dtype=np.float64))


def identity_ramp() -> npt.NDArray[np.float64]:
    """The inputs 0..255 as floats, for building lookup tables."""
    return np.arange(256, dtype=np.float64)


def color_matrix(frame: Frame, matrix: npt.ArrayLike, bias: npt.ArrayLike = 0.0) -> Frame:
    """out = M · rgb + bias per pixel, rounded and clipped to uint8."""
    m = np.asarray(matrix, dtype=np.float32).reshape(3, 3)
    flat = frame.reshape(-1, 3).astype(np.float32)
    out = flat @ m.T
    out += np.asarray(bias, dtype=np.float32)
    return to_uint8(out).reshape(frame.shape)


def blend(a: Frame, b: Frame, t: float) -> Frame:
    """(1 − t)·a + t·b; returns `a` itself at t ≤ 0 and `b` itself at t ≥ 1."""
    if t <= 0:
        return a
    if t >= 1:
        return b
    w = np.uint16(round(t * 256))
    out = a * (np.uint16(256) - w)
    out += b * w
    out += np.uint16(128)
    out >>= 8
    return out.astype(np.uint8)


def saturation_matrix(amount: float) -> npt.NDArray[np.float32]:
    """The colour matrix that scales saturation around luma (0 = grey, 1 = unchanged)."""
    grey = np.tile(LUMA_F, (3, 1))
    return (amount * np.eye(3, dtype=np.float32) + (1 - amount) * grey).astype(np.float32)


def hue_rotation_matrix(degrees: float) -> npt.NDArray[np.float32]:
    """Rotate hue about the grey axis by `degrees`, keeping luma (the SVG `hueRotate` matrix)."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    base = np.array([[0.213, 0.715, 0.072]] * 3)
    cos_part = np.array([[0.787, -0.715, -0.072], [-0.213, 0.285, -0.072], [-0.213, -0.715, 0.928]])
    sin_part = np.array([[-0.213, -0.715, 0.928], [0.143, 0.140, -0.283], [-0.787, 0.715, 0.072]])
    return (base + c * cos_part + s * sin_part).astype(np.float32)


# --- blur -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _gaussian_kernel(sigma: float) -> F32:
    radius = max(1, math.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    kernel: F32 = (k / k.sum()).astype(np.float32)
    return kernel


def _convolve_axis(image: F32, kernel: F32, axis: int) -> F32:
    # The kernel is symmetric: add mirrored taps first, halving the multiplies.
    r = kernel.size // 2
    pad = [(0, 0)] * image.ndim
    pad[axis] = (r, r)
    padded = np.pad(image, pad, mode="edge")
    n = image.shape[axis]

    def window(start: int) -> F32:
        return padded[start : start + n] if axis == 0 else padded[:, start : start + n]

    out: F32 = window(r) * kernel[r]
    tmp = np.empty_like(out)
    for i in range(r):
        np.add(window(i), window(2 * r - i), out=tmp)
        tmp *= kernel[i]
        out += tmp
    return out


def _shrink(image: F32, factor: int) -> F32:
    # Box-average factor×factor cells; a partial edge cell is padded by repeating the border.
    h, w = image.shape[:2]
    ph, pw = -h % factor, -w % factor
    if ph or pw:
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
    rows = image[0::factor].copy()
    for i in range(1, factor):
        rows += image[i::factor]
    cells = rows[:, 0::factor].copy()
    for i in range(1, factor):
        cells += rows[:, i::factor]
    cells *= np.float32(1 / factor**2)
    return cells


def _grow_axis(image: F32, factor: int, size: int, axis: int) -> F32:
    # Linear interpolation by an integer factor: output phase k of every cell has fixed weights.
    n = image.shape[axis]
    pad = [(0, 0)] * image.ndim
    pad[axis] = (1, 1)
    padded = np.pad(image, pad, mode="edge")
    shape = list(image.shape)
    shape[axis] = n * factor
    out = np.empty(shape, dtype=np.float32)
    cells = out.reshape(*shape[:axis], n, factor, *shape[axis + 1 :])

    def part(start: int) -> F32:
        return padded[start : start + n] if axis == 0 else padded[:, start : start + n]

    for k in range(factor):
        pos = (k + 0.5) / factor - 0.5
        near, far = (part(1), part(0)) if pos < 0 else (part(1), part(2))
        # Compute contiguously, then copy once into the interleaved output.
        value = near + (far - near) * np.float32(abs(pos))
        if axis == 0:
            cells[:, k] = value
        else:
            cells[:, :, k] = value
    return out[:size] if axis == 0 else out[:, :size]


def _grow(image: F32, height: int, width: int, factor: int) -> F32:
    return _grow_axis(_grow_axis(image, factor, height, 0), factor, width, 1)


def gaussian_blur(image: npt.NDArray[np.generic], sigma: float) -> F32:
    """Gaussian blur of an (H, W, C) image as float32; edges repeat the border pixel.

    Large radii are blurred at a reduced resolution and scaled back up, so the cost
    stays roughly constant whatever the radius.
    """
    img = image.astype(np.float32)
    if sigma < 0.2:
        return img
    h, w = img.shape[:2]
    factor = min(int(sigma // 2), max(1, min(h, w) // 4))
    if factor >= 2:
        small = _shrink(img, factor)
        # Box-averaging already blurred by ≈ factor/√12; remove that share from sigma.
        rest = math.sqrt(max(sigma**2 - factor**2 / 12.0, 0.04)) / factor
        kernel = _gaussian_kernel(round(rest, 3))
        small = _convolve_axis(_convolve_axis(small, kernel, 0), kernel, 1)
        return _grow(small, h, w, factor)
    kernel = _gaussian_kernel(round(sigma, 3))
    return _convolve_axis(_convolve_axis(img, kernel, 0), kernel, 1)


# --- geometry ---------------------------------------------------------------------------------


class Remap:
    """A precomputed bilinear resampling: out[y, x] = frame sampled at (src_y[y, x], src_x[y, x]).

    `edge` says what lies outside the frame: "clamp" repeats the border, "wrap"
    tiles the frame, "reflect" mirrors it, "background" uses a fixed colour.
    """

    def __init__(
        self,
        src_y: npt.NDArray[np.floating],
        src_x: npt.NDArray[np.floating],
        height: int,
        width: int,
        *,
        edge: str = "clamp",
        background: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        self.height, self.width = height, width
        self.out_shape = (*src_y.shape, 3)
        self.background = np.array(background, dtype=np.uint8)
        self.padded = edge == "background"
        # Snap to 1/1024 px so that rounding noise (sin π ≠ 0) cannot tip an exact mapping.
        y = np.round(np.asarray(src_y, dtype=np.float64).reshape(-1) * 1024) / 1024
        x = np.round(np.asarray(src_x, dtype=np.float64).reshape(-1) * 1024) / 1024
        if self.padded:
            # Sample a copy framed by one background pixel; anything outside lands on it.
            ph, pw = height + 2, width + 2
            y = np.clip(y + 1, 0, ph - 1)
            x = np.clip(x + 1, 0, pw - 1)
            y0, x0 = np.floor(y), np.floor(x)
            wy, wx = y - y0, x - x0
            iy0, ix0 = y0.astype(np.intp), x0.astype(np.intp)
            iy1, ix1 = np.minimum(iy0 + 1, ph - 1), np.minimum(ix0 + 1, pw - 1)
            stride = pw
        else:
            y0, x0 = np.floor(y), np.floor(x)
            wy, wx = y - y0, x - x0
            iy0, iy1 = (_fold(v, height, edge) for v in (y0.astype(np.intp), y0.astype(np.intp) + 1))
            ix0, ix1 = (_fold(v, width, edge) for v in (x0.astype(np.intp), x0.astype(np.intp) + 1))
            stride = width
        self.exact = bool(np.all(wy == 0) and np.all(wx == 0))
        self.i00 = iy0 * stride + ix0
        self.i01 = iy0 * stride + ix1
        self.i10 = iy1 * stride + ix0
        self.i11 = iy1 * stride + ix1
        self.wy = wy.astype(np.float32)[:, None]
        self.wx = wx.astype(np.float32)[:, None]

    def __call__(self, frame: Frame) -> Frame:
        """Resample `frame` (which must have the size this map was built for)."""
        if self.padded:
            src = np.empty((self.height + 2, self.width + 2, 3), dtype=np.uint8)
            src[:] = self.background
            src[1:-1, 1:-1] = frame
        else:
            src = frame
        flat = src.reshape(-1, 3)
        if self.exact:
            return np.take(flat, self.i00, axis=0).reshape(self.out_shape)
        p00 = np.take(flat, self.i00, axis=0).astype(np.float32)
        p01 = np.take(flat, self.i01, axis=0).astype(np.float32)
        p10 = np.take(flat, self.i10, axis=0).astype(np.float32)
        p11 = np.take(flat, self.i11, axis=0).astype(np.float32)
        top = p00 + (p01 - p00) * self.wx
        bottom = p10 + (p11 - p10) * self.wx
        out = top + (bottom - top) * self.wy
        out += 0.5
        return out.astype(np.uint8).reshape(self.out_shape)


def _fold(index: I64, size: int, edge: str) -> I64:
    if edge == "wrap":
        return np.mod(index, size)
    if edge == "reflect":
        period = 2 * size
        m = np.mod(index, period)
        return np.where(m >= size, period - 1 - m, m)
    return np.clip(index, 0, size - 1)


def gain_weights(gain: npt.NDArray[np.floating]) -> npt.NDArray[np.uint16]:
    """A per-pixel gain map (height × width) as 1/256 steps laid out like the frame, for `apply_gain`:
    a same-shape uint16 multiply is several times faster than broadcasting one gain per pixel."""
    weights = np.rint(gain * 256).astype(np.uint16)
    return np.ascontiguousarray(np.broadcast_to(weights[..., None], (*weights.shape, 3)))


def apply_gain(frame: Frame, weights: npt.NDArray[np.uint16]) -> Frame:
    """`frame` times the `gain_weights`, rounded."""
    out = frame.astype(np.uint16)
    out *= weights
    out += np.uint16(128)
    out >>= 8
    return out.astype(np.uint8)


def pixel_grid(height: int, width: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(y, x) coordinates of every pixel, as float64 (H, W) arrays."""
    ys, xs = np.mgrid[0:height, 0:width]
    return ys.astype(np.float64), xs.astype(np.float64)


def shift(image: npt.NDArray[np.uint8], dy: int, dx: int) -> npt.NDArray[np.uint8]:
    """Translate an (H, W, …) image by whole pixels; uncovered areas repeat the border pixel."""
    h, w = image.shape[:2]
    out = image
    if dy:
        out = np.take(out, np.clip(np.arange(h) - dy, 0, h - 1), axis=0)
    if dx:
        out = np.take(out, np.clip(np.arange(w) - dx, 0, w - 1), axis=1)
    return out if out is not image else image.copy()


def cell_means(frame: Frame, cell_h: int, cell_w: int) -> F32:
    """Mean colour of each cell of a grid anchored top-left (edge cells may be smaller)."""
    h, w = frame.shape[:2]
    rows = np.arange(0, h, cell_h)
    cols = np.arange(0, w, cell_w)
    sums = np.add.reduceat(np.add.reduceat(frame, rows, axis=0, dtype=np.uint32), cols, axis=1, dtype=np.uint32)
    counts = np.outer(np.diff(np.append(rows, h)), np.diff(np.append(cols, w)))
    means: F32 = (sums / counts[..., None]).astype(np.float32)
    return means
