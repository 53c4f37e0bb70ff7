"""Storage providers: per-type configs, who may point them where (`ProviderPolicy`, egress.py),
secrets encrypted at rest, and a real connection test that tells a client nothing about the network."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from artdag_common.content_store import ContentStore, LocalContentStore
from artdag_common.db.tables import StorageProvider
from artdag_common.errors import BadRequestError, ForbiddenError, InvalidInputError, NotFoundError, invalid_input
from artdag_common.schemas import (
    StorageField,
    StorageProviderInput,
    StorageProviderList,
    StorageProviderRecord,
    StorageProviderUpdate,
    StorageTestReply,
    StorageTypeSchema,
    Viewer,
)
from artdag_common.settings import CommonSettings, check_s3_prefix
from services.cache.egress import NATS_DEFAULT_PORT, Endpoint, Reach, bus_addresses, run_checked, url_endpoint
from services.cache.replicas import Replica, StoreReplica

log = logging.getLogger(__name__)

MASK = "********"
_ENCRYPTED = "enc:v1:"
# What a failed test says, whatever the cause (refused, timed out, no such name, TLS, 403, 404, 500):
# anything more would tell a user which ports and hosts answer from inside the network.
UNREACHABLE = "could not reach the endpoint"
UNUSABLE_DIRECTORY = "could not write to, read back from and delete in the directory"
# A test's whole round trip, within the gateway's wait for it (ARTDAG_STORAGE_TEST_TIMEOUT_S, default 60 s).
ROUND_TRIP_TIMEOUT_S = 45.0
_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NATS_BUCKET_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MULTIADDR_RE = re.compile(r"^/(ip4|ip6|dns|dns4|dns6)/[^/\s]+/tcp/\d{1,5}(/https?)?$")
_REGION_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


# -- per-type configs ------------------------------------------------------------------


def _check_url_host(url: str) -> str:
    """`url` if it names a host and a valid port, and no user or password (secrets go in secret fields)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # a ValueError if it is no number or out of range
    except ValueError:
        raise ValueError(f"not a valid URL: {url!r}") from None
    if port == 0:
        raise ValueError(f"not a valid URL: {url!r}")
    if "@" in parts.netloc:
        raise ValueError("a URL may not carry a user or password: put credentials in their own fields")
    if not parts.hostname:
        raise ValueError(f"the URL {url!r} names no host")
    return url


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class S3Config(_Config):
    """An S3 (or S3-compatible) bucket."""

    bucket: str = Field(description="bucket name")
    prefix: str = Field(default="", max_length=512, description="key prefix, like 'artdag/'")
    endpoint_url: str | None = Field(default=None, description="for MinIO, Ceph, moto: http(s)://host:port")
    region: str | None = Field(default=None, max_length=64)
    access_key_id: str | None = Field(default=None, max_length=256)
    secret_access_key: SecretStr | None = Field(default=None, description="stored encrypted, never shown")

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _BUCKET_RE.match(value) or ".." in value:
            raise ValueError("an S3 bucket name is 3-63 lower-case letters, digits, '.' and '-'")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return check_s3_prefix(value)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("an endpoint URL is http(s)://host[:port]")
        return _check_url_host(value)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        # botocore puts the region into the host name it connects to: letters, digits and '-' only.
        if value and not _REGION_RE.match(value):
            raise ValueError("a region is lower-case letters, digits and '-', like eu-west-1")
        return value or None


class IpfsConfig(_Config):
    """A Kubo-compatible IPFS node's RPC API."""

    api: str = Field(default="/ip4/127.0.0.1/tcp/5001", description="RPC API multiaddr")
    timeout_s: float = Field(default=30.0, gt=0, le=600)

    @field_validator("api")
    @classmethod
    def _api(cls, value: str) -> str:
        if not _MULTIADDR_RE.match(value) or not 0 < int(value.split("/")[4]) < 65536:
            raise ValueError("an IPFS API address is a multiaddr like /ip4/127.0.0.1/tcp/5001")
        return value


class NatsConfig(_Config):
    """A JetStream object-store bucket, on this cluster's NATS or another."""

    url: str = Field(description="nats://host:port (several separated by commas)")
    bucket: str = Field(default="artdag_content")
    token: SecretStr | None = Field(default=None, description="auth token, stored encrypted, never shown")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        for url in value.split(","):
            if not re.match(r"^(nats|tls)://[^\s/]+$", url.strip()):
                raise ValueError(f"not a NATS URL: {url.strip()!r} (expected nats://host:port)")
            _check_url_host(url.strip())
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _NATS_BUCKET_RE.match(value):
            raise ValueError("a NATS object-store bucket name uses only letters, digits, '_' and '-'")
        return value


class LocalConfig(_Config):
    """A directory on the cache service's machine."""

    path: str = Field(description="absolute path of an existing directory")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not Path(value).is_absolute() or ".." in Path(value).parts or "\x00" in value:
            raise ValueError("the path must be absolute, without '..'")
        return value


class PinningConfig(_Config):
    """A pinning service that speaks the IPFS Pinning Service API; an IPFS node provides the bytes."""

    endpoint: str = Field(description="the service's API root, like https://pin.example/psa")
    access_token: SecretStr = Field(description="the service's bearer token, stored encrypted, never shown")
    ipfs_api: str = Field(default="/ip4/127.0.0.1/tcp/5001", description="RPC API multiaddr of the node that provides")
    timeout_s: float = Field(default=300.0, gt=0, le=3600, description="how long a pin may take to be pinned")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("a pinning service endpoint is http(s)://host[:port][/path]")
        return _check_url_host(value.rstrip("/"))

    @field_validator("ipfs_api")
    @classmethod
    def _api(cls, value: str) -> str:
        return IpfsConfig._api(value)


CONFIGS: dict[str, type[_Config]] = {
    "s3": S3Config,
    "ipfs": IpfsConfig,
    "nats": NatsConfig,
    "local": LocalConfig,
    "pinning": PinningConfig,
}
ProviderType = Literal["s3", "ipfs", "nats", "local", "pinning"]


def _secret_fields(model: type[_Config]) -> set[str]:
    return {name for name, f in model.model_fields.items() if _is_secret(f.annotation)}


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or "SecretStr" in str(annotation)


def type_schema(kind: str) -> StorageTypeSchema:
    """The fields a provider of type `kind` takes: what a form shows."""
    model = CONFIGS.get(kind)
    if model is None:
        raise NotFoundError(f"no storage type {kind!r} (one of: {', '.join(CONFIGS)})", field="type")
    fields = []
    for name, info in model.model_fields.items():
        secret = _is_secret(info.annotation)
        shown = str(info.annotation).replace("typing.", "").replace("pydantic.types.", "")
        kind_name = "secret" if secret else "integer" if "int" in shown else "number" if "float" in shown else "string"
        fields.append(
            StorageField(
                name=name,
                type=kind_name,
                required=info.is_required(),
                secret=secret,
                default=None if info.is_required() or secret else info.default,
                description=info.description or "",
            )
        )
    return StorageTypeSchema(type=kind, fields=fields)


def validate_config(kind: str, config: dict[str, Any]) -> _Config:
    """The config as its type's model, or `InvalidInputError` naming the field."""
    model = CONFIGS.get(kind)
    if model is None:
        raise InvalidInputError(f"unknown storage type {kind!r} (one of: {', '.join(CONFIGS)})", field="type")
    try:
        return model.model_validate(config)
    except ValidationError as exc:
        raise invalid_input(exc, prefix="config") from None


# -- who may point a provider where ---------------------------------------------------------


def endpoints_of(config: _Config) -> list[Endpoint]:
    """Every host and port `config` makes the cache service connect to (none for AWS's own S3 or a directory)."""
    if isinstance(config, S3Config) and config.endpoint_url:
        default = 443 if config.endpoint_url.startswith("https:") else 80
        return [url_endpoint(config.endpoint_url, "config.endpoint_url", default)]
    if isinstance(config, IpfsConfig):
        _, _, host, _, port, *_ = config.api.split("/")
        return [Endpoint("config.api", host, int(port))]
    if isinstance(config, NatsConfig):
        return [url_endpoint(url.strip(), "config.url", NATS_DEFAULT_PORT) for url in config.url.split(",")]
    if isinstance(config, PinningConfig):
        _, _, host, _, port, *_ = config.ipfs_api.split("/")
        default = 443 if config.endpoint.startswith("https:") else 80
        return [url_endpoint(config.endpoint, "config.endpoint", default), Endpoint("config.ipfs_api", host, int(port))]
    return []


@dataclass(frozen=True)
class ProviderPolicy:
    """Who may point a provider where (`ARTDAG_PROVIDER_*`): `local` providers are an admin's, under
    `local_roots`; private addresses are an admin's unless `allow_private`; the stack's own bus
    (`bus_urls`) is an admin's always."""

    local_roots: tuple[Path, ...] = ()
    allow_private: bool = False
    bus_urls: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> ProviderPolicy:
        return cls(
            local_roots=tuple(settings.provider_roots),
            allow_private=settings.provider_allow_private,
            bus_urls=tuple(u.strip() for u in settings.nats.url.split(",")),
        )

    async def reach(self, viewer: Viewer | None) -> Reach:
        """Where `viewer`'s provider may connect (no viewer: a plain user's rights)."""
        if viewer is not None and viewer.admin:
            return Reach(private=True)
        return Reach(private=self.allow_private, bus=await bus_addresses(self.bus_urls))

    async def admit(self, config: _Config, viewer: Viewer | None) -> _Config:
        """`config` as it may be saved or used by `viewer`, or `ForbiddenError` naming the field."""
        if isinstance(config, LocalConfig):
            return self._local(config, admin=viewer is not None and viewer.admin)
        if isinstance(config, S3Config) and (config.access_key_id is None) != (config.secret_access_key is None):
            # One half of a key pair would have botocore look for the other in the server's own environment.
            missing = "secret_access_key" if config.secret_access_key is None else "access_key_id"
            raise InvalidInputError(
                "set both access_key_id and secret_access_key, or neither (then requests go unsigned)",
                field=f"config.{missing}",
            )
        reach = await self.reach(viewer)
        await asyncio.gather(*(reach.check(endpoint) for endpoint in endpoints_of(config)))
        return config

    def _local(self, config: LocalConfig, *, admin: bool) -> LocalConfig:
        if not admin:
            raise ForbiddenError(
                "only an admin may add or use a local provider (a directory on the server)", field="type"
            )
        roots = [root.resolve() for root in self.local_roots]
        try:
            # Symlinks and '..' resolved first, then contained: nothing is created or written before this.
            path = Path(config.path).resolve()
        except (OSError, RuntimeError):
            path = None
        if path is None or not any(path.is_relative_to(root) for root in roots):
            allowed = ", ".join(str(root) for root in roots) or "nowhere"
            raise ForbiddenError(
                f"a local provider's directory must be under {allowed} (ARTDAG_PROVIDER_LOCAL_ROOTS)",
                field="config.path",
            )
        return LocalConfig(path=str(path))


# -- secrets at rest ----------------------------------------------------------------------


class SecretBox:
    """AES-256-GCM for config secrets; each value is bound to its provider and field (associated data)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the secrets key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_settings(cls, key: SecretStr | None, home: Path) -> SecretBox:
        """The configured key, else `<home>/secrets.key` (made once, readable by its owner only)."""
        if key is not None:
            return cls(base64.b64decode(key.get_secret_value()))
        path = home / "secrets.key"
        home.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls(base64.b64decode(path.read_text().strip()))
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode() + "\n")
        log.info("made a key for storage-provider secrets in %s (set ARTDAG_SECRETS_KEY in a cluster)", path)
        return cls(base64.b64decode(path.read_text().strip()))

    def seal(self, plain: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plain.encode(), context.encode())
        return _ENCRYPTED + base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> str:
        if not sealed.startswith(_ENCRYPTED):
            raise ValueError("not an encrypted value")
        raw = base64.b64decode(sealed[len(_ENCRYPTED) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise InvalidInputError(
                "a stored secret cannot be decrypted (was ARTDAG_SECRETS_KEY changed?): set it again", field="config"
            ) from None


# -- the table ----------------------------------------------------------------------------


def check_id(provider_id: str) -> str:
    if not _ID_RE.match(provider_id):
        raise BadRequestError("a storage provider id is 32 hex digits", field="id")
    return provider_id


class ProviderBook:
    """The `storage_providers` table; secret config values are sealed before they are written."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], box: SecretBox, policy: ProviderPolicy | None = None
    ) -> None:
        self._sessions = sessions
        self._box = box
        self.policy = policy if policy is not None else ProviderPolicy()

    def _sealed(self, provider_id: str, config: _Config) -> dict[str, Any]:
        stored: dict[str, Any] = {}
        for name, value in config.model_dump(mode="python", exclude_none=True).items():
            if isinstance(value, SecretStr):
                stored[name] = self._box.seal(value.get_secret_value(), f"{provider_id}/{name}")
            else:
                stored[name] = value
        return stored

    def opened(self, row: StorageProvider) -> _Config:
        """The row's config with secrets decrypted (for connecting, never for showing)."""
        model = CONFIGS[row.type]
        secrets = _secret_fields(model)
        plain = {
            name: self._box.open(value, f"{row.id}/{name}") if name in secrets else value
            for name, value in row.config.items()
        }
        return model.model_validate(plain)

    @staticmethod
    def _shown(row: StorageProvider) -> StorageProviderRecord:
        secrets = _secret_fields(CONFIGS[row.type])
        config = {name: MASK if name in secrets else value for name, value in row.config.items()}
        for name in secrets:
            config.setdefault(name, None)
        return StorageProviderRecord(
            id=row.id,
            name=row.name,
            type=row.type,
            config=config,
            replicate=row.replicate,
            default=row.is_default,
            owner=row.owner,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def _row(self, session: AsyncSession, provider_id: str) -> StorageProvider:
        row = await session.get(StorageProvider, check_id(provider_id))
        if row is None:
            raise NotFoundError(f"no storage provider {provider_id}", field="id")
        return row

    async def row(self, provider_id: str) -> StorageProvider:
        """The provider's row as stored (secrets sealed), for connecting with `opened`."""
        async with self._sessions() as session:
            return await self._row(session, provider_id)

    @staticmethod
    async def _only_default(session: AsyncSession, row: StorageProvider) -> None:
        """`row` becomes its owner's one default provider."""
        await session.execute(
            update(StorageProvider)
            .where(StorageProvider.owner == row.owner, StorageProvider.id != row.id)
            .values(is_default=False)
        )

    async def add(self, request: StorageProviderInput) -> StorageProviderRecord:
        config = await self.policy.admit(validate_config(request.type, request.config), request.viewer)
        provider_id = uuid.uuid4().hex
        now = time.time()
        row = StorageProvider(
            id=provider_id,
            name=request.name.strip(),
            type=request.type,
            config=self._sealed(provider_id, config),
            owner=request.owner,
            created_at=now,
            updated_at=now,
            replicate=request.replicate,
            is_default=request.default,
            # What an admin may reach (a local directory, private addresses), their copies may reach later.
            privileged=request.viewer is not None and request.viewer.admin,
        )
        async with self._sessions.begin() as session:
            session.add(row)
            if row.is_default:
                await session.flush()
                await self._only_default(session, row)
        log.info("storage provider %s added (%s, %s)", provider_id, request.type, row.name)
        return self._shown(row)

    async def get(self, provider_id: str) -> StorageProviderRecord:
        async with self._sessions() as session:
            return self._shown(await self._row(session, provider_id))

    async def list(self, viewer: Viewer | None = None) -> StorageProviderList:
        """Every provider, or only `viewer`'s (admins: all)."""
        query = select(StorageProvider).order_by(StorageProvider.created_at)
        if viewer is not None and not viewer.admin:
            query = query.where(StorageProvider.owner == viewer.user)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return StorageProviderList(providers=[self._shown(r) for r in rows])

    async def update(self, request: StorageProviderUpdate) -> StorageProviderRecord:
        async with self._sessions.begin() as session:
            row = await self._row(session, request.id)
            if request.patch.name is not None:
                row.name = request.patch.name.strip()
            if request.patch.replicate is not None:
                row.replicate = request.patch.replicate
            if request.patch.default is not None:
                row.is_default = request.patch.default
                if row.is_default:
                    await self._only_default(session, row)
            if request.patch.config is not None:
                current = self.opened(row).model_dump(mode="python", exclude_none=True)
                merged = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in current.items()}
                for name, value in request.patch.config.items():
                    if value == MASK:
                        continue  # the form sent back the mask: keep the stored secret
                    if value is None or value == "":
                        merged.pop(name, None)
                    else:
                        merged[name] = value
                config = await self.policy.admit(validate_config(row.type, merged), request.viewer)
                row.config = self._sealed(row.id, config)
                row.privileged = request.viewer is not None and request.viewer.admin
            row.updated_at = time.time()
            return self._shown(row)

    async def delete(self, provider_id: str) -> StorageProviderRecord:
        async with self._sessions.begin() as session:
            row = await self._row(session, provider_id)
            shown = self._shown(row)
            await session.delete(row)
        log.info("storage provider %s deleted", provider_id)
        return shown

    async def test(self, provider_id: str, *, scratch: Path, viewer: Viewer | None = None) -> StorageTestReply:
        """Connect with the provider's config, put a small object, read it back, delete it.

        The config is checked again with `viewer`'s rights (a 4xx naming the field), and every
        connection once more as it is made; any failure after that reads the same, whatever its
        cause (see UNREACHABLE), so the test cannot be used to scan ports. The cause is logged.
        """
        async with self._sessions() as session:
            row = await self._row(session, provider_id)
        config = await self.policy.admit(self.opened(row), viewer)
        reach = await self.policy.reach(viewer)
        started = time.monotonic()
        error: str | None = None
        try:
            await asyncio.to_thread(
                run_checked, reach, lambda: round_trip(row.type, config, scratch), ROUND_TRIP_TIMEOUT_S
            )
        except Exception as exc:  # noqa: BLE001 - any failure of a foreign backend is the answer, not a crash
            error = UNUSABLE_DIRECTORY if isinstance(config, LocalConfig) else UNREACHABLE
            log.info("storage provider %s test failed", provider_id)
            log.debug("storage provider %s test failed: %s: %s", provider_id, type(exc).__name__, exc)
        elapsed = time.monotonic() - started
        return StorageTestReply(id=provider_id, ok=error is None, error=error, elapsed_s=round(elapsed, 3))


async def open_replica(kind: str, config: _Config, scratch: Path, stack: AsyncExitStack, cid_version: int) -> Replica:
    """The provider as the replicator uses it; its connections close with `stack`."""
    if isinstance(config, PinningConfig):
        from services.cache.provider_pinning import open_pinning_replica

        return await open_pinning_replica(config, scratch, stack, cid_version)
    return StoreReplica(await _open_store(kind, config, scratch, stack, cid_version))


async def _open_store(
    kind: str, config: _Config, scratch: Path, stack: AsyncExitStack, cid_version: int = 0
) -> ContentStore:
    if isinstance(config, LocalConfig):
        root = Path(config.path)
        if not root.is_dir():
            raise NotFoundError(f"{root} is not a directory", field="config.path")
        # Plain files, as people expect to find in a directory they gave (no table of small objects).
        return LocalContentStore(root, small_object_max=-1, cid_version=cid_version)
    if isinstance(config, S3Config):
        from services.cache.provider_s3 import ProviderS3Store

        secret = config.secret_access_key
        s3 = ProviderS3Store(
            config.bucket,
            spool_dir=scratch,
            prefix=config.prefix,
            endpoint_url=config.endpoint_url,
            region=config.region,
            access_key_id=config.access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            cid_version=cid_version,
        )
        stack.push_async_callback(s3.aclose)
        await s3.open()
        return s3
    if isinstance(config, IpfsConfig):
        from artdag_common.content_store.ipfs import IpfsContentStore

        ipfs = IpfsContentStore(config.api, spool_dir=scratch, timeout_s=config.timeout_s, cid_version=cid_version)
        stack.push_async_callback(ipfs.aclose)
        await ipfs.open()
        return ipfs
    if isinstance(config, NatsConfig):
        import nats

        from artdag_common.content_store.nats import NatsContentStore

        token = config.token.get_secret_value() if config.token is not None else None
        nc = await nats.connect(
            servers=[u.strip() for u in config.url.split(",")],
            token=token,
            connect_timeout=5,
            max_reconnect_attempts=0,
            allow_reconnect=False,
        )
        stack.push_async_callback(nc.close)
        obs = NatsContentStore(nc, config.bucket, spool_dir=scratch, cid_version=cid_version)
        await obs.open()
        return obs
    raise InvalidInputError(f"unknown storage type {kind!r}", field="type")


async def round_trip(kind: str, config: _Config, spool: Path) -> None:
    """Put a small unique object into the backend, read it back, delete it; raise on any difference."""
    spool.mkdir(parents=True, exist_ok=True)
    body = f"artdag storage test {uuid.uuid4()}\n".encode()
    with tempfile.TemporaryDirectory(dir=spool, prefix="storage-test-") as scratch:
        async with AsyncExitStack() as stack:
            if isinstance(config, PinningConfig):
                # A pin of a test object would cost the user a pin: the service is asked to list pins
                # (which checks the token), and the node that provides the bytes to answer.
                from services.cache.provider_pinning import open_pinning_replica

                pinning = await open_pinning_replica(config, Path(scratch), stack, 0)
                await pinning.check()
                config = IpfsConfig(api=config.ipfs_api, timeout_s=min(config.timeout_s, 600.0))
                kind = "ipfs"
            store = await _open_store(kind, config, Path(scratch), stack)
            writer = store.writer(max_bytes=len(body))
            async with writer:
                await writer.write(body)
                cid = await writer.commit()
            try:
                got = await store.get_bytes(cid)
                if got != body:
                    raise ValueError(f"read back {len(got)} bytes that differ from the {len(body)} written")
            finally:
                await store.delete(cid)
