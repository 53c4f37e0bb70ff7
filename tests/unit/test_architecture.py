"""The layout rules: services import only artdag_common, never each other."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__main__.py").is_file())


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_all_six_services_exist() -> None:
    assert SERVICES == ["analyzer", "auth", "cache", "executor", "gateway", "planner"]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service: str) -> None:
    for path in (ROOT / "services" / service).rglob("*.py"):
        for module in imported_modules(path):
            if module.startswith("services."):
                assert module.split(".")[1] == service, f"{path.relative_to(ROOT)} imports {module}"


def test_no_service_and_no_run_time_library_imports_the_development_tools() -> None:
    """The test kit and the AsyncAPI generator (artdag_dev) stay out of what a deployment runs."""
    for root in ("services", "libs/artdag_common", "libs/artdag_effects"):
        for path in (ROOT / root).rglob("*.py"):
            for module in imported_modules(path):
                assert not module.startswith("artdag_dev"), f"{path.relative_to(ROOT)} imports {module}"


def test_the_shared_library_imports_no_service() -> None:
    for path in (ROOT / "libs" / "artdag_common").rglob("*.py"):
        for module in imported_modules(path):
            assert not module.startswith("services"), f"{path.relative_to(ROOT)} imports {module}"


def test_the_web_ui_imports_no_route_module() -> None:
    """What the UI and the REST routes share lives beside them (policy, submitting, effects), not in a route."""
    for path in (ROOT / "services" / "gateway" / "ui").rglob("*.py"):
        for module in imported_modules(path):
            assert not module.startswith("services.gateway.routes"), f"{path.relative_to(ROOT)} imports {module}"


def test_no_service_spells_its_own_subjects() -> None:
    for path in (ROOT / "services").rglob("*.py"):
        text = path.read_text()
        for kind in ("task", "event", "rpc"):
            assert f'"artdag.{kind}' not in text, f"{path.relative_to(ROOT)} spells an artdag.{kind} subject"
