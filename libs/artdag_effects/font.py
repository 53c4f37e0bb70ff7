"""A tiny built-in 5×7 bitmap font for character-cell effects (no font files needed).

Only the glyphs the ASCII-art ramps use are drawn; the block shades are dither
patterns. `glyph_masks` scales a ramp's glyphs to any cell size.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

GLYPH_HEIGHT = 7
GLYPH_WIDTH = 5

_GLYPHS: dict[str, tuple[str, ...]] = {
    " ": (".....",) * 7,
    ".": (".....", ".....", ".....", ".....", ".....", ".##..", ".##.."),
    ":": (".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."),
    "-": (".....", ".....", ".....", "#####", ".....", ".....", "....."),
    "=": (".....", ".....", "#####", ".....", "#####", ".....", "....."),
    "+": (".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."),
    "*": (".....", "#.#.#", ".###.", "#####", ".###.", "#.#.#", "....."),
    "#": (".#.#.", ".#.#.", "#####", ".#.#.", "#####", ".#.#.", ".#.#."),
    "%": ("##..#", "##..#", "...#.", "..#..", ".#...", "#..##", "#..##"),
    "@": (".###.", "#...#", "#.###", "#.#.#", "#.###", "#....", ".####"),
    "o": (".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "0": (".###.", "#..##", "#.#.#", "#.#.#", "#.#.#", "##..#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
}


def _dither(keep: int) -> tuple[str, ...]:
    # A 4×4-ordered dither pattern lighting `keep` of every 16 dots.
    bayer = ((0, 8, 2, 10), (12, 4, 14, 6), (3, 11, 1, 9), (15, 7, 13, 5))
    return tuple(
        "".join("#" if bayer[y % 4][x % 4] < keep else "." for x in range(GLYPH_WIDTH)) for y in range(GLYPH_HEIGHT)
    )


_GLYPHS |= {"░": _dither(4), "▒": _dither(8), "▓": _dither(12), "█": ("#####",) * 7}

RAMPS: dict[str, str] = {
    "standard": " .:-=+*#%@",
    "simple": " .:oO@",
    "blocks": " ░▒▓█",
    "binary": "01",
}
"""Character ramps from darkest to brightest."""


def glyph_bitmap(char: str) -> npt.NDArray[np.bool_]:
    """The 7×5 bitmap of one character (True = ink)."""
    return np.array([[c == "#" for c in row] for row in _GLYPHS[char]], dtype=np.bool_)


@functools.lru_cache(maxsize=16)
def glyph_masks(ramp: str, cell_h: int, cell_w: int) -> npt.NDArray[np.uint8]:
    """(len(ramp), cell_h, cell_w) 0/1 masks of the ramp's glyphs scaled to the cell (nearest)."""
    rows = np.arange(cell_h) * GLYPH_HEIGHT // cell_h
    cols = np.arange(cell_w) * GLYPH_WIDTH // cell_w
    glyphs = np.stack([glyph_bitmap(c) for c in ramp])
    return np.ascontiguousarray(glyphs[:, rows][:, :, cols]).astype(np.uint8)
