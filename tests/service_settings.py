"""What the services read from their environment, for the tests that check deployment files against it."""

from __future__ import annotations

from pydantic import AliasChoices

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
        for field in cls.model_fields.values():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names.update(str(choice) for choice in alias.choices)
            elif isinstance(alias, str):
                names.add(alias)
    return names
