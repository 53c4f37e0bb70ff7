"""Provenance records: how an output was made, signed by the L1 (stored as content)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from artdag_common.schemas.common import Message


class ProvenanceInput(BaseModel):
    name: str
    cid: str


class ProvenanceEffect(BaseModel):
    name: str
    version: str


class ProvenanceSignature(BaseModel):
    """An Ed25519 signature over a provenance record's canonical JSON (the record without `signature`)."""

    alg: Literal["ed25519"] = "ed25519"
    key_id: str = Field(description="the signing key's fingerprint: sha256 of its raw public key, hex")
    public_key: str = Field(description="the raw 32-byte public key, base64")
    value: str = Field(description="the 64-byte signature, base64")


class ProvenanceStep(BaseModel):
    """One node of the recipe as the run rendered it (a fused node names the step that rendered it)."""

    name: str
    node_type: str
    step_id: str = Field(description="the plan step that rendered it (a CHAIN or CUTS for fused nodes)")


class InfrastructureRef(BaseModel):
    """What made an output, as the original records name it: `infra:<name>` and the CID of a JSON
    document describing it (stored beside the record)."""

    name: str
    cid: str


class ProvenanceRecord(Message):
    """How an output was made (stored as JSON content, linked from the output's `provenance_cid`)."""

    run_id: str
    rendered_at: str = Field(description="ISO 8601, UTC")
    rendered_by: str
    output: ProvenanceInput
    inputs: list[ProvenanceInput]
    effects: list[ProvenanceEffect]
    recipe_cid: str
    plan_id: str | None
    plan_cid: str | None = None
    infrastructure: dict[str, InfrastructureRef] = Field(
        description="`software` and `hardware`: {name: 'infra:…', cid} of the documents that describe them"
    )
    steps: list[ProvenanceStep] = Field(
        default_factory=list, description="every node of the recipe the output was made with, in plan order"
    )
    signature: ProvenanceSignature | None = Field(
        default=None, description="the L1's Ed25519 signature over the record without this field"
    )
