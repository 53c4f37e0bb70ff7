"""What the services read from their environment, for the tests that check deployment files against it."""

from __future__ import annotations

from artdag_common.settings import environment_variables
from services.analyzer.settings import AnalyzerSettings
from services.auth.settings import AuthSettings
from services.cache.settings import CacheSettings
from services.executor.settings import ExecutorSettings
from services.gateway.settings import GatewaySettings
from services.planner.settings import PlannerSettings


def service_variables() -> set[str]:
    """Every environment variable some service reads."""
    names: set[str] = set()
    for cls in (GatewaySettings, PlannerSettings, ExecutorSettings, AnalyzerSettings, CacheSettings, AuthSettings):
        names |= environment_variables(cls)
    return names
