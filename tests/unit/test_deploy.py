"""The deployment files agree with the code: services, consumers, settings, and the generated manifests."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from artdag_common import streams, subjects
from artdag_common.bus_access import USERS
from tests.service_settings import service_variables

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy/k8s/helm/artdag"
BASE = ROOT / "deploy/k8s/base"
TOOLS_PYTHON = ROOT / ".venv-tools/bin/python"


def test_the_chart_runs_every_service_and_no_other() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["services"]) == set(subjects.SERVICES)
    listed = re.findall(r'list ((?:"\w+" ?)+)', (CHART / "templates/deployments.yaml").read_text())
    assert set(re.findall(r'"(\w+)"', listed[0])) == set(subjects.SERVICES)
    entrypoint = (ROOT / "deploy/docker/entrypoint.sh").read_text()
    case = re.search(r"^\s*([a-z |]+)\)\n\s*# exec", entrypoint, re.MULTILINE)
    assert case is not None and {s.strip() for s in case[1].split("|")} == set(subjects.SERVICES)


def test_autoscaling_follows_the_declared_consumers() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for name, consumer in (("executor", streams.STEP_WORKERS), ("analyzer", streams.ANALYZE_WORKERS)):
        scaling = values["services"][name]["autoscaling"]
        assert (scaling["stream"], scaling["consumer"]) == (consumer.stream, consumer.durable)


def test_every_setting_the_deployment_sets_is_one_a_service_reads() -> None:
    known = service_variables() | {"OTEL_SERVICE_NAME"}  # the OpenTelemetry SDK's own
    configmap = yaml.safe_load((BASE / "configmap-artdag-config.yaml").read_text())
    production = yaml.safe_load((CHART / "values-production.yaml").read_text())
    deployment = yaml.safe_load((BASE / "deployment-artdag-executor.yaml").read_text())
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    used = set(configmap["data"]) | set(production["config"]) | {e["name"] for e in env}
    used |= set(production["services"]["executor"]["env"])
    assert used - known == set(), "the deployment sets variables no service reads"


@pytest.mark.skipif(not TOOLS_PYTHON.exists(), reason="no .venv-tools (make k8s-tools): the Helm SDK renders the chart")
def test_the_kustomize_base_is_what_the_chart_renders() -> None:
    result = subprocess.run(
        [str(TOOLS_PYTHON), str(ROOT / "deploy/k8s/k8stool.py"), "manifests", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _render(values_expression: str, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """The chart rendered by the Helm SDK (in .venv-tools) with the values `values_expression` makes:
    the documents of those `kinds`."""
    script = (
        "import json, yaml, k8stool\n"
        f"docs = k8stool.render({values_expression})\n"
        f"print(json.dumps([d for d in docs if d and d.get('kind') in {kinds!r}]))\n"
    )
    result = subprocess.run(
        [str(TOOLS_PYTHON), "-c", script],
        cwd=ROOT / "deploy/k8s",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    docs: list[dict[str, Any]] = json.loads(result.stdout)
    return docs


@pytest.mark.skipif(not TOOLS_PYTHON.exists(), reason="no .venv-tools (make k8s-tools): the Helm SDK renders the chart")
def test_the_production_values_replicate_every_stream_on_the_nats_cluster() -> None:
    rendered = _render("yaml.safe_load(open(k8stool.PRODUCTION))", ("ConfigMap",))
    configs = [doc["data"] for doc in rendered if "ARTDAG_NATS_URL" in doc["data"]]
    assert [c["ARTDAG_NATS_REPLICAS"] for c in configs] == ["3"], "a 3-server NATS cluster holds 3 replicas"
    base = yaml.safe_load((BASE / "configmap-artdag-config.yaml").read_text())
    assert base["data"]["ARTDAG_NATS_REPLICAS"] == "1", "the plain manifests run one NATS server"


def test_the_charts_nats_takes_the_logins_and_grants_bus_access_declares() -> None:
    """values.yaml's generated authorization is what `deploy/k8s/bus_values.py` writes from bus_access."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bus_values", ROOT / "deploy/k8s/bus_values.py")
    assert spec is not None and spec.loader is not None
    bus_values = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bus_values)
    text = (CHART / "values.yaml").read_text()
    assert bus_values.rendered(text) == text, "values.yaml is stale: run `make k8s-bus-values`"
    values = yaml.safe_load(text)
    users = values["nats"]["config"]["merge"]["authorization"]["users"]
    assert {u["user"] for u in users} == set(USERS)
    assert all(u["password"].startswith("<< $ARTDAG_BUS_") for u in users), "no password is written in the chart"


def test_every_service_connects_to_the_bus_as_itself() -> None:
    for service in subjects.SERVICES:
        deployment = yaml.safe_load((BASE / f"deployment-artdag-{service}.yaml").read_text())
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["ARTDAG_NATS_USER"]["value"] == service
        assert env["ARTDAG_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "artdag-bus", "key": service}


@pytest.mark.skipif(not TOOLS_PYTHON.exists(), reason="no .venv-tools (make k8s-tools): the Helm SDK renders the chart")
def test_with_the_bundled_nats_only_artdag_pods_reach_its_client_port() -> None:
    docs = _render("k8stool.load_values(k8stool.CHART / 'values.yaml')", ("NetworkPolicy", "Secret"))
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    nats_policy = [
        p for p in policies if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name") == "nats"
    ]
    assert len(nats_policy) == 1, "a NetworkPolicy covers the NATS pods"
    client_rule = next(r for r in nats_policy[0]["spec"]["ingress"] if r["ports"][0]["port"] == 4222)
    assert client_rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "artdag"
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    assert set(secrets["artdag-bus"]["data"]) == set(USERS), "the chart makes a password for every user"
