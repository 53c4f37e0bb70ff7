"""Graph elements for the DAG view (Cytoscape.js), from a run's plan or from a recipe."""

from __future__ import annotations

import json
from typing import Any

from artdag_common.recipe import Recipe, RecipeStep
from artdag_common.schemas import Plan, RunState


def _label(name: str, node_type: str) -> str:
    shown = name if len(name) <= 22 else name[:21] + "…"
    return f"{shown}\n{node_type}"


def plan_elements(plan: Plan, state: RunState | None) -> dict[str, list[dict[str, Any]]]:
    """Nodes (one per step, with level and live status) and edges (input → step)."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for step in plan.steps:
        live = state.steps.get(step.step_id) if state is not None else None
        status = live.status.value if live is not None else ("input" if step.node_type == "SOURCE" else "pending")
        nodes.append(
            {
                "data": {
                    "id": step.step_id,
                    "label": _label(step.name, f"CHAIN of {len(step.covers)}" if step.covers else step.node_type),
                    "covers": step.covers,
                    "level": step.level,
                    "status": status,
                    "output": step.step_id == plan.output_step,
                }
            }
        )
        for index, source in enumerate(step.inputs):
            edges.append({"data": {"id": f"{source}>{step.step_id}#{index}", "source": source, "target": step.step_id}})
    return {"nodes": nodes, "edges": edges}


def recipe_elements(recipe: Recipe) -> dict[str, list[dict[str, Any]]]:
    """The recipe as written: its inputs and steps (before planning expands them)."""
    level: dict[str, int] = dict.fromkeys(recipe.inputs, 0)
    nodes: list[dict[str, Any]] = [
        {"data": {"id": f"input:{name}", "label": _label(name, spec.type.upper()), "level": 0, "status": "input"}}
        for name, spec in recipe.inputs.items()
    ]
    edges: list[dict[str, Any]] = []

    def deps(step: RecipeStep) -> tuple[str, ...]:
        reads = step.config.get("input") if step.type == "SOURCE" else None
        if not step.inputs and isinstance(reads, str) and reads in recipe.inputs:
            return (reads,)
        return step.inputs

    pending = list(recipe.steps)
    # Steps may be written in any order: place each once all its inputs are placed.
    while pending:
        progressed = False
        for step in list(pending):
            if all(i in level for i in deps(step)):
                level[step.id] = 1 + max((level[i] for i in deps(step)), default=-1)
                pending.remove(step)
                progressed = True
        if not progressed:  # a cycle the recipe parser would refuse; place the rest anyway
            for step in pending:
                level[step.id] = 1
            break
    for step in recipe.steps:
        nodes.append(
            {
                "data": {
                    "id": f"step:{step.id}",
                    "label": _label(step.id, step.type),
                    "level": level[step.id],
                    "status": "recipe",
                    "output": step.id == recipe.output,
                }
            }
        )
        reads = step.config.get("input") if step.type == "SOURCE" else None
        if isinstance(reads, str) and reads in recipe.inputs and not step.inputs:
            edges.append(
                {"data": {"id": f"{reads}>{step.id}#src", "source": f"input:{reads}", "target": f"step:{step.id}"}}
            )
        for index, source in enumerate(step.inputs):
            kind = "input" if source in recipe.inputs else "step"
            edges.append(
                {
                    "data": {
                        "id": f"{source}>{step.id}#{index}",
                        "source": f"{kind}:{source}",
                        "target": f"step:{step.id}",
                    }
                }
            )
    return {"nodes": nodes, "edges": edges}


def as_json(elements: dict[str, list[dict[str, Any]]]) -> str:
    """JSON safe to embed in a <script type="application/json"> element."""
    return json.dumps(elements, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e")
