"""The AsyncAPI document covers every subject and RPC verb, and the committed copy is current."""

from __future__ import annotations

import json
import re
from pathlib import Path

from artdag_common import contracts, subjects
from artdag_dev import asyncapi

ROOT = Path(__file__).resolve().parents[2]
# `rpc.serve(runtime.nc, Cache.stat, …)` or `rpc.serve(runtime.nc, contracts.Cache.stat, …)`
SERVE = re.compile(r"rpc\.serve\(\s*runtime\.nc,\s*(?:contracts\.)?(\w+)\.(\w+),")


def test_the_committed_document_is_current() -> None:
    committed = (ROOT / "docs/asyncapi.json").read_text(encoding="utf-8")
    assert committed == asyncapi.render(), "docs/asyncapi.json is stale: run `make asyncapi`"


def test_every_verb_is_served_and_every_served_verb_is_a_contract() -> None:
    served = {
        (namespace.lower(), verb)
        for path in (ROOT / "services").rglob("*.py")
        for namespace, verb in SERVE.findall(path.read_text(encoding="utf-8"))
    }
    assert len(served) > 20
    declared = {(v.service, v.name) for v in contracts.ALL if v.name != "health"}
    assert served == declared


def test_a_verb_is_named_as_it_is_declared() -> None:
    """`Cache.stat` is the cache's `stat`: the attribute and the wire name never drift apart."""
    for namespace in (contracts.Planner, contracts.Analyzer, contracts.Auth, contracts.Cache):
        for attribute, verb in vars(namespace).items():
            if isinstance(verb, contracts.Verb):
                assert (verb.service, verb.name) == (namespace.__name__.lower(), attribute)
    assert len({v.subject for v in contracts.ALL}) == len(contracts.ALL)


def test_every_subject_has_a_channel_and_every_reference_resolves() -> None:
    doc = asyncapi.document()
    addresses = {channel["address"] for channel in doc["channels"].values()}
    for subject in (subjects.TASK_STEP, subjects.TASK_ANALYZE, subjects.CONTENT_STORED):
        assert subject in addresses
    assert "artdag.event.run.{run_id}.{kind}" in addresses and "artdag.event.step.{run_id}.{step_id}" in addresses
    assert {subjects.rpc(s, "health") for s in subjects.SERVICES} <= addresses

    text = json.dumps(doc)
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node = doc
        for part in ref.split("/"):
            assert part in node, f"dangling $ref #/{ref}"
            node = node[part]
    step_task = doc["components"]["schemas"]["StepTask"]
    assert {"run_id", "step", "input_cids"} <= set(step_task["required"])
