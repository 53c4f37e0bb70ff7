"""Effects by registered name: what a recipe names by name, kept as written or resolved to its CID, and
the effect pages' pure parts (S-expression highlighting, preview parameters and recipe)."""

from __future__ import annotations

from typing import Any

import pytest

from artdag_common.cid import cid_of_bytes
from artdag_common.errors import InvalidInputError
from artdag_common.recipe import parse_recipe, user_effect_names
from artdag_effects.registry import builtin_names
from artdag_effects.user import register_user_effect
from services.gateway.effects import EffectParam
from services.gateway.ui.highlight import highlight_sexp
from services.gateway.ui.preview import SAMPLE_NAME, colour_hex, preview_params, preview_recipe
from services.planner.planning import build_plan

SOURCE = b"(define-effect glow :params ((amount :default 0.5 :range [0 1])) (mix frame (blur frame 4) amount))"
CID = cid_of_bytes(SOURCE)
CLIP = cid_of_bytes(b"a clip")


def recipe(effect: str, params: str = "{amount: 0.25}") -> str:
    return f"""
name: named
inputs: [clip]
steps:
  - {{id: fx, type: EFFECT, inputs: [clip], config: {{effect: {effect}, params: {params}}}}}
  - {{id: out, type: EFFECT, inputs: [fx], config: {{effect: invert}}}}
output: out
"""


@pytest.fixture(autouse=True)
def glow() -> None:
    register_user_effect(CID, SOURCE)


def test_a_resolved_name_gives_the_steps_and_plan_its_cid_gives() -> None:
    by_name = parse_recipe(recipe("my-glow"), effect_names={"my-glow": CID})
    by_cid = parse_recipe(recipe(CID))
    assert by_name.steps == by_cid.steps and by_name.steps[0].config["effect"] == CID
    # It is still the recipe as written (a stored recipe's runs name it), not the one naming the CID.
    assert by_name.recipe_id == parse_recipe(recipe("my-glow")).recipe_id != by_cid.recipe_id
    plan_by_name, plan_by_cid = build_plan(by_name, {"clip": CLIP}), build_plan(by_cid, {"clip": CLIP})
    assert plan_by_name.steps == plan_by_cid.steps and plan_by_name.output_step == plan_by_cid.output_step
    # The engine form and a MAP over a list name it the same way.
    engine = """
name: engine
dag:
  nodes:
    - {id: clip, type: SOURCE, config: {input: true}}
    - {id: out, type: EFFECT, inputs: [clip], config: {effect: my-glow, amount: 0.25}}
  output: out
"""
    assert user_effect_names(engine) == {"my-glow"}
    assert parse_recipe(engine, effect_names={"my-glow": CID}).steps[1].config == by_cid.steps[0].config
    mapped = """
name: mapped
inputs: {clips: {type: video, list: true}}
steps:
  - {id: all, type: SOURCE_LIST, config: {input: clips}}
  - {id: each, type: MAP, inputs: [all], config: {operation: EFFECT, config: {effect: my-glow}}}
output: each
"""
    assert user_effect_names(mapped) == {"my-glow"}
    assert parse_recipe(mapped, effect_names={"my-glow": CID}).steps[1].config["config"]["effect"] == CID


def test_a_stored_recipe_keeps_the_name_for_whoever_runs_it() -> None:
    kept = parse_recipe(recipe("my-glow", "{amount: 7}"))  # params are checked once the name is resolved
    assert kept.steps[0].config == {"effect": "my-glow", "params": {"amount": 7}, "bindings": {}}
    assert kept.recipe_id != parse_recipe(recipe(CID)).recipe_id
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(recipe("my-glow", "{amount: 7}"), effect_names={"my-glow": CID})
    assert info.value.field == "steps[0].config.params.amount" and "less than or equal to 1" in info.value.message
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(recipe("my-glow", "[1, 2]"))
    assert info.value.field == "steps[0].config.params"


def test_a_name_nobody_gave_names_the_step_the_field_and_a_close_builtin() -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(recipe("invrt", "{}"), effect_names={"my-glow": CID})
    assert info.value.field == "steps[0].config.effect"
    assert "step 'fx'" in info.value.message and "no effect named 'invrt'" in info.value.message
    assert "did you mean 'invert'" in info.value.message and "line 5" in info.value.message


def test_a_builtin_name_always_means_the_builtin() -> None:
    assert {"blur", "invert", "pixelsort"} <= builtin_names()
    steps = parse_recipe(recipe("blur", "{radius: 2}"), effect_names={"blur": CID}).steps
    assert steps[0].config["effect"] == "blur"
    assert user_effect_names(recipe("blur", "{radius: 2}")) == set()


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (recipe("invert", "{}"), set()),
        (recipe(CID), set()),
        (recipe("my-glow"), {"my-glow"}),
        (recipe('"my-glow"'), {"my-glow"}),
        ("steps:\n  - id: a\n    config:\n      effect:\n        my-glow\n", {"my-glow"}),
        ("steps:\n  - {id: a, config: {effect: 'two words'}}\n", set()),
        ("name: x\nsteps: [", set()),  # not YAML: parsing says so
        ("(recipe broken", set()),
    ],
)
def test_the_names_a_text_gives(text: str, names: set[str]) -> None:
    assert user_effect_names(text) == names


def test_effect_source_is_highlighted_escaped_and_marked() -> None:
    html = str(highlight_sexp('; note <b>\n(define-effect x\n  :params ((a :default 1))\n  (+ frame "<i>"))', {2}))
    assert '<span class="c">; note &lt;b&gt;</span>' in html
    assert '<span class="ln err" data-n="2"' in html and '<span class="k">define-effect</span>' in html
    assert '<span class="kw">:params</span>' in html and '<span class="n">1</span>' in html
    assert '<span class="s">&quot;&lt;i&gt;&quot;</span>' in html and "<i>" not in html


PARAMS = [
    EffectParam(name="color", type="color", default=[255, 0, 0]),
    EffectParam(name="steps", type="int", default=4, min=1, max=8),
    EffectParam(name="amount", type="float", default=0.5, min=0, max=1),
]


def test_preview_parameters_from_a_form() -> None:
    form = {"param.color": "#00FF80", "param.steps": "6", "param.amount": " "}
    assert preview_params(form, PARAMS) == {"color": [0, 255, 128], "steps": 6}
    assert colour_hex([0, 255, 128]) == "#00ff80" and colour_hex("x") == "#000000"
    for form, field in (({"param.color": "red"}, "params.color"), ({"param.amount": "lots"}, "params.amount")):
        with pytest.raises(InvalidInputError) as info:
            preview_params(form, PARAMS)
        assert info.value.field == field


@pytest.mark.parametrize("sample", [True, False])
def test_a_preview_is_a_segment_then_the_effect(sample: bool) -> None:
    params: dict[str, Any] = {"amount": 0.75}
    parsed = parse_recipe(preview_recipe(CID, params, sample=sample))
    assert [(s.type, s.inputs) for s in parsed.steps] == [("SEGMENT", ("clip",)), ("EFFECT", ("cut",))]
    assert parsed.steps[1].config["effect"] == CID and parsed.steps[1].config["params"] == params
    assert parsed.inputs["clip"].asset == (SAMPLE_NAME if sample else None)


def test_a_stored_map_over_a_named_effect_keeps_the_name_and_checks_the_rest() -> None:
    mapped = """
name: mapped
inputs: {clips: {type: video, list: true}}
steps:
  - {id: all, type: SOURCE_LIST, config: {input: clips}}
  - {id: each, type: MAP, inputs: [all], config: {operation: EFFECT, config: {effect: my-glow, params: {amount: 7}}}}
output: each
"""
    kept = parse_recipe(mapped)
    assert kept.steps[1].config["config"] == {"effect": "my-glow", "params": {"amount": 7}}
    resolved_bad = mapped.replace("amount: 7", "amount: 0.5")
    resolved = parse_recipe(resolved_bad, effect_names={"my-glow": CID})
    assert resolved.steps[1].config["config"]["effect"] == CID
    assert resolved.recipe_id == parse_recipe(resolved_bad).recipe_id  # the recipe as written
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(mapped.replace("params: {amount: 7}", "params: [1]"))
    assert info.value.field == "steps[1].config.config.params"
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(mapped.replace("operation: EFFECT", "operation: NOPE"))
    assert (info.value.field or "").startswith("steps[1].config")
