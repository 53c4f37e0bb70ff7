"""Who may say what on the bus: one NATS user per service, each allowed only the subjects it needs.

An open bus makes any process that reaches it an admin: it could ask the auth service for an
admin token, read bearer tokens from verify requests, answer them itself, or announce a run's
completion. So every service connects as a user of its own, and the server lets each publish
and subscribe only what its work needs:

- only the auth service receives `artdag.rpc.auth.*`; only the gateway may ask it to verify or
  revoke, and only the `admin` user (an operator, the tests) may ask it to issue a token;
- each service answers only its own `artdag.rpc.<service>.*` (replies go back through the
  server's response permission, never through a general right to publish to inboxes);
- each user's replies arrive under an inbox prefix of its own, which nobody else may subscribe to;
- only the planner dispatches work and announces runs; only executors report steps; only the
  analyzer reports analysis progress; only the cache announces stored content;
- each KV bucket is written only by the services that own it; only the planner (and admin)
  may create or change streams, since a stream's subjects decide what it captures.

The embedded nats-server (`artdag up`, the tests) and the chart's NATS both take their rules
from `authorization_conf`, so a rule changes here and nowhere else.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artdag_common import streams, subjects

ADMIN = "admin"
USERS: tuple[str, ...] = (*subjects.SERVICES, ADMIN)

# The services that provision JetStream (streams, consumers, buckets); the others wait for it.
STREAM_MANAGERS = frozenset({"planner", ADMIN})


def inbox_prefix(user: str) -> str:
    """Where `user`'s replies arrive: a subtree only `user` may subscribe to."""
    return f"_INBOX.{user}"


def _rpc(service: str, verb: str = "*") -> str:
    return f"{subjects.PREFIX}.rpc.{service}.{verb}"


def _kv(bucket: str) -> str:
    return f"$KV.{bucket}.>"


@dataclass(frozen=True)
class Grant:
    """The subjects one user may publish and subscribe to."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


# JetStream plumbing every service needs: reading stream and consumer state, pulling and acking
# messages, direct KV reads. Not stream creation, deletion or purges (see `_manage_streams`).
_JETSTREAM_USE = (
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.*",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.MSG.GET.*",
    "$JS.API.DIRECT.GET.>",
    "$JS.API.CONSUMER.>",
    "$JS.ACK.>",
    "$JS.FC.>",
)
# Stream subjects decide what a stream captures (a stream made to capture `artdag.rpc.auth.>`
# would hand its reader every bearer token): only the planner and admin create or change them.
_MANAGE_STREAMS = ("$JS.API.STREAM.CREATE.*", "$JS.API.STREAM.UPDATE.*")


def _object_bucket_rights(object_bucket: str) -> tuple[str, ...]:
    # nats-py purges a replaced object's old chunks (and a failed put's) through the stream API.
    return (f"$O.{object_bucket}.>", f"$JS.API.STREAM.PURGE.OBJ_{object_bucket}")


def grants(object_bucket: str) -> dict[str, Grant]:
    """Every user's grant; `object_bucket` is the content store's (ARTDAG_NATS_OBJECT_BUCKET)."""
    content = _object_bucket_rights(object_bucket)
    events = f"{subjects.PREFIX}.event.>"
    service_grants = {
        "gateway": (
            _rpc("planner"),
            _rpc("cache"),
            _rpc("analyzer"),
            _rpc("auth", "verify"),
            _rpc("auth", "revoke"),
            _rpc("auth", "revoke_user"),
            *(_rpc(name, "health") for name in subjects.SERVICES),
            *content,
        ),
        "auth": (_kv(streams.KV_REVOKED.bucket),),
        "planner": (
            subjects.TASKS_WILDCARD,
            subjects.RUN_EVENTS_WILDCARD,
            subjects.RUNS_FINISHED_WILDCARD,
            _rpc("cache"),
            _rpc("analyzer"),
            _kv(streams.KV_RUNS.bucket),
            _kv(streams.KV_RESULTS.bucket),
            _kv(streams.KV_CLAIMS.bucket),
            _kv(streams.KV_ANALYSIS.bucket),
            *_MANAGE_STREAMS,
            *content,
        ),
        "analyzer": (
            f"{subjects.PREFIX}.event.analysis.*",
            _rpc("cache"),
            _kv(streams.KV_ANALYSIS.bucket),
            *content,
        ),
        "executor": (
            subjects.STEP_EVENTS_WILDCARD,
            _rpc("cache"),
            _rpc("analyzer"),
            _kv(streams.KV_RESULTS.bucket),
            _kv(streams.KV_CLAIMS.bucket),
            *content,
        ),
        "cache": (
            subjects.CONTENT_STORED,
            subjects.TASK_REPLICATE,
            *content,
        ),
    }
    # Any service may answer with a reply too large for one message, and any caller reads one
    # (`artdag_common.rpc`): both put, get and delete in the replies bucket.
    replies = _object_bucket_rights(streams.OBJ_RPC_REPLIES.bucket or "")
    table = {
        service: Grant(
            publish=(*_JETSTREAM_USE, *rights, *replies),
            subscribe=(
                f"{inbox_prefix(service)}.>",
                f"{subjects.PREFIX}.rpc.{service}.*",
                events,
                # JetStream's word that a consumer gave up on a message.
                "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>",
            ),
        )
        for service, rights in service_grants.items()
    }
    table[ADMIN] = Grant(publish=(">",), subscribe=(">",))
    return table


@dataclass(frozen=True)
class BusLogin:
    """A user and password for the bus."""

    user: str
    password: str

    def __repr__(self) -> str:  # never the password, in a log or a traceback
        return f"BusLogin(user={self.user!r})"


class BusCredentials:
    """One password per user, kept in `<home>/bus/credentials.json` (mode 0600).

    `artdag up` makes them on its first start and writes the server's rules from them; each
    service process gets its own login in its environment.
    """

    def __init__(self, passwords: dict[str, str]) -> None:
        missing = [user for user in USERS if not passwords.get(user)]
        if missing:
            raise ValueError(f"bus credentials lack a password for {', '.join(missing)}")
        self._passwords = dict(passwords)

    @staticmethod
    def path(home: Path) -> Path:
        return home / "bus" / "credentials.json"

    @classmethod
    def generate(cls) -> BusCredentials:
        return cls({user: secrets.token_urlsafe(32) for user in USERS})

    @classmethod
    def load(cls, home: Path) -> BusCredentials | None:
        """The saved credentials, or None if there are none yet."""
        path = cls.path(home)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path} is not a bus credentials file: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"{path} is not a bus credentials file")
        return cls(data)

    @classmethod
    def ensure(cls, home: Path) -> BusCredentials:
        """The saved credentials, made and saved first if there are none."""
        found = cls.load(home)
        if found is not None:
            return found
        made = cls.generate()
        made.save(home)
        return made

    def save(self, home: Path) -> Path:
        path = self.path(home)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        # Created 0600 before anything is written: the passwords are never readable by others.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self._passwords, out)
        path.chmod(0o600)
        return path

    def login(self, user: str) -> BusLogin:
        return BusLogin(user, self._passwords[user])

    @property
    def admin(self) -> BusLogin:
        return self.login(ADMIN)


def home_login(home: Path, service: str) -> BusLogin | None:
    """`service`'s login from the credentials saved in `home`, if there are any.

    A service whose home holds the bus logins (`artdag up`, `artdag bus-config`, a shared volume
    in compose.yaml) connects as itself with no setting of its own.
    """
    saved = BusCredentials.load(home)
    return saved.login(service) if saved is not None and service in USERS else None


def authorization(passwords: dict[str, str], object_bucket: str) -> dict[str, Any]:
    """A nats-server `authorization` block: every user, its password and its grant.

    `passwords` maps each user to its password, or to what stands for it (the chart's NATS
    reads each from its environment, filled from a Secret).
    """
    table = grants(object_bucket)
    users: list[dict[str, Any]] = []
    for user in USERS:
        permissions: dict[str, Any] = {
            "publish": {"allow": list(table[user].publish)},
            "subscribe": {"allow": list(table[user].subscribe)},
        }
        if user != ADMIN:
            # A service answers the requests it receives, to the requester's inbox only, once each.
            permissions["allow_responses"] = True
        users.append({"user": user, "password": passwords[user], "permissions": permissions})
    return {"users": users}


def credentials_conf(credentials: BusCredentials, object_bucket: str) -> str:
    """The embedded server's `authorization` block for saved credentials (nats-server reads JSON)."""
    passwords = {user: credentials.login(user).password for user in USERS}
    return f"authorization: {json.dumps(authorization(passwords, object_bucket), indent=2)}\n"


def chart_password_variable(user: str) -> str:
    """The variable the chart's NATS container reads `user`'s password from."""
    return f"ARTDAG_BUS_{user.upper()}"


def chart_nats_values(secret_name: str, object_bucket: str) -> dict[str, Any]:
    """What values.yaml gives the upstream NATS chart so that its server takes these logins.

    Each password comes from the bus Secret through the container's environment (`<< $VAR >>`
    is the upstream chart's way to write a config value unquoted, here a variable reference).
    """
    passwords = {user: f"<< ${chart_password_variable(user)} >>" for user in USERS}
    return {
        "config": {"merge": {"authorization": authorization(passwords, object_bucket)}},
        "container": {
            "env": {
                chart_password_variable(user): {"valueFrom": {"secretKeyRef": {"name": secret_name, "key": user}}}
                for user in USERS
            }
        },
    }


def tls_context(ca_file: Path | None, cert_file: Path | None, key_file: Path | None) -> ssl.SSLContext | None:
    """A client TLS context for the bus, or None when no TLS file is set."""
    if ca_file is None and cert_file is None:
        return None
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if cert_file is not None:
        context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    return context
