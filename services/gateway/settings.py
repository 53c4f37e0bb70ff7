import ipaddress
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator

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
    # Colon-separated directories that `POST /cache/import?path=` may read from; empty: importing is off.
    import_dirs: str = Field(default="", validation_alias=AliasChoices("ARTDAG_IMPORT_DIRS", "IMPORT_DIRS"))
    ipfs_gateway_url: str = Field(
        default="https://ipfs.io", validation_alias=AliasChoices("ARTDAG_IPFS_GATEWAY_URL", "IPFS_GATEWAY_URL")
    )
    # Testing a storage provider really connects (S3, IPFS): give it longer than an ordinary call.
    storage_test_timeout_s: float = Field(
        default=60.0, gt=0, le=600, validation_alias=AliasChoices("ARTDAG_STORAGE_TEST_TIMEOUT_S")
    )

    # Proxies (addresses or networks, comma-separated; "*" for any) whose X-Forwarded-For and
    # X-Forwarded-Proto are believed: behind an ingress, its pods' network, so that limits count
    # real clients rather than the proxy's one address.
    trusted_proxies: str = Field(default="127.0.0.1", validation_alias=AliasChoices("ARTDAG_TRUSTED_PROXIES"))
    # Open event streams (server-sent events) per user on this gateway; one more is refused with 429.
    sse_per_user: int = Field(default=8, ge=1, le=1000, validation_alias=AliasChoices("ARTDAG_SSE_PER_USER"))
    # How often an open event stream checks that its token is still valid (revoked, expired: it ends).
    sse_recheck_s: float = Field(default=5.0, gt=0, le=300, validation_alias=AliasChoices("ARTDAG_SSE_RECHECK_S"))

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        for part in (p.strip() for p in value.split(",")):
            if part and part != "*":
                try:
                    ipaddress.ip_network(part, strict=False)
                except ValueError:
                    raise ValueError(f"{part!r} is not an IP address or network") from None
        return value

    @field_validator("import_dirs")
    @classmethod
    def _check_import_dirs(cls, value: str) -> str:
        for part in filter(None, value.split(":")):
            if not Path(part).expanduser().is_absolute():
                raise ValueError(f"import directory {part!r} must be an absolute path")
        return value

    @field_validator("ipfs_gateway_url")
    @classmethod
    def _check_gateway_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or any(ch.isspace() for ch in value):
            raise ValueError("an IPFS gateway URL starts with http:// or https://")
        return value.rstrip("/")

    @property
    def import_dirs_as_written(self) -> list[Path]:
        """The import directories as configured (absolute, `~` expanded, symlinks not resolved)."""
        return [Path(part).expanduser() for part in self.import_dirs.split(":") if part]

    @property
    def import_roots(self) -> list[Path]:
        """The import directories, symlinks resolved (the real places a file must lie under)."""
        return [Path(part).expanduser().resolve() for part in self.import_dirs.split(":") if part]
