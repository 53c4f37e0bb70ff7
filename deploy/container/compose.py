"""compose.yaml run by podman alone, for `make container-test` and for hosts without a compose tool.

Debian bookworm's podman (4.3) has no `podman compose`, and its podman-compose (1.0.3) starts the
containers one a second without waiting for `depends_on` conditions. This reads compose.yaml with PyYAML and
issues the podman commands a compose tool would: one network (every container reachable by its
service's name), the named volumes, then each service's containers in dependency order, waiting for
`service_started`, `service_healthy` (the health check run by hand: without systemd podman runs none
on its own) and `service_completed_successfully`. It knows the part of the Compose specification that
compose.yaml uses and refuses any other key, so the file cannot say something this would ignore.
`up` again starts what is not running (a one-shot runs again); after a change, `down` first.

    .venv/bin/python deploy/container/compose.py [-f compose.yaml] [-p PROJECT] up | down [--volumes] | ps
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONTAINERS_CONF = HERE / "containers.conf"
LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"

TOP_KEYS = {"services", "volumes"}
SERVICE_KEYS = {
    "image",
    "command",
    "environment",
    "volumes",
    "ports",
    "depends_on",
    "restart",
    "deploy",
    "healthcheck",
    "read_only",
    "tmpfs",
    "cap_drop",
    "security_opt",
    "stop_grace_period",
}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "disable"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
RESTART_POLICIES = {"no", "always", "on-failure", "unless-stopped"}
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")
_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+)ms)?$")


class ComposeError(Exception):
    """compose.yaml asks for something this runner does not do, or a container did not come up."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable syntax: `$$`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        if name is None:
            return "$"
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op in (":?", "?") and (value is None or (op == ":?" and not value)):
            raise ComposeError(f"${{{name}}}: {arg or 'must be set'}")
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _interpolate_all(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [_interpolate_all(item, env) for item in value]
    if isinstance(value, dict):
        return {key: _interpolate_all(item, env) for key, item in value.items()}
    return value


def seconds(duration: str | int | float) -> float:
    """A Compose duration (`30s`, `1m30s`, `500ms`) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    match = _DURATION.match(duration.strip())
    if not match or not duration.strip():
        raise ComposeError(f"not a duration: {duration!r}")
    parts = {key: float(value) for key, value in match.groupdict().items() if value}
    return parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0) + parts.get("ms", 0) / 1000


def _strings(value: Any) -> list[str]:
    """A Compose string-or-list value as a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def _pair(item: str) -> tuple[str, str]:
    """`KEY=VALUE` of a list-form environment; a bare `KEY` takes its value from this environment."""
    key, sep, value = item.partition("=")
    return (key, value) if sep else (key, os.environ.get(key, ""))


@dataclass
class Service:
    """One service of compose.yaml, checked and with its variables filled in."""

    name: str
    image: str
    command: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)
    depends_on: dict[str, str] = field(default_factory=dict)
    restart: str = "no"
    replicas: int = 1
    healthcheck: dict[str, Any] | None = None
    read_only: bool = False
    tmpfs: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    stop_grace_s: float = 10.0

    @classmethod
    def parse(cls, name: str, spec: Mapping[str, Any], volumes: set[str]) -> Service:
        where = f"service {name}"
        unknown = {key for key in spec if not key.startswith("x-")} - SERVICE_KEYS
        if unknown:
            raise ComposeError(f"{where}: {', '.join(sorted(unknown))} not supported by {Path(__file__).name}")
        if "image" not in spec:
            raise ComposeError(f"{where}: needs an image (`make image` builds them)")
        command = spec.get("command")
        environment = spec.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(_pair(str(item)) for item in environment)
        if any("\n" in str(value) for value in environment.values()):
            raise ComposeError(f"{where}: an environment value spans lines")
        for mount in spec.get("volumes") or []:
            source = str(mount).split(":", 1)[0]
            if not source.startswith(("/", ".")) and source not in volumes:
                raise ComposeError(f"{where}: volume {source!r} is not declared under the top-level volumes")
        depends = spec.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {dep: {"condition": "service_started"} for dep in depends}
        conditions = {dep: str((how or {}).get("condition", "service_started")) for dep, how in depends.items()}
        for dep, condition in conditions.items():
            if condition not in CONDITIONS:
                raise ComposeError(f"{where}: depends_on {dep}: unknown condition {condition!r}")
        restart = str(spec.get("restart", "no"))
        if restart not in RESTART_POLICIES:
            raise ComposeError(f"{where}: restart {restart!r} is not one of {sorted(RESTART_POLICIES)}")
        deploy = spec.get("deploy") or {}
        if set(deploy) - {"replicas"}:
            raise ComposeError(f"{where}: deploy supports only replicas here")
        healthcheck = spec.get("healthcheck")
        if healthcheck is not None and set(healthcheck) - HEALTHCHECK_KEYS:
            raise ComposeError(f"{where}: healthcheck: {', '.join(sorted(set(healthcheck) - HEALTHCHECK_KEYS))}?")
        if healthcheck is not None and healthcheck.get("disable"):
            healthcheck = None
        return cls(
            name=name,
            image=str(spec["image"]),
            command=shlex.split(command) if isinstance(command, str) else _strings(command) if command else None,
            environment={str(key): "" if value is None else str(value) for key, value in environment.items()},
            volumes=_strings(spec.get("volumes")),
            ports=_strings(spec.get("ports")),
            depends_on=conditions,
            restart=restart,
            replicas=int(deploy.get("replicas", 1)),
            healthcheck=healthcheck,
            read_only=bool(spec.get("read_only", False)),
            tmpfs=_strings(spec.get("tmpfs")),
            cap_drop=_strings(spec.get("cap_drop")),
            security_opt=_strings(spec.get("security_opt")),
            stop_grace_s=seconds(spec.get("stop_grace_period", "10s")),
        )


@dataclass
class ComposeFile:
    """compose.yaml's services in start order (every one after what it depends on) and its volumes."""

    services: list[Service]
    volumes: list[str]

    @classmethod
    def load(cls, path: Path, env: Mapping[str, str]) -> ComposeFile:
        raw = yaml.safe_load(path.read_text())
        if not isinstance(raw, dict) or not isinstance(raw.get("services"), dict):
            raise ComposeError(f"{path}: no services")
        unknown = {key for key in raw if not key.startswith("x-")} - TOP_KEYS
        if unknown:
            raise ComposeError(f"{path}: {', '.join(sorted(unknown))} not supported by {Path(__file__).name}")
        data = _interpolate_all({key: value for key, value in raw.items() if not key.startswith("x-")}, env)
        volumes = sorted(data.get("volumes") or {})
        for volume, spec in (data.get("volumes") or {}).items():
            if spec:
                raise ComposeError(f"volume {volume}: options are not supported here")
        parsed = {name: Service.parse(name, spec or {}, set(volumes)) for name, spec in data["services"].items()}
        return cls(services=_start_order(parsed), volumes=volumes)

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise ComposeError(f"no service {name!r}")


def _start_order(services: Mapping[str, Service]) -> list[Service]:
    ordered: list[Service] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name not in services:
            raise ComposeError(f"depends_on names an unknown service {name!r}")
        if any(s.name == name for s in ordered):
            return
        if name in visiting:
            raise ComposeError(f"depends_on makes a cycle through {name!r}")
        visiting.add(name)
        for dep in services[name].depends_on:
            visit(dep)
        ordered.append(services[name])

    for name in services:
        visit(name)
    return ordered


def podman_env() -> dict[str, str]:
    """The environment for podman: the project's containers.conf unless one is set already."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run podman; on failure raise with what it said."""
    try:
        result = subprocess.run(
            ["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise ComposeError(f"podman {shlex.join(args)}: no answer within {timeout:g} s") from None
    if check and result.returncode != 0:
        raise ComposeError(f"podman {shlex.join(args)}: exit {result.returncode}: {result.stderr.strip()}")
    return result


def say(message: str) -> None:
    print(f"compose: {message}", file=sys.stderr, flush=True)


class Deployment:
    """compose.yaml's services as podman containers of one project (names `PROJECT-SERVICE-N`)."""

    def __init__(self, compose: ComposeFile, project: str) -> None:
        if not re.match(r"^[a-z0-9][a-z0-9_-]*$", project):
            raise ComposeError(f"project name {project!r}: lowercase letters, digits, '-' and '_'")
        self.compose = compose
        self.project = project
        self.network = f"{project}_default"

    def containers(self, service: Service) -> list[str]:
        return [f"{self.project}-{service.name}-{n}" for n in range(1, service.replicas + 1)]

    def volume(self, name: str) -> str:
        return f"{self.project}_{name}"

    def up(self, timeout_s: float = 180) -> None:
        """Create the network and volumes, then start every service once what it depends on is ready."""
        labels = ["--label", f"{LABEL_PROJECT}={self.project}"]
        if podman("network", "exists", self.network, check=False).returncode != 0:
            podman("network", "create", *labels, self.network)
        for volume in self.compose.volumes:
            if podman("volume", "exists", self.volume(volume), check=False).returncode != 0:
                podman("volume", "create", *labels, self.volume(volume))
        deadline = time.monotonic() + timeout_s
        with tempfile.TemporaryDirectory(prefix="compose-env-") as scratch:
            for service in self.compose.services:
                for dep, condition in service.depends_on.items():
                    self.wait_for(self.compose.service(dep), condition, deadline)
                # The environment goes in a file (mode 0600), never on a command line: it may hold passwords.
                env_file = Path(scratch) / f"{service.name}.env"
                env_file.touch(mode=0o600)
                env_file.write_text("".join(f"{key}={value}\n" for key, value in service.environment.items()))
                for number, name in enumerate(self.containers(service), start=1):
                    status = self.state(name).get("Status")
                    if status == "running":
                        continue
                    if status != "missing":
                        podman("rm", "--force", name)
                    args = ["--env-file", str(env_file), *self.run_args(service, name, number)]
                    started = podman("run", "--detach", *args, check=False, timeout=60)
                    if started.returncode != 0:
                        raise ComposeError(f"podman run {name} ({service.image}): {started.stderr.strip()}")
                say(f"{service.name}: {len(self.containers(service))} container(s) up")

    def run_args(self, service: Service, name: str, number: int) -> list[str]:
        args = [
            "--name",
            name,
            "--label",
            f"{LABEL_PROJECT}={self.project}",
            "--label",
            f"{LABEL_SERVICE}={service.name}",
            "--label",
            f"com.docker.compose.container-number={number}",
            "--network",
            self.network,
            "--network-alias",
            service.name,
            "--stop-timeout",
            str(round(service.stop_grace_s)),
            "--pull=never",
        ]
        if service.restart != "no":
            args += ["--restart", service.restart]
        for mount in service.volumes:
            source, _, rest = mount.partition(":")
            args += ["--volume", f"{source if source.startswith(('/', '.')) else self.volume(source)}:{rest}"]
        for port in service.ports:
            args += ["--publish", port]
        if service.read_only:
            args.append("--read-only")
        for path in service.tmpfs:
            args += ["--tmpfs", path]
        for cap in service.cap_drop:
            args += ["--cap-drop", cap]
        for option in service.security_opt:
            args += ["--security-opt", option]
        args += self.health_args(service)
        args.append(service.image)
        if service.command is not None:
            args += service.command
        return args

    @staticmethod
    def health_args(service: Service) -> list[str]:
        check = service.healthcheck
        if not check or not check.get("test"):
            return []
        test = check["test"]
        if isinstance(test, str):
            command = test
        elif test[0] == "CMD":
            command = json.dumps(test[1:])
        elif test[0] == "CMD-SHELL":
            command = str(test[1])
        else:
            return ["--no-healthcheck"]
        args = ["--health-cmd", command]
        for key, flag in (("interval", "--health-interval"), ("timeout", "--health-timeout")):
            if key in check:
                args += [flag, f"{seconds(check[key]):g}s"]
        if "start_period" in check:
            args += ["--health-start-period", f"{seconds(check['start_period']):g}s"]
        if "retries" in check:
            args += ["--health-retries", str(check["retries"])]
        return args

    def wait_for(self, service: Service, condition: str, deadline: float) -> None:
        """Block until every container of `service` meets `condition`; raise if one cannot."""
        for name in self.containers(service):
            if condition == "service_completed_successfully":
                left = max(1.0, deadline - time.monotonic())
                waited = podman("wait", name, timeout=left)
                code = waited.stdout.strip()
                if code != "0":
                    raise ComposeError(f"{name} exited with code {code}; it must complete successfully")
                continue
            if condition == "service_healthy" and not service.healthcheck:
                raise ComposeError(f"service {service.name} has no health check to be healthy by")
            interval = seconds(service.healthcheck.get("interval", "2s")) if service.healthcheck else 0.5
            while True:
                state = self.state(name)
                if state.get("Status") != "running":
                    raise ComposeError(f"{name} is {state.get('Status')} (exit code {state.get('ExitCode')})")
                if condition == "service_started":
                    break
                # Without systemd podman schedules no health checks: run the check now.
                if podman("healthcheck", "run", name, check=False).returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise ComposeError(f"{name} did not become healthy in time")
                time.sleep(min(interval, 1.0))

    def state(self, name: str) -> dict[str, Any]:
        found = podman("container", "inspect", "--format", "{{json .State}}", name, check=False)
        if found.returncode != 0:
            return {"Status": "missing"}
        state: dict[str, Any] = json.loads(found.stdout)
        return state

    def project_containers(self) -> list[str]:
        """Every container of this project, also those of a start that failed half-way."""
        listed = podman(
            "ps", "--all", "--filter", f"label={LABEL_PROJECT}={self.project}", "--format", "{{.Names}}", check=False
        )
        return listed.stdout.split()

    def ps(self) -> Iterator[tuple[str, str, str]]:
        """(container, status, exit code) of each container of the project."""
        for name in sorted(self.project_containers()):
            state = self.state(name)
            yield name, str(state.get("Status")), str(state.get("ExitCode"))

    def logs(self, name: str, tail: int = 60) -> str:
        result = podman("logs", "--tail", str(tail), name, check=False)
        return (result.stdout + result.stderr).rstrip()

    def published_port(self, service: str, container_port: int) -> int:
        """The host port that `container_port` of the service's first container is published on."""
        name = self.containers(self.compose.service(service))[0]
        out = podman("port", name, f"{container_port}/tcp").stdout.strip().splitlines()
        if not out:
            raise ComposeError(f"{name}: port {container_port} is not published")
        return int(out[0].rsplit(":", 1)[1])

    def down(self, volumes: bool = False) -> None:
        """Stop and remove the project's containers (newest service first), its network and, if asked, volumes."""
        names = self.project_containers()
        order = {name: i for i, name in enumerate(n for s in self.compose.services for n in self.containers(s))}
        names.sort(key=lambda name: order.get(name, len(order)), reverse=True)
        if names:
            grace = max((s.stop_grace_s for s in self.compose.services), default=10.0)
            podman("stop", *names, check=False, timeout=grace + 30)
            podman("rm", "--force", "--volumes", *names, check=False)
        if podman("network", "exists", self.network, check=False).returncode == 0:
            podman("network", "rm", "--force", self.network, check=False)
        if volumes:
            listed = podman("volume", "ls", "--filter", f"label={LABEL_PROJECT}={self.project}", "-q", check=False)
            for volume in listed.stdout.split():
                podman("volume", "rm", "--force", volume, check=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-f", "--file", type=Path, default=ROOT / "compose.yaml")
    parser.add_argument("-p", "--project-name", default=os.environ.get("COMPOSE_PROJECT_NAME", "artdag"))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start everything (detached) and return when it has started")
    down = commands.add_parser("down", help="stop and remove the containers and the network")
    down.add_argument("-v", "--volumes", action="store_true", help="remove the named volumes too")
    commands.add_parser("ps", help="the project's containers")
    args = parser.parse_args(argv)
    try:
        deployment = Deployment(ComposeFile.load(args.file, os.environ), args.project_name)
        if args.command == "up":
            deployment.up()
        elif args.command == "down":
            deployment.down(volumes=args.volumes)
        else:
            for name, status, code in deployment.ps():
                print(f"{name:<40} {status:<10} {code}")
    except ComposeError as exc:
        print(f"compose: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
