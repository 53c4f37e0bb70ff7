from __future__ import annotations

import base64
import binascii

from pydantic import AliasChoices, Field, SecretStr, field_validator

from artdag_common.settings import CommonSettings


class CacheSettings(CommonSettings):
    """Space limits for the content store and the key that encrypts storage-provider secrets."""

    # Unset: no limit. Set: least-recently-used intermediates are evicted to stay under it.
    cache_max_bytes: int | None = Field(
        default=None, gt=0, validation_alias=AliasChoices("ARTDAG_CACHE_MAX_BYTES", "CACHE_MAX_BYTES")
    )
    # Content used more recently than this is never evicted (a running run may still need it).
    cache_evict_min_age_s: float = Field(
        default=600.0, ge=0, validation_alias=AliasChoices("ARTDAG_CACHE_EVICT_MIN_AGE_S")
    )
    # base64 of 32 bytes (AES-256-GCM). Unset: a key file `<home>/secrets.key` is made on first use,
    # which is right for one machine; replicas that do not share a home need this set.
    secrets_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ARTDAG_SECRETS_KEY", "ARTDAG_STORAGE_SECRETS_KEY")
    )
    # Copies to storage providers made at once by each cache service (each streams one file).
    replication_concurrency: int = Field(
        default=2, ge=1, le=32, validation_alias=AliasChoices("ARTDAG_REPLICATION_CONCURRENCY")
    )
    provenance_owner: str = Field(default="local", min_length=1, validation_alias=AliasChoices("ARTDAG_OWNER"))

    @field_validator("secrets_key")
    @classmethod
    def _check_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        try:
            raw = base64.b64decode(value.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 (of 32 random bytes)") from None
        if len(raw) != 32:
            raise ValueError(f"must decode to 32 bytes, not {len(raw)}")
        return value
