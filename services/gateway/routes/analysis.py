"""Analysis of content on request: tempo, beats, energy, scenes, motion…"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from artdag_common.cid import validate_cid
from artdag_common.contracts import Analyzer, Cache
from artdag_common.schemas import AnalysisReply, AnalyzeRequest, HoldRequest
from services.gateway import errors
from services.gateway.auth import CurrentUser
from services.gateway.deps import GatewayDep
from services.gateway.policy import visible_content

router = APIRouter()


class AnalyzeBody(BaseModel):
    cid: str = Field(description="the content to analyze")
    features: list[str] = Field(min_length=1, max_length=16, description="e.g. beats, energy, spectrum, onsets")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="analyzer parameters: window_ms, bands, scene_threshold, tempo_min, tempo_max, tempo_hint"
        " (the BPM you would tap: picks the beats' metrical level)",
    )


@router.post(
    "/api/analyze",
    tags=["analysis"],
    summary="Analyze content: tempo, beats, energy, scenes, motion…",
    responses=errors.responses(400, 404),
)
async def analyze(body: AnalyzeBody, gw: GatewayDep, user: CurrentUser) -> AnalysisReply:
    request = AnalyzeRequest(cid=validate_cid(body.cid), features=body.features, params=body.params)
    await visible_content(gw, user, request.cid)  # 404 for unknown content and for another user's
    reply: AnalysisReply = await gw.call(Analyzer.analyze, request)
    # The stored result (JSON by cid) is the asker's to fetch too.
    await gw.call(Cache.hold, HoldRequest(cids=[reply.result_cid], user=user.user))
    return reply
