import pytest

from artdag_common.errors import InvalidInputError, SyntaxInputError
from artdag_common.recipe import RecipeRef, parse_recipe

RESIZE = """\
name: resize-demo
inputs:
  video: {type: video, description: Source}
steps:
  - id: small
    type: RESIZE
    inputs: [video]
    config: {width: 320, height: 240}
output: small
"""


def test_parses_the_l1_form_with_defaults_filled() -> None:
    recipe = parse_recipe(RESIZE)
    assert recipe.name == "resize-demo"
    assert list(recipe.inputs) == ["video"]
    (step,) = recipe.steps
    assert (step.id, step.type, step.inputs) == ("small", "RESIZE", ("video",))
    assert step.config == {"width": 320, "height": 240, "mode": "fit", "background": "black"}


def test_parses_the_engine_form() -> None:
    recipe = parse_recipe("""
name: engine
dag:
  nodes:
    - {id: video, type: SOURCE, config: {input: true}}
    - {id: small, type: RESIZE, inputs: [video], config: {width: 64, height: 48, mode: fill}}
  output: small
""")
    assert list(recipe.inputs) == ["video"]
    assert [s.id for s in recipe.steps] == ["video", "small"]
    assert recipe.steps[0].config == {"input": "video"}


def test_steps_come_out_in_dependency_order() -> None:
    recipe = parse_recipe("""
inputs: [video]
steps:
  - {id: b, type: RESIZE, inputs: [a], config: {width: 32, height: 32}}
  - {id: a, type: RESIZE, inputs: [video], config: {width: 64, height: 64}}
output: b
""")
    assert [s.id for s in recipe.steps] == ["a", "b"]


def test_recipe_id_ignores_layout_and_comments_but_not_meaning() -> None:
    spaced = "# a comment\n" + RESIZE.replace(
        "config: {width: 320, height: 240}", "config:\n      height: 240\n      width: 320"
    )
    assert parse_recipe(spaced).recipe_id == parse_recipe(RESIZE).recipe_id
    assert parse_recipe(RESIZE.replace("320", "322")).recipe_id != parse_recipe(RESIZE).recipe_id
    assert parse_recipe(RESIZE).recipe_id.startswith("Qm")


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("name: [unclosed", "recipe", "line 1"),
        (RESIZE.replace("RESIZE", "WOBBLE"), "steps[0].type", "unknown node type 'WOBBLE'"),
        (RESIZE.replace("width: 320", "width: 321"), "steps[0].config.width", "even"),
        (RESIZE.replace("width: 320", "width: -4"), "steps[0].config.width", "greater than or equal"),
        (RESIZE.replace("height: 240}", "height: 240, colour: red}"), "steps[0].config.colour", "Extra inputs"),
        (RESIZE.replace("inputs: [video]", "inputs: [audio]"), "steps[0].inputs[0]", "unknown input 'audio'"),
        (RESIZE.replace("output: small", "output: big"), "output", "not a step"),
        (RESIZE.replace("output: small", ""), "output", "missing"),
        (RESIZE.replace("name: resize-demo", "name: resize-demo\nflavour: x"), "flavour", "unknown field"),
        (RESIZE.replace("inputs: [video]", "inputs: [video, video]"), "steps[0].inputs", "takes 1 input"),
        ("- just\n- a list\n", "recipe", "mapping"),
        (RESIZE.replace("name: resize-demo", "name: ../../etc"), "name", "letters"),
        (
            RESIZE.replace("mode: fit", "").replace(
                "height: 240}", "height: 240, background: 'red;movie=/etc/passwd'}"
            ),
            "steps[0].config.background",
            "#rrggbb",
        ),
    ],
)
def test_errors_name_the_field_and_the_line(text: str, field: str, words: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(text)
    assert info.value.field == field
    assert words in str(info.value)
    if field != "recipe" or words == "line 1":
        assert "line " in info.value.message


def test_syntax_errors_are_their_own_kind() -> None:
    with pytest.raises(SyntaxInputError, match="not valid YAML"):
        parse_recipe("steps: [\n  {id: a")


def test_error_points_at_the_offending_line() -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(RESIZE.replace("width: 320", "width: 321"))
    assert "step 'small'" in info.value.message
    assert "line 8" in info.value.message


def test_cycles_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="cycle"):
        parse_recipe("""
inputs: [video]
steps:
  - {id: a, type: RESIZE, inputs: [b], config: {width: 32, height: 32}}
  - {id: b, type: RESIZE, inputs: [a], config: {width: 32, height: 32}}
output: b
""")


def test_duplicate_ids_and_keys_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="duplicate step id"):
        parse_recipe(
            RESIZE.replace(
                "output: small",
                "  - {id: small, type: RESIZE, inputs: [video], config: {width: 2, height: 2}}\noutput: small",
            )
        )
    with pytest.raises(InvalidInputError, match="duplicate key 'name'"):
        parse_recipe("name: a\nname: b\n" + RESIZE.split("\n", 1)[1])


def test_oversized_recipes_are_refused_before_parsing() -> None:
    with pytest.raises(InvalidInputError, match="larger than"):
        parse_recipe("#" * 2000, max_bytes=1000)


def test_yaml_tags_that_build_objects_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        parse_recipe("name: !!python/object/apply:os.system ['true']\n")


def test_audio_into_a_video_slot_is_a_type_error() -> None:
    text = """
inputs:
  song: {type: audio}
  clip: {type: video}
steps:
  - {id: small, type: RESIZE, inputs: [song], config: {width: 32, height: 32}}
output: small
"""
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(text)
    assert info.value.field == "steps[0].inputs[0]"
    assert "'song' is audio, but RESIZE needs video" in info.value.message
    mixed = """
inputs:
  song: {type: audio}
  clip: {type: video}
steps:
  - {id: cut, type: SEGMENT, inputs: [song], config: {start: 0, end: 2}}
  - {id: both, type: MUX, inputs: [clip, cut]}
  - {id: wrong, type: MUX, inputs: [cut, clip]}
output: both
"""
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(mixed)
    assert info.value.field == "steps[2].inputs[0]"
    assert parse_recipe(mixed.replace("  - {id: wrong, type: MUX, inputs: [cut, clip]}\n", "")).output == "both"


def test_scalars_mean_what_pyyaml_safe_load_makes_of_them() -> None:
    # The recipe reader resolves plain scalars with a shortcut; it must agree with PyYAML.
    import yaml

    from artdag_common.recipe import _Located

    text = """
words: [abc, NOOP, l0, d1_0, "quoted", 'single', hello world, _x, Über]
bools: [yes, no, on, off, true, False, Y, n]
numbers: [0, -1, +2, 0x1f, 0o17, 017, 1_000, 3.5, -.5, 1e3, .inf, -.INF, .nan, 1:30, 08]
nulls: [~, null, Null, ""]
empty:
dates: [2026-11-28, 2026-11-28T10:00:00Z]
other: ["=", "<<", "-", "1.2.3", "+", "0.", "--"]
tagged: !!str 123
nested: {a: [1, {b: 2.0}], c: null}
"""
    located = _Located(text).value
    expected = yaml.safe_load(text)
    assert isinstance(located, dict) and isinstance(expected, dict)
    nan = located["numbers"].pop(12)
    assert nan != nan  # NaN
    expected["numbers"].pop(12)
    assert located == expected


def test_aliases_may_repeat_a_config_but_not_explode() -> None:
    shared = """
inputs: [video]
steps:
  - {id: a, type: RESIZE, inputs: [video], config: &size {width: 32, height: 32}}
  - {id: b, type: RESIZE, inputs: [a], config: *size}
output: b
"""
    recipe = parse_recipe(shared)
    assert recipe.steps[0].config == recipe.steps[1].config
    # "Billion laughs": each level repeats the one before ten times (10^6 values from ~300 bytes).
    levels = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 7)]
    bomb = "registry:\n" + "\n".join(f"  {level}" for level in levels) + "\n" + shared
    with pytest.raises(InvalidInputError, match="aliases") as info:
        parse_recipe(bomb)
    assert info.value.field == "recipe"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("x: &a [*a]\n", "alias"),  # a list that holds itself
        ("x: &a {k: *a, 1: 2}\n", "alias"),
        ("x: " + "[" * 100 + "]" * 100 + "\n", "nests deeper"),
        ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nesting depth"),  # libyaml's own limit
    ],
)
def test_recursive_aliases_and_deep_nesting_are_refused(text: str, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words) as info:
        parse_recipe(text)
    assert info.value.field == "recipe"


@pytest.mark.parametrize(
    ("value", "kind"),
    [("!!int abc", "int"), ("!!float abc", "float"), ("1" * 5000, "int"), ("2026-13-45", "timestamp")],
)
def test_a_scalar_yaml_cannot_make_is_a_bad_value_where_it_stands(value: str, kind: str) -> None:
    with pytest.raises(InvalidInputError, match=f"is not a valid {kind}") as info:
        parse_recipe(RESIZE.replace("width: 320", f"width: {value}"))
    assert info.value.field == "steps[0].config.width"
    assert "line 8" in info.value.message


def test_a_bad_key_is_placed_where_it_stands() -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(RESIZE.replace("    config: {width: 320", "    config: {1: 2, width: 320"))
    assert info.value.field == "steps[0].config"
    assert "line 8" in info.value.message
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(RESIZE.replace("height: 240}", "height: 240, width: 3}"))
    assert info.value.field == "steps[0].config.width"
    assert "duplicate key 'width'" in info.value.message


LISTEN = """\
name: listen
inputs:
  audio: {type: audio}
steps:
  - id: beats
    type: ANALYZE
    inputs: [audio]
    config: {features: [beats], params: PARAMS}
output: beats
"""


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ("{tempo_hint: 500}", "tempo_hint", "tempo_hint (500) must lie between tempo_min (40) and tempo_max (240)"),
        ("{tempo_min: 60, tempo_max: 120, tempo_hint: 50}", "tempo_hint", "between tempo_min (60)"),
        ("{tempo_min: fast}", "tempo_min", "valid number"),
        ("{tempo_min: 100, tempo_max: 140}", "tempo_max", "at least 1.5 × tempo_min (100)"),
        ("{min_bpm: 60}", "min_bpm", "unknown parameter 'min_bpm': it is called 'tempo_min' now"),
        ("{hop: 512}", "hop", "known: bands, scene_threshold, tempo_hint, tempo_max, tempo_min, window_ms"),
        ("{window_ms: 1}", "window_ms", "greater than or equal to 5"),
    ],
)
def test_analyze_params_are_checked_when_the_recipe_comes_in(params: str, field: str, words: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(LISTEN.replace("PARAMS", params))
    assert info.value.field == f"steps[0].config.params.{field}"
    assert words in info.value.message and "line 8" in info.value.message


def test_analyze_params_are_kept_as_written() -> None:
    # The analyzer fills in the defaults: a recipe's step id does not change with them.
    (step,) = parse_recipe(LISTEN.replace("PARAMS", "{tempo_hint: 70, tempo_max: 200}")).steps
    assert step.config["params"] == {"tempo_hint": 70, "tempo_max": 200}


CID0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


@pytest.mark.parametrize(
    ("text", "name", "cid"),
    [
        ("beat-sync", "beat-sync", None),
        (CID0, None, CID0),
        (f"beat-sync@{CID0}", "beat-sync", CID0),
        ("_private-2", "_private-2", None),
    ],
)
def test_a_recipe_is_named_by_cid_name_or_both(text: str, name: str | None, cid: str | None) -> None:
    ref = RecipeRef.parse(text)
    assert (ref.name, ref.cid) == (name, cid)
    assert str(ref) == text


@pytest.mark.parametrize("text", ["", "two words", "../etc/passwd", "x@y", f"two words@{CID0}", "a" * 65, "9lives"])
def test_anything_else_names_no_recipe(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        RecipeRef.parse(text)
    assert caught.value.field == "recipe_id" and "name@cid" in caught.value.message
