"""compose.yaml agrees with the code, and deploy/container/compose.py reads it as a compose tool would.

No container runs here (that is `make container-test`): these catch a compose.yaml that names a
variable no service reads, forgets a service, or uses a key the podman runner would refuse.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from artdag_common import subjects
from tests.service_settings import service_variables

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("artdag_container_compose", ROOT / "deploy/container/compose.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


compose = _load_runner()


def _load(**env: str) -> Any:
    return compose.ComposeFile.load(COMPOSE_FILE, env)


def test_every_service_runs_from_the_image_after_the_migration() -> None:
    loaded = _load()
    by_name = {service.name: service for service in loaded.services}
    assert set(by_name) == {*subjects.SERVICES, "nats", "postgres", "migrate", "bus"}
    image = by_name["gateway"].image
    assert image == "localhost/artdag:latest"
    assert by_name["migrate"].command == ["migrate"] and by_name["migrate"].image == image
    assert by_name["migrate"].depends_on == {"postgres": "service_healthy"}
    assert by_name["postgres"].healthcheck is not None
    for name in subjects.SERVICES:
        service = by_name[name]
        assert service.image == image and service.command == [name]
        assert service.depends_on == {"nats": "service_started", "migrate": "service_completed_successfully"}
        assert service.volumes == ["data:/data"], "one ARTDAG_HOME (and content store) for every service"
    # The bus is never open: its logins are made first, in the home every service shares.
    assert by_name["bus"].command == [
        "artdag",
        "bus-config",
        "--home",
        "/data",
        "--server-config",
        "/data/bus/nats.conf",
    ]
    assert by_name["nats"].depends_on == {"bus": "service_completed_successfully"}
    assert "data:/artdag:ro" in by_name["nats"].volumes
    assert by_name["nats"].command is not None and by_name["nats"].command[:2] == ["--config", "/artdag/bus/nats.conf"]
    order = [service.name for service in loaded.services]
    assert order.index("migrate") < min(order.index(name) for name in subjects.SERVICES)


def test_only_the_gateway_is_published_on_loopback_by_default() -> None:
    published = {service.name: service.ports for service in _load().services if service.ports}
    assert published == {"gateway": ["127.0.0.1:8100:8100"]}
    moved = {s.name: s.ports for s in _load(ARTDAG_PUBLISH_PORT="18100").services if s.ports}
    assert moved == {"gateway": ["127.0.0.1:18100:8100"]}


def test_several_executors() -> None:
    assert _load().service("executor").replicas == 2
    assert _load(ARTDAG_EXECUTORS="4").service("executor").replicas == 4


def test_the_services_reach_postgres_and_nats_by_service_name() -> None:
    loaded = _load(ARTDAG_POSTGRES_PASSWORD="s3cret")
    postgres = loaded.service("postgres").environment
    env = loaded.service("planner").environment
    user, db = postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]
    assert env["ARTDAG_DATABASE_URL"] == f"postgresql://{user}:s3cret@postgres:5432/{db}"
    assert postgres["POSTGRES_PASSWORD"] == "s3cret"
    assert env["ARTDAG_NATS_URL"] == "nats://nats:4222"


def test_every_variable_it_sets_is_read_by_a_service() -> None:
    known = service_variables()
    for service in _load().services:
        if service.image == "localhost/artdag:latest":
            assert set(service.environment) <= known, service.name


def test_interpolation_follows_compose() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert compose.interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} $${SET}", env) == "x d  d ${SET}"
    with pytest.raises(compose.ComposeError, match="needed"):
        compose.interpolate("${UNSET:?needed}", env)
    assert compose.seconds("1m30s") == 90 and compose.seconds("500ms") == 0.5


def test_the_runner_refuses_what_it_would_ignore(tmp_path: Path) -> None:
    odd = tmp_path / "compose.yaml"
    odd.write_text("services:\n  web:\n    image: x\n    networks: [front]\n")
    with pytest.raises(compose.ComposeError, match="networks not supported"):
        compose.ComposeFile.load(odd, {})
    odd.write_text("services:\n  web:\n    image: x\n    depends_on: {db: {condition: service_healthy}}\n")
    with pytest.raises(compose.ComposeError, match="unknown service 'db'"):
        compose.ComposeFile.load(odd, {})
