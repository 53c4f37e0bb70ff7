"""Settings shared by every service, read from the environment once in `__main__`.

Variables take the `ARTDAG_` prefix; where the original L1 server had a name
(`HOST`, `PORT`, `DATABASE_URL`, `CACHE_DIR`, `IPFS_API`, `NATS_URL`, …) that
name is accepted as well, so that an operator's old environment keeps working.
"""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

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


def _expanded(value: Path | None) -> Path | None:
    return value.expanduser().resolve() if value is not None else None


def _http_url(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not value.startswith(("http://", "https://")) or any(ch.isspace() for ch in value):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


class NatsSettings(BaseModel):
    """The bus: where it is, this process's login and TLS, and how JetStream keeps what it holds."""

    model_config = ConfigDict(extra="forbid")

    url: str = "nats://127.0.0.1:4222"
    # This process's login on the bus (`artdag up` gives each service its own; see bus_access.py).
    user: str | None = Field(default=None, min_length=1, max_length=64)
    password: SecretStr | None = None
    # TLS to the bus: the CA that signed the server's certificate; a client certificate and key if it asks.
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # JetStream servers that hold each stream, consumer and bucket (3 on a 3-server cluster).
    replicas: int = Field(default=1, ge=1, le=5)
    # The embedded nats-server's JetStream store limit (`artdag up`); 0: half the free space beyond
    # the reserve at start-up, within 64 MiB..8 GiB.
    store_bytes: int = Field(default=0, ge=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        urls = [u.strip() for u in value.split(",")]
        for url in urls:
            if not _NATS_URL_RE.match(url):
                raise ValueError(f"not a NATS URL: {url!r} (expected nats://host:port)")
        return ",".join(urls)

    @field_validator("tls_ca", "tls_cert", "tls_key", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return _expanded(value)

    @model_validator(mode="after")
    def _check_login(self) -> NatsSettings:
        if (self.user is None) != (self.password is None):
            raise ValueError("set both ARTDAG_NATS_USER and ARTDAG_NATS_PASSWORD, or neither")
        if self.tls_key is not None and self.tls_cert is None:
            raise ValueError("ARTDAG_NATS_TLS_KEY needs ARTDAG_NATS_TLS_CERT")
        for name, path in (("CA", self.tls_ca), ("CERT", self.tls_cert), ("KEY", self.tls_key)):
            if path is not None and not path.is_file():
                raise ValueError(f"ARTDAG_NATS_TLS_{name}: no such file: {path}")
        return self

    @property
    def login(self) -> BusLogin | None:
        """The login this process connects to the bus with, if one is set."""
        if self.user is None or self.password is None:
            return None
        return BusLogin(self.user, self.password.get_secret_value())

    @property
    def tls(self) -> ssl.SSLContext | None:
        """The TLS context for the bus, if TLS files are set."""
        return tls_context(self.tls_ca, self.tls_cert, self.tls_key)


class StoreSettings(BaseModel):
    """The content store (see artdag_common.content_store.open_store) and how CIDs are made."""

    model_config = ConfigDict(extra="forbid")

    kind: StoreKind = "local"
    # The local store's root; default <home>/cache.
    cache_dir: Path | None = None
    # Where remote stores stage uploads and downloads; default <home>/spool.
    spool_dir: Path | None = None
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # Unset: botocore's own chain (AWS_* variables, config files, instance or pod role).
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    nats_object_bucket: str = "artdag_content"
    ipfs_api: str = "/ip4/127.0.0.1/tcp/5001"
    ipfs_primary: bool = False
    ipfs_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    cid_version: int = Field(default=0, ge=0, le=1)

    @field_validator("cache_dir", "spool_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return _expanded(value)

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
    def _check_s3(self) -> StoreSettings:
        if self.kind == "s3" and not self.s3_bucket:
            raise ValueError("ARTDAG_STORE=s3 needs ARTDAG_S3_BUCKET")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError("set both ARTDAG_S3_ACCESS_KEY_ID and ARTDAG_S3_SECRET_ACCESS_KEY, or neither")
        return self


class AuthSettings(BaseModel):
    """Tokens and federation (see services/auth and the gateway's auth.py)."""

    model_config = ConfigDict(extra="forbid")

    # L2 mode when both are set: tokens are verified by L2, outputs are published to it.
    l2_server: str | None = None
    l2_domain: str | None = None
    # This L1's public base URL (actor and object ids in what it publishes); default http://HOST:PORT.
    public_url: str | None = None
    # Where the L1's private keys live (default <home>/keys): mount a secret here in a cluster.
    key_dir: Path | None = None
    token_ttl_days: float = Field(default=90.0, gt=0, le=3650)
    l2_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Gateway: how long a verified token is trusted without asking again (revocations cut it short).
    cache_s: float = Field(default=30.0, ge=0, le=600)
    # Gateway: failed token checks allowed per client address within the window, then 429.
    fail_limit: int = Field(default=20, ge=1, le=100_000)
    fail_window_s: float = Field(default=60.0, gt=0, le=86_400)

    @field_validator("l2_server", "public_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("l2_domain")
    @classmethod
    def _check_domain(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.match(r"^[A-Za-z0-9.-]+(:[0-9]+)?$", value):
            raise ValueError("an L2 domain is a host name, like l2.example.org")
        return value

    @field_validator("key_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return _expanded(value)

    @property
    def l2_mode(self) -> bool:
        """Whether tokens are verified by an L2 server (`L2_SERVER` and `L2_DOMAIN` set)."""
        return bool(self.l2_server and self.l2_domain)


# Each nested setting's variable: ARTDAG_ and the name on the left (also a keyword `CommonSettings`
# takes, as tests and `artdag up` pass them), then the original L1 server's name where it had one.
NESTED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "nats_url": ("nats", "url", ("NATS_URL",)),
    "nats_user": ("nats", "user", ()),
    "nats_password": ("nats", "password", ()),
    "nats_tls_ca": ("nats", "tls_ca", ()),
    "nats_tls_cert": ("nats", "tls_cert", ()),
    "nats_tls_key": ("nats", "tls_key", ()),
    "nats_replicas": ("nats", "replicas", ()),
    "nats_store_bytes": ("nats", "store_bytes", ()),
    "store": ("store", "kind", ()),
    "cache_dir": ("store", "cache_dir", ("CACHE_DIR",)),
    "store_spool_dir": ("store", "spool_dir", ()),
    "s3_bucket": ("store", "s3_bucket", ()),
    "s3_prefix": ("store", "s3_prefix", ()),
    "s3_endpoint_url": ("store", "s3_endpoint_url", ()),
    "s3_region": ("store", "s3_region", ()),
    "s3_access_key_id": ("store", "s3_access_key_id", ()),
    "s3_secret_access_key": ("store", "s3_secret_access_key", ()),
    "nats_object_bucket": ("store", "nats_object_bucket", ()),
    "ipfs_api": ("store", "ipfs_api", ("IPFS_API",)),
    "ipfs_primary": ("store", "ipfs_primary", ("IPFS_PRIMARY",)),
    "ipfs_timeout_s": ("store", "ipfs_timeout_s", ("IPFS_TIMEOUT",)),
    "cid_version": ("store", "cid_version", ()),
    "l2_server": ("auth", "l2_server", ("L2_SERVER",)),
    "l2_domain": ("auth", "l2_domain", ("L2_DOMAIN",)),
    "public_url": ("auth", "public_url", ("L1_PUBLIC_URL",)),
    "key_dir": ("auth", "key_dir", ()),
    "token_ttl_days": ("auth", "token_ttl_days", ()),
    "l2_timeout_s": ("auth", "l2_timeout_s", ()),
    "auth_cache_s": ("auth", "cache_s", ()),
    "auth_fail_limit": ("auth", "fail_limit", ()),
    "auth_fail_window_s": ("auth", "fail_window_s", ()),
}
_GROUPS = ("nats", "store", "auth")


def _nest(values: dict[str, Any]) -> dict[str, Any]:
    """Flat names (`nats_url=…`) as the nested groups they belong to (`nats={"url": …}`)."""

    def is_group(key: str, value: Any) -> bool:
        return key in _GROUPS and isinstance(value, dict | BaseModel)

    nested = {key: value for key, value in values.items() if key not in NESTED or is_group(key, value)}
    for key, value in values.items():
        if key in NESTED and not is_group(key, value):
            group, name, _ = NESTED[key]
            part = nested.setdefault(group, {})
            if isinstance(part, BaseModel):
                part = nested[group] = part.model_dump()
            part[name] = value
    return nested


def _nested_environment() -> dict[str, dict[str, str]]:
    """The groups' settings as the environment sets them."""
    found: dict[str, dict[str, str]] = {}
    for flat, (group, name, legacy) in NESTED.items():
        for variable in (f"ARTDAG_{flat.upper()}", *legacy):
            if variable in os.environ:
                found.setdefault(group, {})[name] = os.environ[variable]
                break
    return found


class _NestedEnvironment(PydanticBaseSettingsSource):
    """Reads the nested groups' flat variables (`ARTDAG_NATS_URL`, `NATS_URL`) into their groups."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything comes from __call__

    def __call__(self) -> dict[str, Any]:
        return _nested_environment()


class CommonSettings(BaseSettings):
    """What every process needs: its home, the bus, the database, the store, tokens, limits."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    def __init__(self, **values: Any) -> None:
        nested = _nest(values)
        # A group given in part (`nats_url=…`) keeps what the environment sets for the rest of it.
        for group, found in _nested_environment().items():
            if isinstance(nested.get(group), dict):
                nested[group] = {**found, **nested[group]}
        super().__init__(**nested)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keywords first, then the environment: the flat variables of the groups, and the others.
        return init_settings, _NestedEnvironment(settings_cls), env_settings

    home: Path = Field(default=Path("~/.artdag"), validation_alias=_env("HOME"))
    # The groups take no variable of their own name (a stray `NATS` in the environment is not read).
    nats: NatsSettings = Field(default_factory=NatsSettings, validation_alias="ARTDAG__NATS_GROUP")
    store: StoreSettings = Field(default_factory=StoreSettings, validation_alias="ARTDAG__STORE_GROUP")
    auth: AuthSettings = Field(default_factory=AuthSettings, validation_alias="ARTDAG__AUTH_GROUP")
    # How long JetStream waits for a step, or a step event, to be acked before it hands it to another
    # replica (a killed executor's step, a killed planner's event); executors renew it while they work.
    ack_wait_s: float = Field(default=30.0, ge=2, le=3600, validation_alias=_env("ACK_WAIT_S"))
    # Free disk space kept in reserve: below it uploads and new runs are refused (507); 0 turns it off.
    min_free_bytes: int = Field(default=256 * 2**20, ge=0, validation_alias=_env("MIN_FREE_BYTES"))
    database_url: str | None = Field(default=None, validation_alias=_env("DATABASE_URL", "DATABASE_URL"))
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

    # -- Python effects (see artdag_effects.sandbox): off unless an admin turns them on --------
    # Run under bubblewrap, importing only the approved packages (comma-separated; numpy always),
    # within CPU seconds and MiB of address space a run, and wall seconds for setup or a frame.
    python_effects: bool = Field(default=False, validation_alias=_env("PYTHON_EFFECTS"))
    python_effect_deps: str = Field(default="numpy", validation_alias=_env("PYTHON_EFFECT_DEPS"))
    python_effect_cpu_s: int = Field(default=300, ge=1, le=86_400, validation_alias=_env("PYTHON_EFFECT_CPU_S"))
    python_effect_memory_mib: int = Field(
        default=1024, ge=256, le=65_536, validation_alias=_env("PYTHON_EFFECT_MEMORY_MIB")
    )
    python_effect_wall_s: float = Field(default=30.0, gt=0, le=3600, validation_alias=_env("PYTHON_EFFECT_WALL_S"))

    @field_validator("python_effect_deps")
    @classmethod
    def _check_python_effect_deps(cls, value: str) -> str:
        for name in filter(None, (part.strip() for part in value.split(","))):
            if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", name):
                raise ValueError(f"{name!r} is not a package name (a comma-separated list, like numpy,scipy)")
        return value

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

    @field_validator("home", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser().resolve()

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

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @property
    def keys_dir(self) -> Path:
        """Where the L1's key files live (`KEY_DIR`, default `<home>/keys`)."""
        return self.auth.key_dir if self.auth.key_dir is not None else self.home / "keys"

    @property
    def spool_dir(self) -> Path:
        """Where remote stores stage uploads and downloads (`STORE_SPOOL_DIR`, default `<home>/spool`)."""
        return self.store.spool_dir if self.store.spool_dir is not None else self.home / "spool"

    @property
    def store_dir(self) -> Path:
        """The local content store's root (`CACHE_DIR`, default `<home>/cache`)."""
        return self.store.cache_dir if self.store.cache_dir is not None else self.home / "cache"

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file under the home dir."""
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'artdag.db'}"

    @property
    def cluster_key_value(self) -> str | None:
        """The trust-domain key mixed into step ids, if one is configured."""
        return self.cluster_key.get_secret_value() if self.cluster_key else None


S = TypeVar("S", bound=CommonSettings)


def environment_variables(cls: type[CommonSettings]) -> set[str]:
    """Every environment variable settings of `cls` read (the groups' and the class's own fields')."""
    names = {f"ARTDAG_{flat.upper()}" for flat in NESTED} | {name for *_, legacy in NESTED.values() for name in legacy}
    for field in cls.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str) and not alias.startswith("ARTDAG__"):
            names.add(alias)
    return names


# Names of the original L1 server that are read as well (see `_env`): reported as they were set.
_LEGACY_NAMES = frozenset(
    {"HOST", "PORT", "NATS_URL", "DATABASE_URL", "CACHE_DIR", "IPFS_API", "IPFS_PRIMARY", "IPFS_TIMEOUT"}
)


_FLAT_NAMES = {(group, name): flat for flat, (group, name, _) in NESTED.items()}


def _variable(loc: tuple[int | str, ...]) -> str:
    """The variable an error's location stands for: ARTDAG_NATS_URL for ("nats", "url")."""
    parts = [str(part) for part in loc]
    if len(parts) >= 2 and (flat := _FLAT_NAMES.get((parts[0], parts[1]))):
        return f"ARTDAG_{flat.upper()}"
    if parts and parts[0] in _GROUPS:
        return f"ARTDAG_{parts[0].upper()} settings"
    # The location is the alias that was read (ARTDAG_X, or a legacy name) or else the field's name.
    name = (".".join(parts) or "?").upper()
    return name if name.startswith("ARTDAG_") or name in _LEGACY_NAMES else f"ARTDAG_{name}"


def load_settings(cls: type[S]) -> S:
    """Build settings from the environment, or exit with a message naming the bad variable."""
    from pydantic import ValidationError

    try:
        return cls()
    except ValidationError as exc:
        lines = [f"invalid configuration for {cls.__name__}:"]
        for err in exc.errors():
            variable = _variable(err["loc"])
            lines.append(f"  {variable}: {err['msg']}")
        raise SystemExit("\n".join(lines)) from None
