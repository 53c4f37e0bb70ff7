"""Recipe + input cids → a plan whose every step has a deterministic id."""

from __future__ import annotations

from collections.abc import Mapping

from artdag_common.cid import validate_cid
from artdag_common.errors import InvalidInputError
from artdag_common.ids import sha3_hex, source_step_id, step_id
from artdag_common.operations import OPERATIONS
from artdag_common.recipe import Recipe
from artdag_common.schemas import Plan, PlanStep


def bind_inputs(recipe: Recipe, inputs: Mapping[str, str]) -> dict[str, str]:
    """Check that every recipe input is bound to a well-formed cid, and nothing else is."""
    for name in inputs:
        if name not in recipe.inputs:
            known = ", ".join(sorted(recipe.inputs)) or "none"
            raise InvalidInputError(
                f"recipe {recipe.name!r} has no input {name!r} (its inputs: {known})", field=f"inputs.{name}"
            )
    bound: dict[str, str] = {}
    for name in recipe.inputs:
        if name not in inputs:
            raise InvalidInputError(f"input {name!r} is required by the recipe", field=f"inputs.{name}")
        try:
            bound[name] = validate_cid(inputs[name])
        except InvalidInputError as exc:
            raise InvalidInputError(exc.message, field=f"inputs.{name}") from None
    return bound


def build_plan(
    recipe: Recipe, input_cids: Mapping[str, str], *, cluster_key: str | None = None, max_steps: int = 20_000
) -> Plan:
    """Plan the recipe: steps in topological order, identical nodes merged into one step."""
    steps: dict[str, PlanStep] = {}
    ids_by_name: dict[str, str] = {}

    def add(step: PlanStep) -> str:
        if step.step_id not in steps:
            if len(steps) >= max_steps:
                raise InvalidInputError(f"the plan would exceed {max_steps} steps (MAX_PLAN_STEPS)", field="recipe")
            steps[step.step_id] = step
        return step.step_id

    def source(input_name: str) -> str:
        cid = input_cids[input_name]
        return add(
            PlanStep(
                step_id=source_step_id(cid, cluster_key),
                name=f"input:{input_name}",
                node_type="SOURCE",
                config={"cid": cid},
                inputs=[],
                op_version=OPERATIONS["SOURCE"].op_version,
                source_cid=cid,
            )
        )

    for recipe_step in recipe.steps:
        if recipe_step.type == "SOURCE":
            ids_by_name[recipe_step.id] = source(recipe_step.config["input"])
            continue
        op = OPERATIONS[recipe_step.type]
        input_ids = [ids_by_name[ref] if ref in ids_by_name else source(ref) for ref in recipe_step.inputs]
        sid = step_id(op.node_type, recipe_step.config, input_ids, op.op_version, cluster_key)
        ids_by_name[recipe_step.id] = add(
            PlanStep(
                step_id=sid,
                name=recipe_step.id,
                node_type=op.node_type,
                config=dict(recipe_step.config),
                inputs=input_ids,
                op_version=op.op_version,
            )
        )
    ordered = list(steps.values())
    output_step = ids_by_name[recipe.output]
    plan_id = sha3_hex({"recipe": recipe.recipe_id, "steps": [s.step_id for s in ordered], "output": output_step})
    return Plan(
        plan_id=plan_id,
        recipe_id=recipe.recipe_id,
        recipe_name=recipe.name,
        input_cids=dict(input_cids),
        steps=ordered,
        output_step=output_step,
    )
