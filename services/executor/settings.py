from pydantic import AliasChoices, Field, model_validator

from artdag_common.settings import CommonSettings


class ExecutorSettings(CommonSettings):
    """How much media work one replica does at once, and how long a claim lasts."""

    max_concurrent_steps: int = Field(
        default=1, ge=1, le=64, validation_alias=AliasChoices("ARTDAG_EXECUTOR_CONCURRENCY")
    )
    claim_lease_s: float = Field(default=30.0, ge=2, le=600, validation_alias=AliasChoices("ARTDAG_CLAIM_LEASE_S"))
    heartbeat_s: float = Field(default=10.0, ge=1, le=60, validation_alias=AliasChoices("ARTDAG_HEARTBEAT_S"))

    @model_validator(mode="after")
    def _heartbeat_within_the_ack_wait(self) -> "ExecutorSettings":
        # A step whose heartbeats come later than its ack wait would be handed to another executor mid-render.
        if self.heartbeat_s * 2 > self.ack_wait_s:
            raise ValueError("ARTDAG_HEARTBEAT_S must be at most half of ARTDAG_ACK_WAIT_S")
        return self
