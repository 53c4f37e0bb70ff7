"""What the analyzer answers: media info (`probe`), analyses and their progress."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from artdag_common.schemas.common import Message, RpcErrorBody, now


class MediaInfo(Message):
    """What a media file holds (analyzer `probe`): streams, size, rate, duration, frame count."""

    cid: str
    duration_s: float
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frame_count: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    sample_rate: int | None = None
    video_profile: str | None = Field(
        default=None, description="the video codec's profile (a lossless intermediate: 'High 4:4:4 Predictive')"
    )


class ProbeOutcome(Message):
    """One cid's outcome in an `analyzer.probe_many` reply: what it holds, or why it could not be told."""

    info: MediaInfo | None = None
    error: RpcErrorBody | None = None


class ProbeManyReply(Message):
    """The outcomes of an `analyzer.probe_many`, in the order of its cids."""

    outcomes: list[ProbeOutcome]


class AnalyzeRequest(Message):
    """`artdag.rpc.analyzer.analyze`: features of one input, with analyzer parameters."""

    cid: str
    features: list[str] = Field(min_length=1, max_length=16)
    params: dict[str, Any] = Field(default_factory=dict)


class AnalysisReply(Message):
    """An analysis result: its id, the cid of its JSON in the content store, and the result itself."""

    analysis_id: str
    result_cid: str
    cached: bool
    result: dict[str, Any]


class AnalysisProgress(Message):
    """`artdag.event.analysis.<analysis_id>`: how far a long analysis has got."""

    analysis_id: str
    cid: str
    fraction: float = Field(ge=0, le=1)
    at: float = Field(default_factory=now)
