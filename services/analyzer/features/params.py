"""The tunable parameters of an analysis; they are part of the analysis id."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_BAND_NAME = re.compile(r"[a-z0-9_]+")
MAX_BANDS = 16


class AnalysisParams(BaseModel):
    """Window size, spectrum bands, scene threshold and tempo range (and hint) for `analyze_file`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_ms: Annotated[float, Field(ge=5, le=1000)] = 50.0
    bands: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {"bass": (20.0, 200.0), "mid": (200.0, 2000.0), "high": (2000.0, 20000.0)}
    )
    scene_threshold: Annotated[float, Field(ge=0, le=1)] = 0.3
    tempo_min: Annotated[float, Field(ge=20, le=400, description="slowest beat rate to consider, in BPM")] = 40.0
    tempo_max: Annotated[float, Field(ge=20, le=400, description="fastest beat rate to consider, in BPM")] = 240.0
    tempo_hint: Annotated[
        float | None,
        Field(ge=20, le=400, description="the beat rate a listener would tap, roughly: picks the metrical level"),
    ] = None

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
        if self.tempo_max < 1.5 * self.tempo_min:
            raise ValueError(f"tempo_max ({self.tempo_max}) must be at least 1.5 × tempo_min ({self.tempo_min})")
        if self.tempo_hint is not None and not self.tempo_min <= self.tempo_hint <= self.tempo_max:
            raise ValueError(
                f"tempo_hint ({self.tempo_hint}) must lie between tempo_min ({self.tempo_min}) and tempo_max ({self.tempo_max})"
            )
        return self
