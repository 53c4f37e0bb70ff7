"""What a finished run used and made: content references and the provenance record (plain functions)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from typing import Any

from artdag_common import __version__
from artdag_common.keys import L1Keys, sign_record
from artdag_common.schemas import (
    InfrastructureRef,
    Plan,
    PlanStep,
    ProvenanceEffect,
    ProvenanceInput,
    ProvenanceRecord,
    ProvenanceSignature,
    ProvenanceStep,
    RunState,
)
from services.cache.service import INPUT, INTERMEDIATE, OUTPUT


def run_refs(state: RunState) -> list[tuple[str, str]]:
    """`(cid, role)` for the run's inputs, its output and every step output in between."""
    refs = [(cid, INPUT) for cid in state.inputs.values()]
    if state.output_cid:
        refs.append((state.output_cid, OUTPUT))
    outputs = {state.output_cid, *state.inputs.values()}
    for step in state.steps.values():
        if step.output_cid and step.output_cid not in outputs:
            refs.append((step.output_cid, INTERMEDIATE))
    return refs


def logical_steps(plan: Plan) -> list[tuple[PlanStep, str, str, dict[str, Any]]]:
    """(rendering step, node name, node type, node config) for every recipe node a plan renders.

    A fused step (CHAIN, CUTS) stands for the nodes it covers; the chunks of one render
    and their JOIN stand for it once.
    """
    nodes: list[tuple[PlanStep, str, str, dict[str, Any]]] = []
    seen: set[str] = set()
    for step in plan.steps:
        if step.node_type == "SOURCE":
            continue
        if step.node_type == "CHAIN":
            stages = list(step.config.get("stages", []))
        elif step.node_type == "CUTS":
            stages = [stage for piece in step.config.get("pieces", []) for stage in piece.get("stages", [])]
        else:
            stages = [{"type": step.node_type, "config": step.config}]
        names = step.covers if step.covers and len(step.covers) == len(stages) else [step.name] * len(stages)
        for name, stage in zip(names, stages, strict=True):
            if name in seen:
                continue
            seen.add(name)
            nodes.append((step, name, str(stage.get("type")), dict(stage.get("config") or {})))
    return nodes


def effects_of(plan: Plan) -> list[ProvenanceEffect]:
    """The effects a plan applies, once each (a chunked effect is one effect), in plan order."""
    seen: list[ProvenanceEffect] = []
    for step, name, node_type, config in logical_steps(plan):
        if node_type == "EFFECT":
            effect = ProvenanceEffect(name=str(config.get("effect", name)), version=step.op_version)
            if effect not in seen:
                seen.append(effect)
    return seen


def infrastructure_documents(hostname: str) -> dict[str, tuple[str, bytes]]:
    """`software` and `hardware`: each one's `infra:` name and canonical JSON description (the same on
    the same machine and version, so the same CID every time)."""
    software = {"type": "software", "name": "artdag", "version": __version__}
    hardware = {
        "type": "hardware",
        "hostname": hostname,
        "machine": platform.machine(),
        "system": platform.system(),
        "cpus": os.cpu_count() or 1,
    }
    return {
        "software": ("infra:artdag", _canonical(software)),
        "hardware": (f"infra:{hostname}", _canonical(hardware)),
    }


def _canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def provenance_record(
    state: RunState,
    plan: Plan,
    *,
    output_name: str | None,
    rendered_by: str,
    infrastructure: dict[str, InfrastructureRef],
) -> ProvenanceRecord:
    """The record of how `state`'s output was made; the same run always gives the same record."""
    if not state.output_cid:
        raise ValueError(f"run {state.run_id} has no output")
    rendered_at = dt.datetime.fromtimestamp(state.updated_at, tz=dt.UTC).isoformat().replace("+00:00", "Z")
    return ProvenanceRecord(
        run_id=state.run_id,
        rendered_at=rendered_at,
        rendered_by=rendered_by,
        output=ProvenanceInput(name=output_name or f"{state.recipe_name} output", cid=state.output_cid),
        inputs=[ProvenanceInput(name=name, cid=cid) for name, cid in sorted(state.inputs.items())],
        effects=effects_of(plan),
        recipe_cid=plan.recipe_id,
        plan_id=state.plan_id or plan.plan_id,
        plan_cid=state.plan_cid,
        infrastructure=infrastructure,
        steps=[
            ProvenanceStep(name=name, node_type=node_type, step_id=step.step_id)
            for step, name, node_type, _ in logical_steps(plan)
            if node_type not in ("JOIN",)
        ],
    )


def provenance_json(record: ProvenanceRecord) -> bytes:
    """Canonical JSON (sorted keys, no spaces): the same record always has the same cid."""
    document = record.model_dump(mode="json", exclude={"signature"} if record.signature is None else None)
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def sign_provenance(record: ProvenanceRecord, keys: L1Keys) -> ProvenanceRecord:
    """The record with the L1's Ed25519 signature over its canonical JSON (without the signature)."""
    unsigned = record.model_copy(update={"signature": None})
    signature = sign_record(unsigned.model_dump(mode="json"), keys)
    return unsigned.model_copy(update={"signature": ProvenanceSignature.model_validate(signature)})
