"""Example recipes shipped with artdag: registered by the planner at start-up, used by the demo."""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).parent


def example_recipes() -> dict[str, str]:
    """File stem → YAML text of every shipped example."""
    return {path.stem: path.read_text() for path in sorted(EXAMPLES_DIR.glob("*.yaml"))}


def example_path(name: str) -> Path:
    """The path of one shipped example (e.g. "resize")."""
    path = EXAMPLES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no example recipe {name!r}")
    return path
