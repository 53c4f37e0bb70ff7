"""Repeat a shrunken copy of the picture in a `rows` × `cols` grid (nearest-neighbour)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from artdag_effects.kit import per_frame
from artdag_effects.spec import EffectParams, EffectSpec, Frame, FrameContext

VERSION = "1"


class TileGridParams(EffectParams):
    """Grid size."""

    rows: int = Field(2, ge=1, le=32, description="tiles down")
    cols: int = Field(2, ge=1, le=32, description="tiles across")


def _apply(frame: Frame, params: TileGridParams, ctx: FrameContext) -> Frame:
    if params.rows == 1 and params.cols == 1:
        return frame
    h, w = frame.shape[:2]
    # Row y of the output lies in tile y·rows // h and samples every rows-th source row.
    rows = np.arange(h) * params.rows % h
    cols = np.arange(w) * params.cols % w
    out: Frame = np.take(np.take(frame, rows, axis=0), cols, axis=1)
    return out


EFFECT = EffectSpec(
    name="tile_grid",
    version=VERSION,
    params_model=TileGridParams,
    description="Tile small copies of the picture in a grid.",
    factory=per_frame(TileGridParams, _apply),
)
