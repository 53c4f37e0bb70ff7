from __future__ import annotations

from artdag_common.runtime import ServiceRuntime
from services.analyzer.settings import AnalyzerSettings


async def start(runtime: ServiceRuntime, settings: AnalyzerSettings) -> None:
    # Feature extraction arrives with the analyzer issue; until then the service
    # joins the bus, provisions its work queue and answers health checks.
    runtime.health_details = lambda: {"features": []}
