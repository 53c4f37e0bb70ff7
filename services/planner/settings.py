from pydantic import AliasChoices, Field

from artdag_common.settings import CommonSettings


class PlannerSettings(CommonSettings):
    """How large a plan may grow."""

    max_plan_steps: int = Field(
        default=20_000, gt=0, validation_alias=AliasChoices("ARTDAG_MAX_PLAN_STEPS", "MAX_PLAN_STEPS")
    )
    # Per-frame effects on inputs at least twice this long are split into chunks of about
    # this length (whole GOPs) that executors render in parallel; 0 turns splitting off.
    chunk_seconds: float = Field(default=15.0, ge=0, le=3600, validation_alias=AliasChoices("ARTDAG_CHUNK_SECONDS"))
    # How often one planner (whichever holds the recovery lease) looks for runs that were
    # accepted but never started, or half-accepted, and settles them.
    recover_every_s: float = Field(default=30.0, gt=0, le=3600, validation_alias=AliasChoices("ARTDAG_RECOVER_EVERY_S"))
