"""The table from node type to the synchronous media function that renders it.

Runs inside a worker process: arguments and errors must pickle.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from artdag_common.errors import InvalidMediaError, PermanentError
from services.executor.media import render_resize

OUTPUT_SUFFIX = ".mp4"


def _resize(config: dict[str, Any], inputs: list[Path], output: Path) -> None:
    render_resize(
        inputs[0],
        output,
        width=config["width"],
        height=config["height"],
        mode=config.get("mode", "fit"),
        background=config.get("background", "black"),
    )


RENDERERS: dict[str, Callable[[dict[str, Any], list[Path], Path], None]] = {
    "RESIZE": _resize,
}


def run_operation(
    node_type: str, config: dict[str, Any], input_paths: list[str], output_path: str, input_labels: list[str]
) -> None:
    """Render one step into `output_path`; media errors name the input they came from."""
    renderer = RENDERERS.get(node_type)
    if renderer is None:
        raise PermanentError(f"this executor cannot render {node_type} steps")
    try:
        renderer(config, [Path(p) for p in input_paths], Path(output_path))
    except InvalidMediaError as exc:
        label = input_labels[0] if len(input_labels) == 1 else ", ".join(input_labels)
        raise InvalidMediaError(f"input {label}: {exc.message}") from None
