from pydantic import Field

from artdag_common.settings import CommonSettings


class PlannerSettings(CommonSettings):
    """How large a plan may grow."""

    max_plan_steps: int = Field(default=20_000, gt=0, validation_alias="MAX_PLAN_STEPS")
