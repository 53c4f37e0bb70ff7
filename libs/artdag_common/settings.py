"""Settings shared by every service, read from the environment once in `__main__`.

Variables take the `ARTDAG_` prefix; where the original L1 server had a name
(`HOST`, `PORT`, `DATABASE_URL`, `CACHE_DIR`, `IPFS_API`, `NATS_URL`, …) that
name is accepted as well, so that an operator's old environment keeps working.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from artdag_common.bus_access import BusLogin, tls_context

_NATS_URL_RE = re.compile(r"^(nats|tls|ws|wss)://[^\s]+$")
# JetStream object-store bucket names: what nats-server accepts for a bucket.
_BUCKET_RE = re.compile(r"^[A-Za-z0-9_-]+$")

StoreKind = Literal["local", "s3", "nats", "ipfs"]
LogFormat = Literal["text", "json"]


def _env(name: str, *legacy: str) -> AliasChoices:
    return AliasChoices(f"ARTDAG_{name}", *legacy)


def check_s3_prefix(value: str) -> str:
    """An S3 key prefix must stay relative: no leading '/', no empty or '..' segment."""
    if value.startswith("/") or "//" in value or ".." in value.split("/"):
        raise ValueError("an S3 prefix is relative, like 'artdag/content/'")
    return value


class CommonSettings(BaseSettings):
    """What every process needs: where its home is, the bus, the database, the store."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    home: Path = Field(default=Path("~/.artdag"), validation_alias=_env("HOME"))
    nats_url: str = Field(default="nats://127.0.0.1:4222", validation_alias=_env("NATS_URL", "NATS_URL"))
    # This process's login on the bus (`artdag up` gives each service its own; see bus_access.py).
    nats_user: str | None = Field(default=None, min_length=1, max_length=64, validation_alias=_env("NATS_USER"))
    nats_password: SecretStr | None = Field(default=None, validation_alias=_env("NATS_PASSWORD"))
    # TLS to the bus: the CA that signed the server's certificate; a client certificate and key if it asks.
    nats_tls_ca: Path | None = Field(default=None, validation_alias=_env("NATS_TLS_CA"))
    nats_tls_cert: Path | None = Field(default=None, validation_alias=_env("NATS_TLS_CERT"))
    nats_tls_key: Path | None = Field(default=None, validation_alias=_env("NATS_TLS_KEY"))
    # How long JetStream waits for a step, or a step event, to be acked before it hands it to another
    # replica (a killed executor's step, a killed planner's event); executors renew it while they work.
    ack_wait_s: float = Field(default=30.0, ge=2, le=3600, validation_alias=_env("ACK_WAIT_S"))
    # JetStream servers that hold each stream, consumer and bucket (3 on a 3-server cluster).
    nats_replicas: int = Field(default=1, ge=1, le=5, validation_alias=_env("NATS_REPLICAS"))
    # Free disk space kept in reserve: below it uploads and new runs are refused (507); 0 turns it off.
    min_free_bytes: int = Field(default=256 * 2**20, ge=0, validation_alias=_env("MIN_FREE_BYTES"))
    # The embedded nats-server's JetStream store limit (`artdag up`); 0: half the free space beyond
    # the reserve at start-up, within 64 MiB..8 GiB.
    nats_store_bytes: int = Field(default=0, ge=0, validation_alias=_env("NATS_STORE_BYTES"))
    database_url: str | None = Field(default=None, validation_alias=_env("DATABASE_URL", "DATABASE_URL"))
    cache_dir: Path | None = Field(default=None, validation_alias=_env("CACHE_DIR", "CACHE_DIR"))
    ipfs_api: str = Field(default="/ip4/127.0.0.1/tcp/5001", validation_alias=_env("IPFS_API", "IPFS_API"))
    cid_version: int = Field(default=0, ge=0, le=1, validation_alias=_env("CID_VERSION"))
    cluster_key: SecretStr | None = Field(default=None, validation_alias=_env("CLUSTER_KEY"))
    log_level: str = Field(default="INFO", validation_alias=_env("LOG_LEVEL"))
    otlp_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("ARTDAG_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    rpc_timeout_s: float = Field(default=5.0, gt=0, le=120, validation_alias=_env("RPC_TIMEOUT_S"))
    # `json`: one JSON object per record with trace and run ids (production); `text`: one readable line.
    log_format: LogFormat = Field(default="text", validation_alias=_env("LOG_FORMAT"))
    # The probe listener (`/livez`, `/readyz`, `/metrics`): off unless a port is set; each process needs its own.
    probe_port: int | None = Field(default=None, ge=1, le=65535, validation_alias=_env("PROBE_PORT"))
    probe_host: str = Field(default="127.0.0.1", min_length=1, validation_alias=_env("PROBE_HOST"))

    # -- the content store (see artdag_common.content_store.open_store) ---------
    store: StoreKind = Field(default="local", validation_alias=_env("STORE"))
    store_spool_dir: Path | None = Field(default=None, validation_alias=_env("STORE_SPOOL_DIR"))
    s3_bucket: str | None = Field(default=None, validation_alias=_env("S3_BUCKET"))
    s3_prefix: str = Field(default="", validation_alias=_env("S3_PREFIX"))
    s3_endpoint_url: str | None = Field(default=None, validation_alias=_env("S3_ENDPOINT_URL"))
    s3_region: str | None = Field(default=None, validation_alias=_env("S3_REGION"))
    # Unset: botocore's own chain (AWS_* variables, config files, instance or pod role).
    s3_access_key_id: str | None = Field(default=None, validation_alias=_env("S3_ACCESS_KEY_ID"))
    s3_secret_access_key: SecretStr | None = Field(default=None, validation_alias=_env("S3_SECRET_ACCESS_KEY"))
    nats_object_bucket: str = Field(default="artdag_content", validation_alias=_env("NATS_OBJECT_BUCKET"))
    ipfs_primary: bool = Field(default=False, validation_alias=_env("IPFS_PRIMARY", "IPFS_PRIMARY"))
    ipfs_timeout_s: float = Field(default=30.0, gt=0, le=3600, validation_alias=_env("IPFS_TIMEOUT_S", "IPFS_TIMEOUT"))

    # -- auth and federation (see services/auth and the gateway's auth.py) ---------
    # L2 mode when both are set: tokens are verified by L2, outputs are published to it.
    l2_server: str | None = Field(default=None, validation_alias=_env("L2_SERVER", "L2_SERVER"))
    l2_domain: str | None = Field(default=None, validation_alias=_env("L2_DOMAIN", "L2_DOMAIN"))
    # This L1's public base URL (actor and object ids in what it publishes); default http://HOST:PORT.
    public_url: str | None = Field(default=None, validation_alias=_env("PUBLIC_URL", "L1_PUBLIC_URL"))
    # Where the L1's private keys live (default <home>/keys): mount a secret here in a cluster.
    key_dir: Path | None = Field(default=None, validation_alias=_env("KEY_DIR"))
    token_ttl_days: float = Field(default=90.0, gt=0, le=3650, validation_alias=_env("TOKEN_TTL_DAYS"))
    l2_timeout_s: float = Field(default=10.0, gt=0, le=120, validation_alias=_env("L2_TIMEOUT_S"))
    # Gateway: how long a verified token is trusted without asking again (revocations cut it short).
    auth_cache_s: float = Field(default=30.0, ge=0, le=600, validation_alias=_env("AUTH_CACHE_S"))
    # Gateway: failed token checks allowed per client address within the window, then 429.
    auth_fail_limit: int = Field(default=20, ge=1, le=100_000, validation_alias=_env("AUTH_FAIL_LIMIT"))
    auth_fail_window_s: float = Field(default=60.0, gt=0, le=86_400, validation_alias=_env("AUTH_FAIL_WINDOW_S"))

    # -- bounded work (see artdag_common.media_limits) ------------------------------
    # Inputs above these are refused at submit (422) and never decoded: pixels a frame (8K UHD,
    # 7680x4320: about 50 MB a decoded picture), seconds, and frames (4 h at 60 fps). A decoder
    # is capped at the pixel limit before its first frame, whatever the container claims.
    max_input_pixels: int = Field(default=7680 * 4320, ge=64 * 64, validation_alias=_env("MAX_INPUT_PIXELS"))
    max_input_duration_s: float = Field(default=4 * 3600.0, gt=0, validation_alias=_env("MAX_INPUT_DURATION_S"))
    max_input_frames: int = Field(default=4 * 3600 * 60, ge=1, validation_alias=_env("MAX_INPUT_FRAMES"))
    # Per user, admins included; 0 turns each off. Stored bytes a user holds (uploads, imports and
    # what their runs made), then 413; runs of theirs not finished yet, then 429.
    quota_bytes: int = Field(default=0, ge=0, validation_alias=_env("QUOTA_BYTES"))
    quota_queued_runs: int = Field(default=0, ge=0, validation_alias=_env("QUOTA_QUEUED_RUNS"))

    # -- storage providers (see services/cache/providers.py and egress.py) ---------
    # Colon-separated directories under which admins may add `local` providers; empty: `<home>/providers`.
    provider_local_roots: str = Field(default="", validation_alias=_env("PROVIDER_LOCAL_ROOTS"))
    # Let every user, not only admins, aim a provider at private, loopback or link-local addresses
    # (a MinIO on the LAN); off, a plain user's provider reaches public addresses only.
    provider_allow_private: bool = Field(default=False, validation_alias=_env("PROVIDER_ALLOW_PRIVATE"))

    @field_validator("provider_local_roots")
    @classmethod
    def _check_provider_local_roots(cls, value: str) -> str:
        for part in filter(None, value.split(":")):
            if not Path(part).expanduser().is_absolute():
                raise ValueError(f"provider root {part!r} must be an absolute path")
        return value

    @property
    def provider_roots(self) -> list[Path]:
        """Where admins may put `local` providers (`PROVIDER_LOCAL_ROOTS`, default `<home>/providers`)."""
        roots = [Path(part).expanduser() for part in self.provider_local_roots.split(":") if part]
        return roots or [self.home / "providers"]

    @field_validator(
        "home", "cache_dir", "store_spool_dir", "key_dir", "nats_tls_ca", "nats_tls_cert", "nats_tls_key", mode="after"
    )
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("nats_url")
    @classmethod
    def _check_nats_url(cls, value: str) -> str:
        urls = [u.strip() for u in value.split(",")]
        for url in urls:
            if not _NATS_URL_RE.match(url):
                raise ValueError(f"not a NATS URL: {url!r} (expected nats://host:port)")
        return ",".join(urls)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        # Accept the seed's plain `postgresql://` form and pick the async driver for it.
        for plain, driver in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgres://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if value.startswith(plain):
                return driver + value[len(plain) :]
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("DATABASE_URL must be a postgresql:// or sqlite:// URL")
        return value

    @field_validator("probe_port", mode="before")
    @classmethod
    def _probe_off(cls, value: object) -> object:
        # An empty value or 0 turns the listener off, like leaving the variable unset.
        return None if value in ("", "0", 0) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_log_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("l2_server", "public_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")) or any(ch.isspace() for ch in value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("l2_domain")
    @classmethod
    def _check_domain(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.match(r"^[A-Za-z0-9.-]+(:[0-9]+)?$", value):
            raise ValueError("an L2 domain is a host name, like l2.example.org")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @field_validator("nats_object_bucket")
    @classmethod
    def _check_bucket(cls, value: str) -> str:
        if not _BUCKET_RE.match(value):
            raise ValueError("a NATS object-store bucket name uses only letters, digits, '_' and '-'")
        return value

    @field_validator("s3_prefix")
    @classmethod
    def _check_s3_prefix(cls, value: str) -> str:
        return check_s3_prefix(value)

    @model_validator(mode="after")
    def _check_bus_login(self) -> CommonSettings:
        if (self.nats_user is None) != (self.nats_password is None):
            raise ValueError("set both ARTDAG_NATS_USER and ARTDAG_NATS_PASSWORD, or neither")
        if self.nats_tls_key is not None and self.nats_tls_cert is None:
            raise ValueError("ARTDAG_NATS_TLS_KEY needs ARTDAG_NATS_TLS_CERT")
        for name, path in (("CA", self.nats_tls_ca), ("CERT", self.nats_tls_cert), ("KEY", self.nats_tls_key)):
            if path is not None and not path.is_file():
                raise ValueError(f"ARTDAG_NATS_TLS_{name}: no such file: {path}")
        return self

    @model_validator(mode="after")
    def _check_store(self) -> CommonSettings:
        if self.store == "s3" and not self.s3_bucket:
            raise ValueError("ARTDAG_STORE=s3 needs ARTDAG_S3_BUCKET")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError("set both ARTDAG_S3_ACCESS_KEY_ID and ARTDAG_S3_SECRET_ACCESS_KEY, or neither")
        return self

    @property
    def bus_login(self) -> BusLogin | None:
        """The login this process connects to the bus with, if one is set."""
        if self.nats_user is None or self.nats_password is None:
            return None
        return BusLogin(self.nats_user, self.nats_password.get_secret_value())

    @property
    def bus_tls(self) -> ssl.SSLContext | None:
        """The TLS context for the bus, if TLS files are set."""
        return tls_context(self.nats_tls_ca, self.nats_tls_cert, self.nats_tls_key)

    @property
    def l2_mode(self) -> bool:
        """Whether tokens are verified by an L2 server (`L2_SERVER` and `L2_DOMAIN` set)."""
        return bool(self.l2_server and self.l2_domain)

    @property
    def keys_dir(self) -> Path:
        """Where the L1's key files live (`KEY_DIR`, default `<home>/keys`)."""
        return self.key_dir if self.key_dir is not None else self.home / "keys"

    @property
    def spool_dir(self) -> Path:
        """Where remote stores stage uploads and downloads (`STORE_SPOOL_DIR`, default `<home>/spool`)."""
        return self.store_spool_dir if self.store_spool_dir is not None else self.home / "spool"

    @property
    def store_dir(self) -> Path:
        """The local content store's root (`CACHE_DIR`, default `<home>/cache`)."""
        return self.cache_dir if self.cache_dir is not None else self.home / "cache"

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file under the home dir."""
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'artdag.db'}"

    @property
    def cluster_key_value(self) -> str | None:
        """The trust-domain key mixed into step ids, if one is configured."""
        return self.cluster_key.get_secret_value() if self.cluster_key else None


S = TypeVar("S", bound=CommonSettings)

# Names of the original L1 server that are read as well (see `_env`): reported as they were set.
_LEGACY_NAMES = frozenset(
    {"HOST", "PORT", "NATS_URL", "DATABASE_URL", "CACHE_DIR", "IPFS_API", "IPFS_PRIMARY", "IPFS_TIMEOUT"}
)


def load_settings(cls: type[S]) -> S:
    """Build settings from the environment, or exit with a message naming the bad variable."""
    from pydantic import ValidationError

    try:
        return cls()
    except ValidationError as exc:
        lines = [f"invalid configuration for {cls.__name__}:"]
        for err in exc.errors():
            name = (".".join(str(p) for p in err["loc"]) or "?").upper()
            # The location is the alias that was read (ARTDAG_X, or a legacy name) or else the field's name.
            variable = name if name.startswith("ARTDAG_") or name in _LEGACY_NAMES else f"ARTDAG_{name}"
            lines.append(f"  {variable}: {err['msg']}")
        raise SystemExit("\n".join(lines)) from None
