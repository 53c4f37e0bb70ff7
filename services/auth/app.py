from __future__ import annotations

from artdag_common.runtime import ServiceRuntime
from services.auth.settings import AuthSettings


async def start(runtime: ServiceRuntime, settings: AuthSettings) -> None:
    # Token verification and revocation arrive with the auth issue; until then the
    # service joins the bus and answers health checks.
    runtime.health_details = lambda: {"mode": "open"}
