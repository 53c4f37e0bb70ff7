from pydantic import AliasChoices, Field

from artdag_common.settings import CommonSettings


class GatewaySettings(CommonSettings):
    """Where the gateway listens and what it accepts."""

    host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("ARTDAG_HOST", "HOST"))
    port: int = Field(default=8100, ge=1, le=65535, validation_alias=AliasChoices("ARTDAG_PORT", "PORT"))
    max_upload_bytes: int = Field(
        default=2 * 1024**3, gt=0, validation_alias=AliasChoices("ARTDAG_MAX_UPLOAD_BYTES", "MAX_UPLOAD_BYTES")
    )
    max_recipe_bytes: int = Field(default=1024**2, gt=0, validation_alias=AliasChoices("ARTDAG_MAX_RECIPE_BYTES"))
    health_timeout_s: float = Field(default=1.5, gt=0, le=30, validation_alias=AliasChoices("ARTDAG_HEALTH_TIMEOUT_S"))
