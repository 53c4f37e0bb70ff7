"""Same step ⇒ same bytes, in any process: every primitive, effect and effect alias, rendered twice apart."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from artdag_common.cid import cid_of_file
from artdag_effects import available_effects
from artdag_effects.registry import available_aliases, resolve_alias
from services.executor.operations import run_operation
from tests.samples import SAMPLE_STEPS, make_input

SEED = int("5eed" * 4, 16)


def _render(node_type: str, config: dict[str, Any], inputs: list[str], output: str) -> str:
    labels = [f"#{i}" for i in range(len(inputs))]
    run_operation(node_type, config, inputs, output, labels, seed=SEED)
    return cid_of_file(output)


def _cases() -> list[tuple[str, str, dict[str, Any], list[str]]]:
    cases = list(SAMPLE_STEPS)
    cases += [(f"effect-{name}", "EFFECT", {"effect": name}, ["video"]) for name in sorted(available_effects())]
    # The original engine's names (pixelsort, flip, …) with their original parameters' defaults.
    cases += [(f"alias-{name}", "EFFECT", {"effect": name}, ["video"]) for name in sorted(available_aliases())]
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def pools() -> Iterator[tuple[ProcessPoolExecutor, ProcessPoolExecutor]]:
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn) as first, ProcessPoolExecutor(2, mp_context=spawn) as second:
        yield first, second


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    directory = tmp_path_factory.mktemp("inputs")
    return {kind: [make_input(kind, directory, i) for i in range(3)] for kind in ("video", "silent", "audio")}


def test_every_primitive_and_effect_is_covered() -> None:
    from artdag_common.operations import OPERATIONS

    covered = {node_type for _, node_type, _, _ in CASES}
    # JOIN only joins chunks: its determinism is tested with them (test_chunks.py).
    assert covered >= {name for name, op in OPERATIONS.items() if op.rendered} - {"JOIN"}
    assert len(available_effects()) >= 30
    assert {c["effect"] for _, _, c, _ in CASES if "effect" in c} >= set(available_effects()) | set(available_aliases())


@pytest.mark.parametrize(("label", "node_type", "config", "kinds"), CASES, ids=[c[0] for c in CASES])
def test_rendering_twice_in_separate_processes_gives_the_same_cid(
    label: str,
    node_type: str,
    config: dict[str, Any],
    kinds: list[str],
    pools: tuple[ProcessPoolExecutor, ProcessPoolExecutor],
    inputs: dict[str, list[Path]],
    tmp_path: Path,
) -> None:
    used: dict[str, int] = {}
    paths = []
    for kind in kinds:
        paths.append(str(inputs[kind][used.get(kind, 0)]))
        used[kind] = used.get(kind, 0) + 1
    first = pools[0].submit(_render, node_type, config, paths, str(tmp_path / "a.out"))
    second = pools[1].submit(_render, node_type, config, paths, str(tmp_path / "b.out"))
    assert first.result(timeout=120) == second.result(timeout=120), label


@pytest.mark.parametrize("alias", sorted(available_aliases()))
def test_an_alias_renders_the_same_bytes_as_its_canonical_effect(
    alias: str, pools: tuple[ProcessPoolExecutor, ProcessPoolExecutor], inputs: dict[str, list[Path]], tmp_path: Path
) -> None:
    effect, params, bindings = resolve_alias(alias, {}, {})
    canonical = {"effect": effect, "params": params, "bindings": bindings}
    video = [str(inputs["video"][0])]
    first = pools[0].submit(_render, "EFFECT", {"effect": alias}, video, str(tmp_path / "alias.out"))
    second = pools[1].submit(_render, "EFFECT", canonical, video, str(tmp_path / "canonical.out"))
    assert first.result(timeout=120) == second.result(timeout=120), alias
