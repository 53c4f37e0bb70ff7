import hashlib
import math
from typing import Any

import pytest

from artdag_common.errors import InvalidInputError
from artdag_common.ids import (
    analysis_id,
    canonical_json,
    check_run_id,
    check_step_id,
    new_run_id,
    source_step_id,
    step_id,
)

A = "a" * 64
B = "b" * 64


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": 1, "a": [1, 2, {"d": None, "c": True}]}) == b'{"a":[1,2,{"c":true,"d":null}],"b":1}'


def test_canonical_json_writes_utf8_and_shortest_numbers() -> None:
    assert canonical_json({"x": "é→", "f": 0.1, "g": 1.0, "h": 1e21}) == '{"f":0.1,"g":1,"h":1e+21,"x":"é→"}'.encode()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_canonical_json_refuses_non_finite_numbers(bad: float) -> None:
    with pytest.raises(InvalidInputError, match="not allowed"):
        canonical_json({"x": [bad]})


def test_canonical_json_refuses_unhashable_values() -> None:
    with pytest.raises(InvalidInputError) as info:
        canonical_json({"x": {"y": b"bytes"}})
    assert info.value.field == "x.y"
    with pytest.raises(InvalidInputError) as info:
        canonical_json({"a": 1, "x": [1, {"y": math.inf}]})
    assert info.value.field == "x[1].y"
    with pytest.raises(InvalidInputError) as info:
        canonical_json([{1: "key not a string"}])
    assert info.value.field == "[0]"


# Golden vectors: these ids are stored in caches; a change here invalidates every cache.
GOLDEN = [
    (
        ("RESIZE", {"width": 320, "height": 240, "mode": "fit"}, [A], "1"),
        "f6728637c9cc3d6e5309e2c76f3b670a05c8a38da6f1e0d50f62bb0aa4b5546d",
    ),
    (("SEQUENCE", {}, [A, B], "1"), "b354b201e6f922c8fa03ab416a0e145d3c37c3860a76d48e95e912e0d7372ff9"),
    (("SEQUENCE", {}, [B, A], "1"), "d25d5a37fd23f4ecb0d1e6acdb8246d71fead239916f685380dba23b52db135f"),
]


@pytest.mark.parametrize(("args", "expected"), GOLDEN)
def test_step_id_golden_vectors(args: tuple[Any, ...], expected: str) -> None:
    assert step_id(*args) == expected


def test_step_id_is_sha3_of_the_documented_canonical_form() -> None:
    # Spelled out by hand so that the encoding itself is pinned, not just its output.
    text = (
        '{"config":{"height":240,"mode":"fit","width":320},"inputs":["' + A + '"],'
        '"scheme":1,"type":"RESIZE","version":"1"}'
    )
    assert step_id("RESIZE", {"width": 320, "height": 240, "mode": "fit"}, [A], "1") == (
        hashlib.sha3_256(text.encode()).hexdigest()
    )


def test_step_id_depends_on_input_order() -> None:
    assert step_id("SEQUENCE", {}, [A, B], "1") != step_id("SEQUENCE", {}, [B, A], "1")


def test_step_id_depends_on_config_version_and_cluster_key() -> None:
    base = step_id("RESIZE", {"width": 320}, [A], "1")
    assert step_id("RESIZE", {"width": 322}, [A], "1") != base
    assert step_id("RESIZE", {"width": 320}, [A], "2") != base
    assert step_id("RESIZE", {"width": 320}, [A], "1", cluster_key="studio-a") != base
    assert step_id("RESIZE", {"width": 320}, [A], "1", cluster_key="studio-a") != step_id(
        "RESIZE", {"width": 320}, [A], "1", cluster_key="studio-b"
    )


def test_step_id_ignores_key_order_and_int_float_spelling() -> None:
    assert step_id("X", {"a": 1, "b": 2.0}, [], "1") == step_id("X", {"b": 2, "a": 1.0}, [], "1")


def test_source_step_id_is_the_content_not_the_name() -> None:
    cid = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    assert source_step_id(cid) == source_step_id(cid)
    assert source_step_id(cid) != source_step_id("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")


def test_analysis_id_covers_features_params_and_version() -> None:
    base = analysis_id("Qm1", ["beats", "energy"], {"hop": 512}, "1")
    assert analysis_id("Qm1", ["energy", "beats", "beats"], {"hop": 512}, "1") == base
    assert analysis_id("Qm1", ["beats"], {"hop": 512}, "1") != base
    assert analysis_id("Qm1", ["beats", "energy"], {"hop": 256}, "1") != base
    assert analysis_id("Qm1", ["beats", "energy"], {"hop": 512}, "2") != base


def test_run_and_step_id_validation() -> None:
    run_id = new_run_id()
    assert check_run_id(run_id) == run_id
    assert new_run_id() != run_id
    for bad in ["", "run-../../etc", "run-" + "g" * 32, run_id + "0"]:
        with pytest.raises(InvalidInputError):
            check_run_id(bad)
    assert check_step_id(A) == A
    with pytest.raises(InvalidInputError):
        check_step_id(A.upper())
