from pydantic import AliasChoices, Field

from artdag_common.settings import CommonSettings


class ExecutorSettings(CommonSettings):
    """How much media work one replica does at once, and how long a claim lasts."""

    max_concurrent_steps: int = Field(
        default=1, ge=1, le=64, validation_alias=AliasChoices("ARTDAG_EXECUTOR_CONCURRENCY")
    )
    claim_lease_s: float = Field(default=30.0, ge=2, le=600, validation_alias=AliasChoices("ARTDAG_CLAIM_LEASE_S"))
    heartbeat_s: float = Field(default=10.0, ge=1, le=60, validation_alias=AliasChoices("ARTDAG_HEARTBEAT_S"))
