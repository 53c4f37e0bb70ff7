"""S-expression recipes: each translates to the recipe its YAML spelling is (same canonical form, same
plan, same step ids), and every hostile text ends in an error that names the line and column."""

from __future__ import annotations

import re
from typing import Any

import pytest

from artdag_common import recipe_sexp
from artdag_common.cid import cid_of_bytes
from artdag_common.errors import InvalidInputError, SyntaxInputError
from artdag_common.examples import example_recipes
from artdag_common.recipe import Recipe, is_sexp_recipe, parse_recipe, user_effects_named
from artdag_common.recipe_sexp import MAX_EVAL_STEPS, parse_recipe_sexp
from artdag_common.schemas import AnalysisReply, Plan, PlanStep
from services.planner.planning import build_plan

CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


def cids_for(recipe: Recipe) -> dict[str, str]:
    """A CID of its own for every input (three for a list input)."""
    return {
        name: ",".join(cid_of_bytes(f"{name}{k}".encode()) for k in range(3 if spec.list else 1))
        for name, spec in recipe.inputs.items()
    }


def plan_of(recipe: Recipe, analyses: dict[str, AnalysisReply] | None = None) -> Plan:
    return build_plan(recipe, cids_for(recipe), analyses=analyses)


def assert_same(sexp: str, yaml_text: str, analyses: dict[str, AnalysisReply] | None = None) -> Recipe:
    """The two spellings are one recipe: the same canonical form, recipe id, plan and step ids."""
    ours, theirs = parse_recipe(sexp), parse_recipe(yaml_text)
    assert ours.canonical() == theirs.canonical()
    assert ours.recipe_id == theirs.recipe_id
    mine, yours = plan_of(ours, analyses), plan_of(theirs, analyses)
    assert [s.step_id for s in mine.steps] == [s.step_id for s in yours.steps]
    assert (mine.output_step, mine.plan_id) == (yours.output_step, yours.plan_id)
    return ours


def _analysis(beats: list[float]) -> AnalysisReply:
    result = {"audio": {"beats": {"beat_times": beats}, "energy": {"times": [0.0, 1.0], "values": [0.2, 1.0]}}}
    return AnalysisReply(analysis_id="a" * 64, result_cid=CID, cached=False, result=result)


# -- the shipped examples, written as S-expressions -------------------------------------------------

EXAMPLES = {
    "resize": """
; Fit a video into 320x240 (letterboxed), keeping its sound.
(recipe "resize-demo" :version "1.0" :description "Fit the input video into 320x240"
  :inputs ((video :type video :description "Source video"))
  (def small (resize video 320 240 :mode "fit")))
""",
    "sequence": """
; Three clips, any sizes, joined with crossfades at the size of the first.
(recipe "three-clip-sequence"
  :version "1.0"
  :description "Join three clips with half-second crossfades"
  :inputs ((first :type video :description "Opening clip")
           (second :type video :description "Middle clip")
           (third :type video :description "Closing clip"))
  (def joined
    (sequence first second third :transition {:type "crossfade" :duration 0.5} :target-size "first")))
""",
    "beat-sync": """
; The original L1 README's recipe: cut a video to the beats of a track.
(recipe "beat-sync" :version "1.0" :description "Synchronize video to audio beats"
  (def analyze_audio
    (analyze (source :input "audio" :type audio :description "Audio track") :features [beats energy]))
  (def sync_video
    (beat-sync (source :input "video" :type video :description "Source video") analyze_audio :mode "stretch")))
""",
}


def test_every_example_has_an_s_expression_spelling() -> None:
    assert set(EXAMPLES) == set(example_recipes()), "a new example needs its S-expression here too"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_written_as_an_s_expression_is_the_same_recipe(name: str) -> None:
    analyses = {"analyze_audio": _analysis([0.5, 1.0, 1.5, 2.0])} if name == "beat-sync" else None
    assert_same(EXAMPLES[name], example_recipes()[name])
    if analyses:
        assert_same(EXAMPLES[name], example_recipes()[name], analyses)


def test_the_form_is_told_by_its_first_character() -> None:
    assert is_sexp_recipe('\n  ; a comment (with a paren)\n(recipe "x")')
    assert not is_sexp_recipe("# (recipe)\nname: x\n") and not is_sexp_recipe("; only a comment")
    assert not is_sexp_recipe("name: x\nsteps: []\n") and not is_sexp_recipe("")


# -- threading, def, params, functions -----------------------------------------------------------

THREAD_YAML = """
name: thread
inputs: [video]
steps:
  - {id: segment-1, type: SEGMENT, inputs: [video], config: {start: 1, end: 3}}
  - {id: effect-1, type: EFFECT, inputs: [segment-1], config: {effect: blur, params: {radius: 2}}}
  - {id: effect-2, type: EFFECT, inputs: [effect-1], config: {effect: invert}}
  - {id: clip, type: RESIZE, inputs: [effect-2], config: {width: 64, height: 48}}
output: clip
"""


def test_threading_passes_the_clip_and_a_bare_name_is_an_effect() -> None:
    recipe = assert_same(
        """(recipe "thread" :inputs (video)
             (def clip (-> video (segment :start 1 :end 3) (effect blur :radius 2) invert (resize 64 48))))""",
        THREAD_YAML,
    )
    assert [s.id for s in recipe.steps] == ["segment-1", "effect-1", "effect-2", "clip"]
    # The same steps nested instead of threaded; a def used twice is one step, read twice.
    nested = parse_recipe(
        """(recipe "thread" :inputs (video)
             (def clip (resize (effect invert (effect blur (segment video :start 1 :end 3) :radius 2)) 64 48)))"""
    )
    assert nested.canonical() == recipe.canonical()
    twice = parse_recipe('(recipe "t" :inputs (video) (def a (effect blur video)) (sequence a a))')
    assert [s.inputs for s in twice.steps] == [("video",), ("a", "a")]


def test_params_are_checked_constants_and_functions_compute_settings() -> None:
    text = """
(recipe "sized" :inputs (video)
  :params ((width :type int :default 64 :range [16 256] :desc "output width")
           (mode :type string :default "fit" :choices ["fit" "fill"])
           (soft :type bool :default false))
  (def small (resize video width (* width 0.75) :mode mode))
  (def out (if soft (effect blur small :radius (max 1 (round (/ width 32)))) small)))
"""
    recipe = parse_recipe(text)
    assert recipe.steps[-1].config == {"width": 64, "height": 48, "mode": "fit", "background": "black"}
    assert recipe.output == "small", "(if false …) made no blur step: the output is `small` itself"
    given = parse_recipe_sexp(text, params={"width": 128, "soft": True, "mode": "fill"})
    assert [s.type for s in given.steps] == ["RESIZE", "EFFECT"]
    assert given.steps[0].config["width"] == 128 and given.steps[1].config["params"]["radius"] == 4
    with pytest.raises(InvalidInputError, match=r"line 3, column 12: parameter 'width' given as 512 is outside"):
        parse_recipe_sexp(text, params={"width": 512})
    with pytest.raises(InvalidInputError, match=r"'crop' is not one of its choices"):
        parse_recipe_sexp(text, params={"mode": "crop"})
    with pytest.raises(InvalidInputError, match=r"no parameter 'height'") as info:
        parse_recipe_sexp(text, params={"height": 3})
    assert info.value.field == "params.height"
    with pytest.raises(InvalidInputError, match=r"'yes' is not true or false"):
        parse_recipe_sexp(text, params={"soft": "yes"})


def test_functions_follow_their_definitions() -> None:
    text = """(recipe "f" :inputs (video)
      (def xs [1 2 3 4 5])
      (def m {:a 1 :b-c 2})
      (effect rotate video :degrees (+ (len xs) (nth xs 4) (get m :b-c) (first (last (chunk-every xs 2)))
                                       (mod 7 4) (pow 2 3) (sqrt 16) (abs -1) (floor 1.5) (ceil 1.2) (inc 0) (dec 1)
                                       (if (and (< 1 2 3) (not= 1 2) (= (min 1 2) 1) (>= 3 3) (not nil)) 1 1000)
                                       (get (dict :k 4) :k) (len (list 1 2)) (- 2) (or nil 1))))"""
    # 5 + 5 + 2 + 5 + 3 + 8 + 4 + 1 + 1 + 2 + 1 + 0 + 1 + 4 + 2 - 2 + 1
    assert parse_recipe(text).steps[0].config["params"]["degrees"] == 43


# -- bindings, slice-on, map, stages, user effects ------------------------------------------------------

BOUND_YAML = """
name: two-bound
inputs:
  video: {type: video}
  audio: {type: audio}
steps:
  - {id: listen, type: ANALYZE, inputs: [audio], config: {features: [energy]}}
  - id: bright
    type: EFFECT
    inputs: [video]
    config: {effect: brightness_contrast, bindings: {brightness: {analysis: listen, feature: energy, range: [0, 0.2]}}}
  - id: rich
    type: EFFECT
    inputs: [bright]
    config:
      effect: saturation
      bindings: {amount: {analysis: listen, feature: energy, range: [0.5, 1.5], smooth: 0.1}}
output: rich
"""


def test_bindings_follow_an_analysis_as_the_yaml_form_writes_them() -> None:
    sexp = """(recipe "two-bound" :inputs ((video :type video) (audio :type audio))
      (def listen (analyze audio :features [energy]))
      (def bright (effect brightness-contrast video :brightness (bind listen :feature energy :range [0 0.2])))
      (def rich (-> bright (effect saturation :amount (bind listen :feature energy :range [0.5 1.5] :smooth 0.1)))))"""
    assert_same(sexp, BOUND_YAML)
    assert_same(sexp, BOUND_YAML, {"listen": _analysis([0.0])})


SLICED_YAML = """
name: sliced
inputs: {video: {type: video}, music: {type: audio}}
steps:
  - {id: listen, type: ANALYZE, inputs: [music], config: {features: [beats]}}
  - {id: segment-at-1, type: SEGMENT_AT, inputs: [video], config: {times_from: listen, feature: beats, every: 2}}
  - id: map-1
    type: MAP
    inputs: [segment-at-1]
    config: {operation: EFFECT, config: {effect: hue_shift, params: {degrees: 90}}}
  - {id: cut, type: SEQUENCE, inputs: [map-1]}
  - {id: out, type: MUX, inputs: [cut, music]}
output: out
"""


def test_slice_on_cuts_at_analysed_times_as_segment_at_and_map_do() -> None:
    sexp = """(recipe "sliced" :inputs ((video :type video) (music :type audio))
      (def listen (analyze beats music))
      (def cut (sequence (slice-on video listen :times beats :every 2 :effect (effect hue-shift :degrees 90))))
      (def out (mux cut music)))"""
    beats = {"listen": _analysis([0.0, 0.5, 1.0, 1.5, 2.0])}
    assert_same(sexp, SLICED_YAML, beats)
    plan = plan_of(parse_recipe(sexp), beats)
    cuts = [stage for s in plan.steps for stage in _stages(s) if stage["type"] == "SEGMENT"]
    assert [(c["config"]["start"], c["config"]["end"]) for c in cuts] == [(0.0, 1.0), (1.0, 2.0)]
    threaded = sexp.replace("(slice-on video listen", "(-> video (slice-on listen").replace("90))))", "90)))))")
    assert parse_recipe(threaded).canonical() == parse_recipe(sexp).canonical()


def _stages(step: PlanStep) -> list[dict[str, Any]]:
    """A step's nodes as CHAIN stages (a plain step is a chain of one)."""
    node_type, config = step.node_type, step.config
    if node_type == "CHAIN":
        return list(config["stages"])
    if node_type == "CUTS":
        return [stage for piece in config["pieces"] for stage in piece["stages"]]
    return [{"type": node_type, "config": config}]


def test_map_applies_one_operation_to_every_clip_of_a_list() -> None:
    yaml_text = """
name: montage
inputs:
  clips: {type: video, list: true}
steps:
  - {id: small, type: MAP, inputs: [clips], config: {operation: RESIZE, config: {width: 64, height: 48}}}
  - {id: all, type: SEQUENCE, inputs: [small]}
output: all
"""
    sexp = """(recipe "montage" :inputs ((clips :type video :list true))
      (def small (map clips (resize 64 48)))
      (def all (sequence small)))"""
    assert_same(sexp, yaml_text)
    assert len([s for s in plan_of(parse_recipe(sexp)).steps if s.node_type == "RESIZE"]) == 3


STAGED_YAML = """
name: staged
inputs: {video: {type: video}, music: {type: audio}}
steps:
  - {id: listen, type: ANALYZE, inputs: [music], config: {features: [beats, energy]}}
  - {id: calm, type: EFFECT, inputs: [video], config: {effect: blur, params: {radius: 3}}}
  - id: pulse
    type: EFFECT
    inputs: [calm]
    config: {effect: bloom, bindings: {intensity: {analysis: listen, feature: energy}}}
  - {id: out, type: MUX, inputs: [pulse, music]}
output: out
"""


def test_stages_scope_names_and_translate_to_the_flat_recipe() -> None:
    sexp = """(recipe "staged" :inputs ((video :type video) (music :type audio))
      (stage :analyze
        :outputs [listen]
        (def listen (analyze music :features [beats energy])))
      (stage :look
        :outputs [calm]
        (def calm (effect blur video :radius 3)))
      (stage :render
        :requires [:analyze :look]
        :inputs [listen calm]
        :outputs [out]
        (def pulse (effect bloom calm :intensity (bind listen :feature energy)))
        (def out (mux pulse music))))"""
    assert_same(sexp, STAGED_YAML)
    # A stage sees the names from before the first stage and its :inputs; after the stages, all outputs.
    after = sexp.replace(":outputs [out]\n", "").replace("(def out (mux pulse music))))", "pulse)\n(mux calm music))")
    assert parse_recipe(after).steps[-1].inputs == ("calm", "music")


def test_a_user_effect_is_named_by_its_cid_directly_or_declared() -> None:
    from artdag_effects.user import register_user_effect

    source = b"(define-effect halve\n  :params ((amount :default 0.5 :range [0 1]))\n  (* frame amount))\n"
    cid = cid_of_bytes(source)
    register_user_effect(cid, source)
    yaml_text = f"""
name: mine
inputs: [video]
steps:
  - {{id: out, type: EFFECT, inputs: [video], config: {{effect: {cid}, params: {{amount: 0.25}}}}}}
output: out
"""
    direct = f'(recipe "mine" :inputs (video) (def out (effect {cid} video :amount 0.25)))'
    declared = (
        f'(recipe "mine" :inputs (video)\n  (effect halve :cid "{cid}")\n  (def out (-> video (halve :amount 0.25))))'
    )
    declared = declared.replace("(halve :amount", "(effect halve :amount")
    for text in (direct, declared):
        assert_same(text, yaml_text)
        assert user_effects_named(text) == {cid}
    assert user_effects_named('(recipe "x" (effect broken') == set(), "a text that does not read names none"
    with pytest.raises(InvalidInputError, match=r"less than or equal to 1 \(line 3, column 44\)"):
        parse_recipe(declared.replace("0.25", "3"))


def test_assets_sources_and_layers_take_their_yaml_shapes() -> None:
    sexp = """(recipe "over" :owner "alice"
      (asset logo :cid "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")
      (def base (source :input true :name "base" :description "the picture"))
      (def out (layer base (source :asset "stamp") :x 10 :y 20 :opacity 0.5)))"""
    yaml_text = """
name: over
owner: alice
registry: {assets: {logo: {cid: QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o}}}
inputs:
  base: {description: the picture}
  stamp: {type: any, asset: stamp}
steps:
  - {id: out, type: LAYER, inputs: [base, stamp], config: {inputs: [{position: [10, 20], opacity: 0.5}]}}
output: out
"""
    recipe = parse_recipe(sexp)
    assert recipe.canonical() == parse_recipe(yaml_text).canonical()
    assert recipe.inputs["stamp"].asset == "stamp" and recipe.registry == {
        "assets": {"logo": {"cid": "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"}}
    }


# -- hostile and wrong texts: a clear error, with where ----------------------------------------------

V = '(recipe "x" :inputs (video)\n  '

HOSTILE = [
    # escapes: files, includes, gateways, code
    (V + '(source :path "/etc/passwd"))', 2, 11, "cannot read files on the server"),
    (V + '(include :path "../secrets.sexp"))', 2, 12, "never a file or a URL"),
    (V + '(include :url "https://ipfs.io/ipfs/x"))', 2, 12, "never a file or a URL"),
    (V + f'(include :cid "{CID}"))', 2, 17, "no text with that CID is stored"),
    (V + '(include :cid "not-a-cid"))', 2, 17, "CID"),
    (V + f'(def x (include :cid "{CID}")) video)', 2, 11, "goes at the top of the recipe"),
    (V + '(effect evil :path "/tmp/evil.py") (-> video evil))', 2, 16, "write :cid, not :path"),
    (V + '(effect evil :url "https://ipfs.io/ipfs/x") (-> video evil))', 2, 16, "write :cid, not :url"),
    (V + '(effect "../../etc/passwd" video))', 2, 11, "unknown effect '../../etc/passwd'"),
    (V + "(def ../up (effect blur video)))", 2, 8, "a def's name is letters"),
    (V + '(effect blur (source :input "../video")))', 2, 31, "input name '../video'"),
    (V + "(def f (fn [x] (f x))) (f video))", 2, 11, "no user functions"),
    # infinite recursion and cycles
    (V + "(def a (effect blur a)))", 2, 23, "'a' refers to itself"),
    (V + "(stage :a :requires [:a] :outputs [x] (def x video)))", 2, 24, "requires undefined stage :a"),
    (
        V + "(stage :a :requires [:b] :outputs [x] (def x video)) (stage :b :outputs [y] (def y video)) x)",
        2,
        24,
        "requires undefined stage :b",
    ),
    (V + "(stage :a :outputs [x y] (def x (effect blur video))))", 2, 25, "output 'y' is not defined"),
    (
        V + "(stage :a :outputs [x] (def x (effect blur video))) (stage :b :requires [:a] :inputs [z] x))",
        2,
        89,
        "input 'z' is not an output of any required stage",
    ),
    (
        V + "(stage :a :outputs [x] (def x (effect blur video))) (stage :b (effect invert x)))",
        2,
        80,
        "'x' is an output of stage :a: stage :b sees it with :requires [:a] and :inputs [x]",
    ),
    (V + "(stage :a (def x (effect blur video)) x) (effect invert x))", 2, 59, "'x' is defined in stage :a only"),
    (
        V + "(stage :a :outputs [x] (def x video)) (def y (effect blur video)) (stage :b (effect invert y)))",
        2,
        94,
        "'y' (defined at line 2, column 46) is not visible in stage :b",
    ),
    (V + "(def a (effect blur video)) (def a (effect invert video)))", 2, 36, "'a' is already defined at line 2"),
    # huge expressions
    (V + "(effect blur video :radius " + "(+ 1 " * 80 + "1" + ")" * 80 + "))", 2, 0, "nested deeper than 64"),
    (V + "(effect blur video :radius [" + " 1" * 25_000 + "]))", 2, 0, "more than 20,000 values"),
    (
        V + "(def a [1 2 3 4 5 6 7 8 9 10]) (def b [a a a a a a a a a a]) (def c [b b b b b b b b b b])"
        " (def d [c c c c c c c c c c]) (def e [d d d d d d d d d d]) (effect blur video :radius e))",
        2,
        131,
        "holds more than 100,000 items",
    ),
    (V + "(effect blur video :radius (pow 10 400)))", 2, 30, "too large a number"),
    (
        V
        + "(def a0 [1]) "
        + " ".join(f"(def a{k + 1} [a{k}])" for k in range(40))
        + " (effect blur video :radius a40))",
        2,
        502,
        "nests lists and maps deeper than 32 levels",
    ),
    # NaN and infinities
    (V + "(effect blur video :radius (/ 1 0)))", 2, 35, "division by zero"),
    (V + "(effect blur video :radius (* 1e300 1e300)))", 2, 30, "not a finite number"),
    (V + "(effect blur video :radius nan))", 2, 30, "undefined name 'nan'"),
    (V + "(effect blur video :radius inf))", 2, 30, "undefined name 'inf'"),
    (V + "(effect blur video :radius 1e999))", 2, 30, "1e999 is too large a number"),
    (V + "(effect blur video :radius (sqrt -1)))", 2, 36, "of a negative number"),
    # wrong shapes, types, arity, keywords
    (V + "(resize video 320))", 2, 17, "two numbers, or :width and :height"),
    (V + "(resize video :width 321 :height 240))", 2, 24, "must be an even number of pixels"),
    (V + '(resize video :width "big" :height 240))', 2, 24, "valid integer"),
    (V + "(layer video video :inputs [{:position [1]}]))", 2, 30, "Field required"),
    (V + '(sequence video video :resize-mode "fit"))', 2, 25, "SEQUENCE has no setting :resize-mode"),
    (V + "(mux video))", 2, 3, "MUX takes 2 input(s), got 1"),
    (
        '(recipe "x" :inputs ((music :type audio))\n  (resize music 64 48))',
        2,
        11,
        "'music' is audio, but RESIZE needs video",
    ),
    (V + "(effect blur video :radius (nth [1 2] 5)))", 2, 41, "the list has 2 item(s)"),
    (V + '(effect blur video :radius (+ 1 "2")))', 2, 35, "takes numbers, not '2'"),
    (V + "(effect blur video :radius (floor)))", 2, 30, "takes 1 argument(s), got 0"),
    (V + "(effect blur video :radius 3 :radius 4))", 2, 32, ":radius is given twice"),
    (V + "(effect blur video :no-such 3))", 2, 31, "unknown parameter"),
    (V + '(analyze video :features [beats] :path "analyzer.py"))', 2, 36, "unknown analyze keyword :path"),
    (V + "(slice-on video video :times beats))", 2, 19, "not the input 'video'"),
    (
        V + "(slice-on video (analyze video :features [beats]) :times beats :fn (fn [a] a)))",
        2,
        66,
        "function per slice is not supported",
    ),
    (
        '(recipe "x" :inputs ((music :type audio))\n  (def a (analyze music :features [energy]))\n'
        '  (effect bloom (source :input "v") :intensity (bind a :feature energy :range [0 1 2])))',
        3,
        79,
        "at most 2 items",
    ),
    (
        '(recipe "x" :inputs ((music :type audio))\n  (def a (analyze music :features [energy]))\n'
        '  (sequence (slice-on (source :input "v") a :times beats)))',
        3,
        43,
        "does not extract 'beats'",
    ),
    (V + "(-> video 3))", 2, 13, "an effect is named by a name"),
    (V + "(-> 3 blur))", 2, 9, "3 is no clip"),
    (V + "video)", 1, 1, "the recipe makes no step"),
    (V + "(def a (effect blur video)) video)", 2, 31, "gives the input 'video'"),
    (V + "(slice-on video (analyze video :features [beats]) :times beats))", 2, 3, "the output is a list of clips"),
    (V + "(blur video))", 2, 4, "unknown form 'blur'"),
    (V + "(effect blur video) :encoding {:crf 18})", 2, 23, "remove :encoding"),
    (V + "(effect blur video) :owner 3)", 2, 30, ":owner is a string"),
    (
        '(recipe "x" :params ((n :type int :default 30 :range [1 10]))\n'
        "  :inputs (video) (effect blur video :radius n))",
        1,
        44,
        "its default 30 is outside its range [1 10]",
    ),
    (
        '(recipe "x" :params ((n :type int :default 1.5))\n  :inputs (video) (effect blur video :radius n))',
        1,
        44,
        "is not an int",
    ),
    (
        '(recipe "x" :params ((n :type int :default 1 :range [1]))\n  :inputs (video) (effect blur video))',
        1,
        53,
        ":range is [low high], two numbers",
    ),
    # syntax
    (V + "(effect blur video)", 1, 1, "'(' is never closed"),
    (V + '(effect blur video :label "\\q"))', 2, 30, "unknown escape"),
    (V + '(effect blur video)) (recipe "y")', 2, 24, "holds more than a recipe"),
    ('(effect blur (source :input "v"))', 1, 1, 'one (recipe "name" …) form'),
]


@pytest.mark.parametrize(("text", "line", "column", "words"), HOSTILE, ids=[f"h{i}" for i in range(len(HOSTILE))])
def test_hostile_and_wrong_recipes_end_in_a_clear_error_with_where(
    text: str, line: int, column: int, words: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(text)
    message = info.value.message
    assert words in message, message
    found = re.search(r"line (\d+), column (\d+)", message)
    assert found is not None, f"no position in {message!r}"
    if column:  # 0: a reader limit, found wherever the text first exceeds it
        assert (int(found.group(1)), int(found.group(2))) == (line, column), message
    else:
        assert int(found.group(1)) == line, message


def test_reader_errors_are_syntax_errors_and_meaning_errors_are_not() -> None:
    with pytest.raises(SyntaxInputError):
        parse_recipe('(recipe "x" (effect')
    with pytest.raises(InvalidInputError) as info:
        parse_recipe('(recipe "x" :inputs (video) (blur video))')
    assert not isinstance(info.value, SyntaxInputError) and info.value.field == "recipe"


def test_evaluation_has_a_hard_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without loops or user functions a text evaluates each value about once: the reader's limit on
    # values keeps any recipe far inside the budget, which stays as a guard.
    many = " ".join(f"(def v{k} (+ 1 2 3 4 5 6 7 {k}))" for k in range(1500))
    text = f'(recipe "x" :inputs (video)\n{many}\n(effect blur video))'
    assert parse_recipe(text).steps[0].type == "EFFECT"
    assert MAX_EVAL_STEPS > 20_000 * 3
    monkeypatch.setattr(recipe_sexp, "MAX_EVAL_STEPS", 5000)
    with pytest.raises(
        InvalidInputError, match=r"line 2, column \d+: the recipe takes more than 5,000 evaluation steps"
    ):
        parse_recipe(text)


def test_more_steps_than_a_recipe_may_have_are_refused() -> None:
    chain = "(-> video " + " ".join(["invert"] * 10_001) + ")"
    with pytest.raises(InvalidInputError, match=r"line 1, column \d+: the recipe makes more than 10,000 steps"):
        parse_recipe(f'(recipe "x" :inputs (video) {chain})')


def test_the_command_line_passes_an_s_expression_recipe_through() -> None:
    from artdag_cli.main import apply_params
    from artdag_common.errors import ArtdagError

    text = EXAMPLES["resize"]
    assert apply_params(text, []) == text, "sent as written: the server reads it"
    with pytest.raises(ArtdagError, match=r"-p sets STEP.KEY in a YAML recipe.*:params defaults"):
        apply_params(text, [("small.width", "64")])


def test_mutated_s_expression_recipes_are_refused_with_where_never_crash() -> None:
    """The examples and recipes above, with tokens deleted, inserted, replaced and swapped (a fixed
    seed: the same texts each run): each parses, or raises an `InvalidInputError` naming line and
    column; nothing else escapes."""
    import random

    texts = list(EXAMPLES.values())
    texts.append(
        """(recipe "s" :inputs ((video :type video) (music :type audio)) :params ((w :type int :default 64))
             (def listen (analyze music :features [beats energy]))
             (stage :a :outputs [cut] (def cut (sequence (slice-on video listen :times beats :effect blur))))
             (stage :b :requires [:a] :inputs [cut]
               (effect bloom (resize cut w (* w 0.75)) :intensity (bind listen :feature energy :range [0 1]))))"""
    )
    odd = ["(", ")", "[", "]", "{", "}", ":x", "nil", "true", "1e308", "-0.0", "0", "-1", '"a"', "video", "->"]
    odd += ["def", "stage", ":requires", ":outputs", "(fn [a] a)", "(/ 1 0)", "(list)", "[]", "{}", "(if)", "(->)"]
    odd += ['(source :path "/etc/passwd")', "(include :cid x)", ":cid", f'"{CID}"', "(bind x :feature energy)"]
    rng = random.Random(11)
    token = re.compile(r'"[^"]*"|[()\[\]{}]|[^\s()\[\]{}"]+')
    refused = 0
    for _ in range(1500):
        tokens = token.findall(rng.choice(texts))
        for _ in range(rng.randint(1, 4)):
            i, j = rng.randrange(len(tokens)), rng.randrange(len(tokens))
            roll = rng.random()
            if roll < 0.3:
                del tokens[i]
            elif roll < 0.6:
                tokens.insert(i, rng.choice(odd))
            elif roll < 0.8:
                tokens[i] = rng.choice(odd)
            else:
                tokens[i], tokens[j] = tokens[j], tokens[i]
        text = " ".join(tokens)
        try:
            parse_recipe(text)
        except InvalidInputError as exc:
            refused += 1
            assert re.search(r"line \d+, column \d+", exc.message), (exc.message, text)
    assert refused > 1000, "most mutations break the recipe"
