"""Render the Helm chart, generate the Kustomize base from it, and check both offline.

Runs in the tools virtualenv (`make k8s-tools`: the Helm SDK, kubernetes-validate,
checkov, hadolint), not in the project's: nothing here imports artdag.

    python deploy/k8s/k8stool.py manifests [--check]   # write (or compare) deploy/k8s/base
    python deploy/k8s/k8stool.py check                 # schema + security checks; non-zero on findings
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy/k8s/helm/artdag"
BASE = ROOT / "deploy/k8s/base"
PRODUCTION = CHART / "values-production.yaml"
KUBE_VERSION = "1.30.0"
RELEASE = "artdag"
NAMESPACE = "artdag"

# The Kustomize base: the chart's defaults, less what only Helm can do. NATS comes from the
# cluster (the upstream chart or manifests of its own) at the address below; the bus logins from
# a Secret the operator makes (`artdag bus-config --secret`), never random passwords in git.
BASE_VALUES: dict[str, Any] = {
    "nats": {"enabled": False},
    "natsUrl": "nats://nats:4222",
    "bus": {"existingSecret": "artdag-bus"},
}

# Custom resources: no schema ships with kubernetes-validate; they are linted by checkov only.
CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("monitoring.coreos.com/v1", "PodMonitor")}

HEADER = "# Generated from deploy/k8s/helm/artdag by `make k8s-manifests`: edit the chart, not this file.\n"


def load_values(*files: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Values files merged left to right (as `helm -f a -f b`), then `extra` on top."""
    merged: dict[str, Any] = {}
    for path in files:
        merged = _merge(merged, yaml.safe_load(path.read_text()) or {})
    return _merge(merged, extra or {})


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The chart's resources for these values (hooks included), after checking them against values.schema.json."""
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values)
        files = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[dict[str, Any]] = []
    for name in sorted(files):
        if not name.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        docs.extend(doc for doc in yaml.safe_load_all(files[name]) if doc)
    return docs


def manifest_files(docs: list[dict[str, Any]]) -> dict[str, str]:
    """One file per resource (`<kind>-<name>.yaml`) and the kustomization that lists them."""
    files: dict[str, str] = {}
    for doc in docs:
        meta = doc["metadata"]
        # Helm's hook annotations mean nothing to kubectl; the migrations Job runs once per apply.
        annotations = {k: v for k, v in meta.get("annotations", {}).items() if not k.startswith("helm.sh/hook")}
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
        name = f"{doc['kind'].lower()}-{meta['name']}.yaml"
        files[name] = HEADER + yaml.safe_dump(doc, sort_keys=False, width=120)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": sorted(files),
    }
    files["kustomization.yaml"] = HEADER + yaml.safe_dump(kustomization, sort_keys=False)
    return files


def cmd_manifests(check: bool) -> int:
    docs = render(load_values(CHART / "values.yaml", extra=BASE_VALUES))
    wanted = manifest_files(docs)
    if check:
        have = {p.name: p.read_text() for p in BASE.glob("*.yaml")} if BASE.is_dir() else {}
        stale = sorted(n for n in wanted.keys() | have.keys() if wanted.get(n) != have.get(n))
        if stale:
            print(f"deploy/k8s/base is not what the chart renders ({', '.join(stale)}): run `make k8s-manifests`")
            return 1
        print(f"deploy/k8s/base is current ({len(wanted)} files)")
        return 0
    if BASE.is_dir():
        shutil.rmtree(BASE)
    BASE.mkdir(parents=True)
    for name, text in wanted.items():
        (BASE / name).write_text(text)
    print(f"wrote {len(wanted)} files to {BASE.relative_to(ROOT)}")
    return 0


def validate_schemas(label: str, docs: list[dict[str, Any]]) -> list[str]:
    """Each resource against the Kubernetes JSON schema of KUBE_VERSION (strict: unknown fields fail)."""
    problems = []
    for doc in docs:
        where = f"{label}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if (doc.get("apiVersion"), doc.get("kind")) in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(f"{where}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{where}: no schema ({exc})")
    return problems


def checkov(directory: Path) -> list[str]:
    """checkov's Kubernetes checks over the rendered files; suppressions live in the chart, with reasons."""
    binary = Path(sys.executable).parent / "checkov"
    command = [str(binary), "-d", str(directory), "--framework", "kubernetes", "--output", "json"]
    command += ["--quiet", "--skip-download", "--compact"]  # --skip-download: no network
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(binary.parent) + ":/usr/bin:/bin", "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"},
    )
    if not result.stdout.strip():
        return [f"checkov gave no report (exit {result.returncode}): {result.stderr[-2000:]}"]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    problems = []
    summary = {"passed": 0, "failed": 0, "skipped": 0}
    for one in reports:
        for key in summary:
            summary[key] += int(one.get("summary", {}).get(key, 0))
        for failed in one.get("results", {}).get("failed_checks", []):
            problems.append(
                f"checkov {failed['check_id']} {failed['check_name']}: "
                f"{Path(failed['file_path']).name} {failed['resource']}"
            )
    passed, failed, skipped = summary["passed"], summary["failed"], summary["skipped"]
    print(f"checkov: {passed} passed, {failed} failed, {skipped} skipped (with reasons)")
    if summary["passed"] == 0:
        problems.append("checkov ran no check")
    return problems


def hadolint() -> list[str]:
    """The image's Dockerfile and those of the local images compose.yaml runs (deploy/container)."""
    binary = Path(sys.executable).parent / "hadolint"
    files = [ROOT / "Dockerfile", *sorted((ROOT / "deploy/container").glob("Dockerfile.*"))]
    result = subprocess.run([str(binary), *map(str, files)], capture_output=True, text=True, check=False)
    return [f"hadolint: {line}" for line in result.stdout.splitlines() if line.strip()] + (
        [f"hadolint failed: {result.stderr}"] if result.returncode and not result.stdout.strip() else []
    )


def helm_lint(values: dict[str, Any], label: str) -> list[str]:
    """`helm lint --strict`: warnings and errors are findings (Helm's severities: 1 info, 2 warning, 4 error)."""
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, with_subcharts=False, quiet=True)
    problems = []
    for message in report.get("messages") or []:
        text = str(message.get("error", ""))
        # The NATS dependency is not vendored (see Chart.yaml): its absence is expected offline.
        if int(message.get("severity", 0)) < 2 or "missing these dependencies: nats" in text:
            continue
        problems.append(f"helm lint ({label}): {message.get('path')}: {text}")
    return problems


# Values the schema must refuse: proof that values.schema.json is in force, not decoration.
BAD_VALUES: dict[str, dict[str, Any]] = {
    "a per-machine store": {"store": {"kind": "local"}},
    "a MySQL database": {"database": {"url": "mysql://db/artdag"}},
    "a typo in a service's keys": {"services": {"executor": {"replica": 3}}},
    "privilege escalation": {"securityContext": {"allowPrivilegeEscalation": True}},
    "S3 without a bucket": {"store": {"kind": "s3", "s3": {"bucket": ""}}},
    "an L2 server that is no URL": {"auth": {"l2Server": "l2.example.com"}},
}


def schema_refusals() -> list[str]:
    problems = []
    for label, bad in BAD_VALUES.items():
        try:
            with helm.Chart.load(str(CHART)) as chart:
                chart.validate_schema(load_values(CHART / "values.yaml", extra=bad))
        except helm.HelmError:
            continue
        problems.append(f"values.schema.json accepts {label}")
    return problems


def unexplained_skips(docs: list[dict[str, Any]], label: str) -> list[str]:
    """A checkov finding may be skipped only with a reason written next to it (CKV_X=why)."""
    problems = []
    for doc in docs:
        for key, value in (doc.get("metadata", {}).get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = str(value).partition("=")
                if len(reason.strip()) < 15:
                    problems.append(f"{label}: {doc['kind']}/{doc['metadata']['name']} skips {check} without a reason")
    return problems


def cmd_check() -> int:
    started = time.monotonic()
    sets = {
        "default values": load_values(CHART / "values.yaml"),
        "production values": load_values(CHART / "values.yaml", PRODUCTION),
        # Every optional part switched on, so that each template is checked at least once.
        "all features": load_values(
            CHART / "values.yaml",
            PRODUCTION,
            extra={
                "autoscaling": {"keda": {"enabled": False}},
                "existingSecret": "",
                "database": {"url": "", "dev": {"enabled": True}},
            },
        ),
    }
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="artdag-k8s-") as tmp:
        out = Path(tmp)
        for label, values in sets.items():
            docs = render(values)
            kinds = sorted({d["kind"] for d in docs})
            print(f"{label}: {len(docs)} resources ({', '.join(kinds)})")
            problems += validate_schemas(label, docs)
            problems += unexplained_skips(docs, label)
            problems += helm_lint(values, label)
            target = out / label.replace(" ", "-")
            target.mkdir()
            (target / "all.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
        base_docs = [
            doc
            for path in sorted(BASE.glob("*.yaml"))
            if path.name != "kustomization.yaml"
            for doc in yaml.safe_load_all(path.read_text())
            if doc
        ]
        print(f"manifests: {len(base_docs)} resources in {BASE.relative_to(ROOT)}")
        problems += validate_schemas("manifests", base_docs)
        shutil.copytree(BASE, out / "manifests")
        (out / "manifests" / "kustomization.yaml").unlink()
        problems += checkov(out)
    problems += schema_refusals()
    problems += hadolint()
    if cmd_manifests(check=True):
        problems.append("deploy/k8s/base is stale")
    print(
        "not checked offline: the upstream NATS subchart (not vendored; `helm dependency build` fetches it) "
        "and the KEDA ScaledObject and PodMonitor schemas (custom resources; checkov lints them)"
    )
    for problem in problems:
        print("FAIL", problem)
    print(f"k8s-check: {len(problems)} finding(s) in {time.monotonic() - started:.1f} s")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    manifests = commands.add_parser("manifests", help="write deploy/k8s/base from the chart")
    manifests.add_argument("--check", action="store_true", help="only say whether it is current")
    commands.add_parser("check", help="validate chart and manifests offline")
    args = parser.parse_args()
    if args.command == "manifests":
        return cmd_manifests(args.check)
    return cmd_check()


if __name__ == "__main__":
    raise SystemExit(main())
