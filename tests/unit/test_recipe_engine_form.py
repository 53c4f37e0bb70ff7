"""The original engine's spellings: each parses to the same steps, and plans to the same step ids, as ours."""

from __future__ import annotations

import pytest

from artdag_common.cid import cid_of_bytes
from artdag_common.db.tables import RecipeRow
from artdag_common.errors import InvalidInputError
from artdag_common.recipe import Recipe, parse_recipe
from services.planner.planning import build_plan
from services.planner.recipes import _record


def recipe(inputs: str, *nodes: str, output: str = "out") -> str:
    """An engine-form recipe: optional L1 `inputs:` plus `dag: {nodes, output}`."""
    body = "\n".join(f"    - {node}" for node in nodes)
    return f"name: engine\n{inputs}dag:\n  nodes:\n{body}\n  output: {output}\n"


VIDEO = "{id: video, type: SOURCE, config: {input: true}}"
MUSIC = "{id: music, type: SOURCE, config: {input: true}}"
AUDIO_IN = "inputs: {music: {type: audio}}\n"
MUSIC_TYPED = "{id: music, type: SOURCE, config: {input: music}}"


def plan_ids(parsed: Recipe) -> tuple[list[str], str]:
    """Step ids of the plan, each input bound to a CID of its own (a list input to two)."""
    cids = {
        name: ",".join(cid_of_bytes(f"{name}{k}".encode()) for k in range(2 if spec.list else 1))
        for name, spec in parsed.inputs.items()
    }
    plan = build_plan(parsed, cids)
    return [s.step_id for s in plan.steps], plan.output_step


SAME = {
    "transform effects": (
        recipe("", VIDEO, "{id: out, type: TRANSFORM, inputs: [video], config: {effects: {saturation: 1.5, blur: 2}}}"),
        recipe("", VIDEO, "{id: out, type: TRANSFORM, inputs: [video], config: {saturation: 1.5, blur: 2}}"),
    ),
    "transform, every original effect": (
        recipe(
            "",
            VIDEO,
            "{id: out, type: TRANSFORM, inputs: [video], config: {effects: {saturation: 1.2, contrast: 1.1,"
            " brightness: 0.1, gamma: 1.3, hue: 30, blur: 1, sharpen: 0.5, speed: 2}}}",
        ),
        recipe(
            "",
            VIDEO,
            "{id: out, type: TRANSFORM, inputs: [video], config: {speed: 2, sharpen: 0.5, blur: 1, hue: 30,"
            " gamma: 1.3, brightness: 0.1, contrast: 1.1, saturation: 1.2}}",
        ),
    ),
    "transform, no effects": (
        recipe("", VIDEO, "{id: out, type: TRANSFORM, inputs: [video], config: {effects: {}}}"),
        recipe("", VIDEO, "{id: out, type: TRANSFORM, inputs: [video]}"),
    ),
    "map of a transform": (
        recipe(
            "inputs: {clips: {list: true}}\n",
            "{id: each, type: MAP, inputs: [clips], config: {operation: TRANSFORM, config: {effects: {hue: 90}}}}",
            "{id: out, type: SEQUENCE, inputs: [each]}",
        ),
        recipe(
            "inputs: {clips: {list: true}}\n",
            "{id: each, type: MAP, inputs: [clips], config: {operation: TRANSFORM, config: {hue: 90}}}",
            "{id: out, type: SEQUENCE, inputs: [each]}",
        ),
    ),
    "mux streams swapped": (
        recipe(
            AUDIO_IN,
            MUSIC_TYPED,
            VIDEO,
            "{id: out, type: MUX, inputs: [music, video], config: {video_stream: 1, audio_stream: 0}}",
        ),
        recipe(AUDIO_IN, MUSIC_TYPED, VIDEO, "{id: out, type: MUX, inputs: [video, music]}"),
    ),
    "mux streams picked from three": (
        recipe(
            AUDIO_IN,
            MUSIC_TYPED,
            VIDEO,
            "{id: small, type: RESIZE, inputs: [video], config: {width: 64, height: 48}}",
            "{id: out, type: MUX, inputs: [video, music, small],"
            " config: {video_stream: 2, audio_stream: 1, shortest: false}}",
        ),
        recipe(
            AUDIO_IN,
            MUSIC_TYPED,
            VIDEO,
            "{id: small, type: RESIZE, inputs: [video], config: {width: 64, height: 48}}",
            "{id: out, type: MUX, inputs: [small, music], config: {shortest: false}}",
        ),
    ),
    "mux default streams": (
        recipe(AUDIO_IN, MUSIC_TYPED, VIDEO, "{id: out, type: MUX, inputs: [video, music], config: {video_stream: 0}}"),
        recipe(AUDIO_IN, MUSIC_TYPED, VIDEO, "{id: out, type: MUX, inputs: [video, music]}"),
    ),
    "effect params beside effect": (
        recipe("", VIDEO, "{id: out, type: EFFECT, inputs: [video], config: {effect: blur, radius: 3}}"),
        recipe("", VIDEO, "{id: out, type: EFFECT, inputs: [video], config: {effect: blur, params: {radius: 3}}}"),
    ),
    "effect params beside and in params": (
        recipe(
            "",
            VIDEO,
            "{id: out, type: EFFECT, inputs: [video], config: {effect: swirl, strength: 2, params: {radius: 0.3}}}",
        ),
        recipe(
            "",
            VIDEO,
            "{id: out, type: EFFECT, inputs: [video], config: {effect: swirl, params: {radius: 0.3, strength: 2}}}",
        ),
    ),
    "effect size param (a number) beside a resize": (
        recipe(
            "",
            VIDEO,
            "{id: out, type: EFFECT, inputs: [video], config: {effect: film_grain, size: 3, amount: 0.2}}",
        ),
        recipe(
            "",
            VIDEO,
            "{id: out, type: EFFECT, inputs: [video], config: {effect: film_grain, params: {size: 3, amount: 0.2}}}",
        ),
    ),
    "effect flat params with a resize": (
        recipe(
            "",
            VIDEO,
            "{id: out, type: EFFECT, inputs: [video],"
            " config: {effect: invert, intensity: 0.5, size: {width: 64, height: 48}}}",
        ),
        recipe(
            "",
            VIDEO,
            "{id: out, type: EFFECT, inputs: [video], config: {effect: invert, params: {intensity: 0.5},"
            " size: {width: 64, height: 48}}}",
        ),
    ),
    "analyze one feature": (
        recipe(
            AUDIO_IN,
            MUSIC_TYPED,
            VIDEO,
            "{id: beats, type: ANALYZE, inputs: [music], config: {feature: beats}}",
            "{id: out, type: BEAT_SYNC, inputs: [video, beats]}",
        ),
        recipe(
            AUDIO_IN,
            MUSIC_TYPED,
            VIDEO,
            "{id: beats, type: ANALYZE, inputs: [music], config: {features: [beats]}}",
            "{id: out, type: BEAT_SYNC, inputs: [video, beats]}",
        ),
    ),
    "analyze all of an audio input": (
        recipe(
            AUDIO_IN,
            MUSIC_TYPED,
            VIDEO,
            "{id: beats, type: ANALYZE, inputs: [music], config: {features: all}}",
            "{id: out, type: BEAT_SYNC, inputs: [video, beats]}",
        ),
        recipe(
            AUDIO_IN,
            MUSIC_TYPED,
            VIDEO,
            "{id: beats, type: ANALYZE, inputs: [music], config: {features: [beats, energy, onsets, spectrum]}}",
            "{id: out, type: BEAT_SYNC, inputs: [video, beats]}",
        ),
    ),
    "analyze all of a video input": (
        recipe(
            "",
            VIDEO,
            "{id: all, type: ANALYZE, inputs: [video], config: {feature: all}}",
            "{id: out, type: EFFECT, inputs: [video], config: {effect: invert,"
            " bindings: {intensity: {analysis: all, feature: motion}}}}",
        ),
        recipe(
            "",
            VIDEO,
            "{id: all, type: ANALYZE, inputs: [video], config: {features: [beats, energy, metadata, motion, onsets,"
            " scene_changes, spectrum]}}",
            "{id: out, type: EFFECT, inputs: [video], config: {effect: invert,"
            " bindings: {intensity: {analysis: all, feature: motion}}}}",
        ),
    ),
    "analyze motion_tempo": (
        recipe(
            "",
            VIDEO,
            "{id: moves, type: ANALYZE, inputs: [video], config: {feature: motion_tempo}}",
            "{id: out, type: EFFECT, inputs: [video], config: {effect: invert,"
            " bindings: {intensity: {analysis: moves, feature: motion}}}}",
        ),
        recipe(
            "",
            VIDEO,
            "{id: moves, type: ANALYZE, inputs: [video], config: {features: [motion]}}",
            "{id: out, type: EFFECT, inputs: [video], config: {effect: invert,"
            " bindings: {intensity: {analysis: moves, feature: motion}}}}",
        ),
    ),
    "analyze motion_tempo in a list": (
        recipe(
            "", VIDEO, "{id: out, type: ANALYZE, inputs: [video], config: {features: [motion_tempo, scene_changes]}}"
        ),
        recipe("", VIDEO, "{id: out, type: ANALYZE, inputs: [video], config: {features: [scene_changes, motion]}}"),
    ),
    "inputs as a mapping": (
        recipe(AUDIO_IN, MUSIC_TYPED, VIDEO, "{id: out, type: MUX, inputs: {video: video, audio: music}}"),
        recipe(AUDIO_IN, MUSIC_TYPED, VIDEO, "{id: out, type: MUX, inputs: [video, music]}"),
    ),
    "inputs as a mapping of lists, in key order": (
        recipe(
            "",
            VIDEO,
            "{id: a, type: RESIZE, inputs: video, config: {width: 64, height: 48}}",
            "{id: b, type: RESIZE, inputs: {clip: video}, config: {width: 32, height: 24}}",
            "{id: out, type: SEQUENCE, inputs: {items: [b, a], tail: video}}",
        ),
        recipe(
            "",
            VIDEO,
            "{id: a, type: RESIZE, inputs: [video], config: {width: 64, height: 48}}",
            "{id: b, type: RESIZE, inputs: [video], config: {width: 32, height: 24}}",
            "{id: out, type: SEQUENCE, inputs: [b, a, video]}",
        ),
    ),
    "source list": (
        recipe(
            "", "{id: clips, type: SOURCE_LIST, config: {input: true}}", "{id: out, type: SEQUENCE, inputs: [clips]}"
        ),
        recipe(
            "inputs: {clips: {list: true}}\n",
            "{id: clips, type: SOURCE, config: {input: clips}}",
            "{id: out, type: SEQUENCE, inputs: [clips]}",
        ),
    ),
    "source list of a declared input": (
        recipe(
            "inputs: {clips: {list: true, type: video}}\n",
            "{id: many, type: SOURCE_LIST, config: {input: clips}}",
            "{id: out, type: SEQUENCE, inputs: [many]}",
        ),
        recipe(
            "inputs: {clips: {list: true}}\n",
            "{id: many, type: SOURCE, config: {input: clips}}",
            "{id: out, type: SEQUENCE, inputs: [many]}",
        ),
    ),
}


@pytest.mark.parametrize(("engine", "canonical"), list(SAME.values()), ids=list(SAME))
def test_engine_spelling_gives_the_canonical_steps_and_step_ids(engine: str, canonical: str) -> None:
    ours, theirs = parse_recipe(canonical), parse_recipe(engine)
    assert theirs.steps == ours.steps
    assert theirs.inputs == ours.inputs
    assert theirs.recipe_id == ours.recipe_id, "the same meaning: one recipe id"
    assert plan_ids(theirs) == plan_ids(ours)


def test_the_translations_are_not_vacuous() -> None:
    # Swapping MUX inputs, or dropping a TRANSFORM's effects, is a different step: the comparisons above can fail.
    unswapped = SAME["mux streams swapped"][0].replace("video_stream: 1, audio_stream: 0", "shortest: true")
    with pytest.raises(InvalidInputError, match="is audio, but MUX needs video"):
        parse_recipe(unswapped)
    plain = parse_recipe(recipe("", VIDEO, "{id: out, type: TRANSFORM, inputs: [video]}"))
    effects = parse_recipe(SAME["transform effects"][0])
    assert plan_ids(plain) != plan_ids(effects)
    assert effects.steps[1].config["saturation"] == 1.5 and effects.steps[1].config["blur"] == 2
    audio_all = parse_recipe(SAME["analyze all of an audio input"][0])
    assert audio_all.steps[-2].config["features"] == ["beats", "energy", "onsets", "spectrum"]


def test_a_source_list_is_a_list_input_bound_to_several_cids() -> None:
    engine = parse_recipe(SAME["source list"][0])
    assert engine.inputs["clips"].list
    # The same plan as the L1 form that names the list input directly.
    direct = parse_recipe(
        "name: engine\ninputs: {clips: {list: true}}\nsteps:\n"
        "  - {id: out, type: SEQUENCE, inputs: [clips]}\noutput: out\n"
    )
    assert plan_ids(engine) == plan_ids(direct)
    assert len(plan_ids(engine)[0]) == 3  # two sources and the sequence


def test_registry_and_owner_are_kept_and_ids_without_them_stay() -> None:
    plain = recipe("", VIDEO, "{id: out, type: RESIZE, inputs: [video], config: {width: 64, height: 48}}")
    text = (
        "owner: alice\nregistry:\n  assets:\n    intro: {hash: QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o, url: 'https://x/y'}\n"
        "    outro: QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH\n  effects:\n    grain: {hash: abc}\n" + plain
    )
    parsed = parse_recipe(text)
    assert parsed.owner == "alice"
    assert parsed.registry == {
        "assets": {
            "intro": {"hash": "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o", "url": "https://x/y"},
            "outro": "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
        },
        "effects": {"grain": {"hash": "abc"}},
    }
    bare = parse_recipe(plain)
    assert bare.owner is None and bare.registry is None
    assert "owner" not in bare.canonical() and "registry" not in bare.canonical()
    assert parsed.steps == bare.steps and plan_ids(parsed)[0] == plan_ids(bare)[0]
    assert parsed.recipe_id != bare.recipe_id, "a recipe that names an owner is another recipe"
    assert parse_recipe("registry: {}\n" + plain).recipe_id == bare.recipe_id
    # Ids of recipes without them are what they were before these fields existed.
    resize = "name: resize-demo\ninputs:\n  video: {type: video, description: Source}\nsteps:\n" + (
        "  - id: small\n    type: RESIZE\n    inputs: [video]\n    config: {width: 320, height: 240}\noutput: small\n"
    )
    assert parse_recipe(resize).recipe_id == "QmQkipZakgRHQkAbf6Bo7idEJV5GPsCFkEkgcY25EeTX29"


BAD_SOURCE = recipe(
    "",
    "{id: video, type: SOURCE, config: {path: /etc/hostname}}",
    "{id: out, type: RESIZE, inputs: [video], config: {width: 64, height: 48}}",
)


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (BAD_SOURCE, "dag.nodes[0].config.path", "upload the file"),
        (BAD_SOURCE, "dag.nodes[0].config.path", "asset: NAME"),
        (BAD_SOURCE.replace("SOURCE,", "SOURCE_LIST,"), "dag.nodes[0].config.path", "cannot read files on the server"),
        (
            recipe(
                "",
                "{id: clips, type: SOURCE_LIST, config: {input: true, hashes: [a]}}",
                "{id: out, type: SEQUENCE, inputs: [clips]}",
            ),
            "dag.nodes[0].config.hashes",
            "unknown field 'hashes'",
        ),
        (
            recipe(
                "inputs: [clips]\n",
                "{id: many, type: SOURCE_LIST, config: {input: clips}}",
                "{id: out, type: SEQUENCE, inputs: [many]}",
            ),
            "dag.nodes[0].config.input",
            "list: true",
        ),
        (
            recipe("", VIDEO, "{id: out, type: TRANSFORM, inputs: [video], config: {effects: {rotate: 90}}}"),
            "dag.nodes[1].config.effects.rotate",
            "without effects:",
        ),
        (
            recipe("", VIDEO, "{id: out, type: TRANSFORM, inputs: [video], config: {effects: {invert: 1}}}"),
            "dag.nodes[1].config.effects.invert",
            "EFFECT step",
        ),
        (
            recipe("", VIDEO, "{id: out, type: TRANSFORM, inputs: [video], config: {effects: {blur: 2}, hue: 3}}"),
            "dag.nodes[1].config.hue",
            "inside effects",
        ),
        (
            recipe("", VIDEO, "{id: out, type: TRANSFORM, inputs: [video], config: {effects: {saturation: 9}}}"),
            "dag.nodes[1].config.effects.saturation",
            "less than or equal to 3",
        ),
        (
            recipe("", VIDEO, "{id: out, type: TRANSFORM, inputs: [video], config: {effects: [blur]}}"),
            "dag.nodes[1].config.effects",
            "mapping",
        ),
        (
            recipe(
                AUDIO_IN, MUSIC_TYPED, VIDEO, "{id: out, type: MUX, inputs: [video, music], config: {audio_stream: 2}}"
            ),
            "dag.nodes[2].config.audio_stream",
            "index of one of this step's inputs (0..1)",
        ),
        (
            recipe(
                AUDIO_IN, MUSIC_TYPED, VIDEO, "{id: out, type: MUX, inputs: [video, music], config: {video_stream: v}}"
            ),
            "dag.nodes[2].config.video_stream",
            "got 'v'",
        ),
        (
            recipe(AUDIO_IN, MUSIC_TYPED, VIDEO, "{id: out, type: MUX, inputs: [video], config: {video_stream: 0}}"),
            "dag.nodes[2].inputs",
            "MUX takes 2 inputs",
        ),
        (  # The picked video input is the audio one: the error points where it was written.
            recipe(
                AUDIO_IN,
                MUSIC_TYPED,
                VIDEO,
                "{id: out, type: MUX, inputs: [video, music], config: {video_stream: 1, audio_stream: 0}}",
            ),
            "dag.nodes[2].inputs[1]",
            "'music' is audio, but MUX needs video",
        ),
        (
            recipe("", VIDEO, "{id: out, type: EFFECT, inputs: [video], config: {effect: blur, radius: -3}}"),
            "dag.nodes[1].config.radius",
            "greater than or equal to 0",
        ),
        (
            recipe("", VIDEO, "{id: out, type: EFFECT, inputs: [video], config: {effect: blur, radiu: 3}}"),
            "dag.nodes[1].config.radiu",
            "unknown parameter",
        ),
        (
            recipe(
                "",
                VIDEO,
                "{id: out, type: EFFECT, inputs: [video], config: {effect: blur, radius: 3, params: {radius: 2}}}",
            ),
            "dag.nodes[1].config.radius",
            "given twice",
        ),
        (
            recipe("", VIDEO, "{id: out, type: EFFECT, inputs: [video], config: {effect: blur, cid: QmX}}"),
            "dag.nodes[1].config.cid",
            "effect: NAME",
        ),
        (
            recipe("", VIDEO, "{id: out, type: EFFECT, inputs: [video], config: {effect: blur, effect_path: /x.py}}"),
            "dag.nodes[1].config.effect_path",
            "installed effects",
        ),
        (
            recipe(
                "",
                VIDEO,
                "{id: out, type: EFFECT, inputs: [video],"
                " config: {effect: blur, radius: {_binding: true, feature: energy}}}",
            ),
            "dag.nodes[1].config.radius",
            "bindings:",
        ),
        (
            recipe("", VIDEO, "{id: out, type: ANALYZE, inputs: [video], config: {feature: wobble}}"),
            "dag.nodes[1].config.feature",
            "unknown feature 'wobble'",
        ),
        (
            recipe("", VIDEO, "{id: out, type: ANALYZE, inputs: [video], config: {feature: [beats]}}"),
            "dag.nodes[1].config.feature",
            "features: [a, b]",
        ),
        (
            recipe(
                "", VIDEO, "{id: out, type: ANALYZE, inputs: [video], config: {feature: beats, features: [energy]}}"
            ),
            "dag.nodes[1].config.feature",
            "not both",
        ),
        (
            recipe("", VIDEO, "{id: out, type: SEQUENCE, inputs: {first: video, second: nowhere}}"),
            "dag.nodes[1].inputs.second",
            "unknown input 'nowhere'",
        ),
        (
            recipe("", VIDEO, "{id: out, type: SEQUENCE, inputs: {first: video, more: [video, missing]}}"),
            "dag.nodes[1].inputs.more[1]",
            "unknown input 'missing'",
        ),
        (
            recipe("", VIDEO, "{id: out, type: SEQUENCE, inputs: {first: {id: video}}}"),
            "dag.nodes[1].inputs.first",
            "step or input name",
        ),
        (
            "registry: [a]\n" + recipe("", VIDEO, "{id: out, type: SEQUENCE, inputs: [video]}"),
            "registry",
            "assets and effects",
        ),
        (
            "registry: {things: {}}\n" + recipe("", VIDEO, "{id: out, type: SEQUENCE, inputs: [video]}"),
            "registry.things",
            "unknown field 'things'",
        ),
        (
            "registry: {assets: {intro: {hash: Qm, path: /x}}}\n"
            + recipe("", VIDEO, "{id: out, type: SEQUENCE, inputs: [video]}"),
            "registry.assets.intro.path",
            "unknown field 'path'",
        ),
        (
            "owner: [alice]\n" + recipe("", VIDEO, "{id: out, type: SEQUENCE, inputs: [video]}"),
            "owner",
            "must be a string",
        ),
    ],
)
def test_bad_engine_values_name_the_field(text: str, field: str, words: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(text)
    assert info.value.field == field, info.value.message
    assert words in info.value.message
    assert "line " in info.value.message


def test_errors_point_at_the_line_of_the_engine_spelling() -> None:
    text = recipe("", VIDEO, "{id: out, type: TRANSFORM, inputs: [video],\n      config: {effects: {blur: 99}}}")
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(text)
    assert info.value.field == "dag.nodes[1].config.effects.blur"
    assert "line 6" in info.value.message and "step 'out'" in info.value.message


def row_of(text: str) -> RecipeRow:
    parsed = parse_recipe(text)
    return RecipeRow(
        recipe_id=parsed.recipe_id,
        name=parsed.name,
        version=parsed.version,
        description=parsed.description,
        text=text,
        inputs={"inputs": [i.model_dump() for i in parsed.inputs.values()]},
        example=False,
        owner="uploader",
        created_at=1.0,
    )


def test_the_recipe_book_shows_the_owner_and_registry_the_text_names() -> None:
    plain = recipe("", VIDEO, "{id: out, type: RESIZE, inputs: [video], config: {width: 64, height: 48}}")
    named = _record(row_of("owner: alice\nregistry: {effects: {grain: abc}}\n" + plain))
    assert (named.owner, named.recipe_owner, named.registry) == ("uploader", "alice", {"effects": {"grain": "abc"}})
    bare = _record(row_of(plain))
    assert (bare.recipe_owner, bare.registry) == (None, None)
    # A stored text the parser no longer takes is still listed, without them.
    stale = row_of("owner: alice\n" + plain)
    stale.text = stale.text.replace("width: 64", "width: 63")
    assert _record(stale).recipe_owner is None
