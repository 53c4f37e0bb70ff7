"""The original engine's effects: neon_glow, fisheye, ascii_zones, crt, color_adjust, mirror's flip,
ascii_art's detailed ramp, and the original names accepted as aliases of today's effects."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from artdag_common.errors import InvalidInputError
from artdag_common.ids import step_id
from artdag_common.operations import OPERATIONS, EffectConfig
from artdag_common.recipe import parse_recipe
from artdag_effects import available_effects, get_effect
from artdag_effects.font import RAMPS, glyph_bitmap, glyph_masks
from artdag_effects.registry import ALIASES, available_aliases, resolve_alias, resolve_effect_config
from services.planner.planning import build_plan

from .helpers import Frame, frames, run, run1, sample_frame

CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


def grey(value: int, height: int = 21, width: int = 35) -> Frame:
    return np.full((height, width, 3), value, dtype=np.uint8)


# --- neon_glow ----------------------------------------------------------------------------------


def _step_edge() -> Frame:
    frame = grey(0, 24, 32)
    frame[:, 16:] = 120  # one vertical edge between columns 15 and 16
    return frame


def test_neon_glow_lights_edges_in_its_colour_and_keeps_flat_areas_dimmed() -> None:
    frame = _step_edge()
    params = {"color": [255, 0, 0], "strength": 3, "background": 0.5, "intensity": 0, "threshold": 0}
    out = run1("neon_glow", frame, params)
    edge = out[12, 15].astype(int)
    assert edge[0] == 255 and edge[1] == 0 and edge[2] == 0  # the line: pure light of the colour
    np.testing.assert_array_equal(out[:, :8], 0)  # flat black stays black
    np.testing.assert_array_equal(out[:, 24:], 60)  # flat grey is the picture dimmed to half
    assert out[12, 15, 0] > out[12, 4, 0] and out[12, 16, 0] > out[12, 28, 0]


def test_neon_glow_halo_spreads_with_intensity() -> None:
    frame = _step_edge()
    bare = run1("neon_glow", frame, {"color": [0, 255, 0], "background": 0, "intensity": 0})
    glowing = run1("neon_glow", frame, {"color": [0, 255, 0], "background": 0, "intensity": 2, "glow": 3})
    assert bare[12, 11, 1] == 0 and glowing[12, 11, 1] > 0  # 4 px from the edge: lit only by the halo
    assert (glowing[..., 0] == 0).all() and (glowing[..., 2] == 0).all()  # green light adds no red or blue


def test_neon_glow_rejects_a_bad_colour_naming_it() -> None:
    with pytest.raises(InvalidInputError) as info:
        run1("neon_glow", sample_frame(), {"color": [300, 0, 0]})
    assert info.value.field is not None and info.value.field.startswith("params.color")


# --- fisheye ------------------------------------------------------------------------------------


def _vertical_line(x: int, height: int = 31, width: int = 41) -> Frame:
    frame = grey(0, height, width)
    frame[:, x] = 255
    return frame


def _line_column(frame: Frame, row: int) -> int:
    return int(np.argmax(frame[row, :, 0]))


def test_fisheye_keeps_the_centre_and_corners_and_bends_straight_lines() -> None:
    frame = sample_frame(31, 41)
    out = run1("fisheye", frame, {"strength": 0.6})
    np.testing.assert_array_equal(out[15, 20], frame[15, 20])  # the centre pixel is where it was
    for y, x in ((0, 0), (0, 40), (30, 0), (30, 40)):
        np.testing.assert_array_equal(out[y, x], frame[y, x])
    bulged = run1("fisheye", _vertical_line(28), {"strength": 0.6})
    # Near the centre the picture is magnified: the line sits farther out than at the top.
    assert _line_column(bulged, 15) > _line_column(bulged, 0) >= 28
    pinched = run1("fisheye", _vertical_line(28), {"strength": -0.6})
    assert _line_column(pinched, 15) < _line_column(pinched, 0) <= 28


def test_fisheye_moves_its_centre() -> None:
    frame = sample_frame(31, 41)
    out = run1("fisheye", frame, {"strength": 0.8, "center_x": 0.25, "center_y": 0.5})
    np.testing.assert_array_equal(out[15, 10], frame[15, 10])
    assert not np.array_equal(out[15, 20], frame[15, 20])


def test_fisheye_rejects_an_out_of_range_strength_naming_it() -> None:
    with pytest.raises(InvalidInputError) as info:
        run1("fisheye", sample_frame(), {"strength": 2})
    assert info.value.field == "params.strength"


# --- ascii_zones and ascii_art detailed ------------------------------------------------------------


def _cell_glyph(out: Frame, row: int, col: int, cell: int = 7) -> np.ndarray:
    width = 5  # a 7-pixel cell is 5 wide: the font's own size, so glyphs are drawn 1:1
    return out[row * cell : (row + 1) * cell, col * width : (col + 1) * width, 0] > 0


def test_ascii_zones_draws_dark_cells_from_one_ramp_and_light_cells_from_the_other() -> None:
    frame = grey(40, 7, 20)
    frame[:, 10:] = 220  # two dark cells, then two light ones
    params = {"cell": 7, "dark_charset": "binary", "light_charset": "blocks", "color": "white"}
    out = run1("ascii_zones", frame, params)
    # 40 of 0..128 is the lower half of "01"; (220 − 128) of 128..255 is the fourth of " ░▒▓█".
    np.testing.assert_array_equal(_cell_glyph(out, 0, 0), glyph_bitmap("0"))
    np.testing.assert_array_equal(_cell_glyph(out, 0, 3), glyph_bitmap("▓"))
    assert set(np.unique(out).tolist()) <= {0, 255}
    everything_dark = run1("ascii_zones", frame, {**params, "threshold": 255})
    np.testing.assert_array_equal(_cell_glyph(everything_dark, 0, 3), glyph_bitmap("1"))


def test_ascii_zones_rejects_an_unknown_charset_naming_it() -> None:
    with pytest.raises(InvalidInputError) as info:
        run1("ascii_zones", sample_frame(), {"light_charset": "emoji"})
    assert info.value.field == "params.light_charset"


def _grey_steps(levels: int) -> Frame:
    values = np.rint((np.arange(levels) + 0.5) * 256 / levels - 0.5).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(np.repeat(values, 5)[None, :, None], 7, axis=0).repeat(3, axis=2))


def test_ascii_art_detailed_uses_the_seventy_character_ramp() -> None:
    ramp = RAMPS["detailed"]
    assert len(ramp) == 70 and len(set(ramp)) == 70 and ramp[0] == " " and ramp[-1] == "$"
    frame = _grey_steps(70)
    out = run1("ascii_art", frame, {"cell": 7, "charset": "detailed", "color": "white"})
    for i, char in enumerate(ramp):
        np.testing.assert_array_equal(_cell_glyph(out, 0, i), glyph_bitmap(char), err_msg=f"cell {i} ({char!r})")
    standard = run1("ascii_art", frame, {"cell": 7, "charset": "standard", "color": "white"})
    distinct = {_cell_glyph(standard, 0, i).tobytes() for i in range(70)}
    assert len(distinct) == len(RAMPS["standard"]) < 70


def test_every_glyph_of_the_detailed_ramp_is_distinct() -> None:
    masks = glyph_masks(RAMPS["detailed"], 7, 5)
    assert len({m.tobytes() for m in masks}) == 70


# --- mirror's flip mode, crt, color_adjust ---------------------------------------------------------


@pytest.mark.parametrize(
    ("axis", "flip"),
    [("horizontal", (slice(None), slice(None, None, -1))), ("vertical", (slice(None, None, -1),))],
)
def test_mirror_flip_mode_flips_the_whole_frame(axis: str, flip: tuple[slice, ...]) -> None:
    frame = sample_frame(37, 53)
    np.testing.assert_array_equal(run1("mirror", frame, {"mode": "flip", "axis": axis}), frame[flip])
    both = run1("mirror", frame, {"mode": "flip", "axis": "both"})
    np.testing.assert_array_equal(both, frame[::-1, ::-1])


def test_mirror_half_mode_is_still_the_default() -> None:
    frame = sample_frame(37, 53)
    out = run1("mirror", frame)
    np.testing.assert_array_equal(out[:, :26], frame[:, :26])
    np.testing.assert_array_equal(out[:, 27:], frame[:, :26][:, ::-1])
    np.testing.assert_array_equal(out, run1("mirror", frame, {"mode": "half"}))


def test_mirror_rejects_an_unknown_mode_naming_it() -> None:
    with pytest.raises(InvalidInputError) as info:
        run1("mirror", sample_frame(), {"mode": "rotate"})
    assert info.value.field == "params.mode"


def test_crt_darkens_every_scanline_and_the_corners() -> None:
    out = run1("crt", grey(200, 21, 35), {"scanlines": 0.5, "spacing": 3, "vignette": 0.5})
    # Rows 8 and 12 lie as far from the centre row (10); row 8 is a scanline (every third row, 3k + 2).
    assert out[8, 17, 0] < out[12, 17, 0]
    assert out[0, 0, 0] < out[10, 17, 0]  # a corner is darker than the centre
    plain = run1("crt", grey(200, 21, 35), {"scanlines": 0, "vignette": 0.5})
    assert plain[8, 17, 0] == plain[12, 17, 0]
    assert plain[10, 17, 0] == 200


def test_color_adjust_is_brightness_contrast_then_saturation_at_gamma_one() -> None:
    frame = sample_frame()
    out = run1("color_adjust", frame, {"brightness": 0.1, "contrast": 1.3, "saturation": 1.6, "gamma": 1})
    graded = run1("brightness_contrast", frame, {"brightness": 0.1, "contrast": 1.3})
    np.testing.assert_array_equal(out, run1("saturation", graded, {"amount": 1.6}))


def test_color_adjust_gamma_lifts_the_mid_tones_and_keeps_the_ends() -> None:
    ramp = np.array([[[0, 0, 0], [128, 128, 128], [255, 255, 255]]], dtype=np.uint8)
    out = run1("color_adjust", ramp, {"contrast": 1, "saturation": 1, "gamma": 2})
    assert out[0, 0, 0] == 0 and out[0, 1, 0] > 160 and out[0, 2, 0] == 255


# --- aliases: the original names ----------------------------------------------------------------

# Each alias with original parameters, and what it must equal: the canonical effect and params.
EQUIVALENT: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("brightness", {"amount": 51}, "brightness_contrast", {"brightness": 0.2, "contrast": 1}),
    ("contrast", {"amount": 1.5}, "brightness_contrast", {"brightness": 0, "contrast": 1.5}),
    (
        "pixelsort",
        {"lower_threshold": 0.2, "upper_threshold": 0.9, "sort_by": "hue", "angle": 90, "reverse": True},
        "pixel_sort",
        {"low": 51, "high": 230, "key": "hue", "direction": "vertical", "reverse": True},
    ),
    (
        "ripple",
        {"amplitude": 0.05, "wavelength": 0.3, "speed": 2},
        "wave",
        {"amplitude": 0.05, "wavelength": 0.3, "speed": 2, "mode": "ripple"},
    ),
    ("outline", {"strength": 2, "invert": True}, "edge_detect", {"strength": 2, "invert": True}),
    ("noise", {"amount": 30}, "film_grain", {"amount": 0.3, "size": 1, "monochrome": False}),
    ("flip", {"direction": "vertical"}, "mirror", {"mode": "flip", "axis": "vertical"}),
    (
        "color-adjust",
        {"brightness": -0.1, "contrast": 1.2, "saturation": 0.5, "gamma": 1.4},
        "color_adjust",
        {"brightness": -0.1, "contrast": 1.2, "saturation": 0.5, "gamma": 1.4},
    ),
]


def run_alias(
    name: str, inputs: list[Frame], params: dict[str, Any], bindings: dict[str, Any] | None = None
) -> list[Frame]:
    """Render a step that names an original effect, resolved as a planner resolves it."""
    effect, canonical, moved = resolve_alias(name, params, bindings or {})
    return run(effect, inputs, canonical, moved)


def test_the_table_covers_every_original_name_and_hides_no_effect() -> None:
    originals = {"brightness", "contrast", "pixelsort", "ripple", "outline", "noise", "crt", "flip", "color-adjust"}
    assert originals <= set(ALIASES) | set(available_effects())
    assert {"neon_glow", "fisheye", "ascii_zones"} <= set(available_effects())
    assert available_aliases() == dict(ALIASES)
    assert not set(ALIASES) & set(available_effects())
    assert {name for name, *_ in EQUIVALENT} == set(ALIASES)


@pytest.mark.parametrize(("alias", "params", "effect", "canonical"), EQUIVALENT, ids=[e[0] for e in EQUIVALENT])
def test_an_alias_renders_exactly_what_its_canonical_effect_renders(
    alias: str, params: dict[str, Any], effect: str, canonical: dict[str, Any]
) -> None:
    seq = frames(3)
    expected = run(effect, seq, canonical)
    for got, want in zip(run_alias(alias, seq, params), expected, strict=True):
        assert got.tobytes() == want.tobytes()
    defaults = run_alias(alias, seq, {})
    assert any(not np.array_equal(a, b) for a, b in zip(seq, defaults, strict=True)), "defaults act"


@pytest.mark.parametrize(("alias", "params", "effect", "canonical"), EQUIVALENT, ids=[e[0] for e in EQUIVALENT])
def test_both_spellings_normalise_to_one_config_and_one_step_id(
    alias: str, params: dict[str, Any], effect: str, canonical: dict[str, Any]
) -> None:
    original = EffectConfig.model_validate({"effect": alias, "params": params}).model_dump(mode="json")
    direct = EffectConfig.model_validate({"effect": effect, "params": canonical}).model_dump(mode="json")
    assert original["effect"] == effect
    assert original == direct
    version = OPERATIONS["EFFECT"].op_version
    assert step_id("EFFECT", original, ["in"], version) == step_id("EFFECT", direct, ["in"], version)


def test_a_recipe_naming_an_original_effect_plans_the_canonical_steps() -> None:
    def recipe(effect: str, params: str) -> str:
        return f"""
name: sorted
inputs: [video]
steps:
  - {{id: fx, type: EFFECT, inputs: [video], config: {{effect: {effect}, params: {params}}}}}
output: fx
"""

    original = parse_recipe(recipe("pixelsort", "{lower_threshold: 0.2, upper_threshold: 0.9, angle: 90}"))
    direct = parse_recipe(recipe("pixel_sort", "{low: 51, high: 230, direction: vertical}"))
    assert original.steps[0].config == direct.steps[0].config
    first, second = build_plan(original, {"video": CID}), build_plan(direct, {"video": CID})
    assert first.output_step == second.output_step


def test_a_recipe_binding_an_original_parameter_to_analysis_moves_the_binding() -> None:
    parsed = parse_recipe("""
inputs: {video: {type: video}, audio: {type: audio}}
steps:
  - {id: listen, type: ANALYZE, inputs: [audio], config: {features: [energy]}}
  - id: fx
    type: EFFECT
    inputs: [video]
    config: {effect: brightness, bindings: {amount: {analysis: listen, feature: energy, range: [0, 51]}}}
output: fx
""")
    config = parsed.steps[-1].config
    assert config["effect"] == "brightness_contrast"
    assert config["bindings"]["brightness"]["range"] == [0.0, 0.2]
    assert config["bindings"]["brightness"]["analysis"] == "listen"


def test_a_recipe_error_in_an_original_parameter_names_it() -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_recipe("""
inputs: [video]
steps:
  - {id: fx, type: EFFECT, inputs: [video], config: {effect: brightness, params: {amount: 300}}}
output: fx
""")
    assert "amount" in str(info.value.field) and "255" in info.value.message


@pytest.mark.parametrize(
    ("alias", "binding", "effect", "canonical"),
    [
        ("brightness", {"amount": {"range": [0, 255]}}, "brightness_contrast", {"brightness": {"range": [0, 1]}}),
        ("noise", {"amount": {"range": [100, 0]}}, "film_grain", {"amount": {"range": [1, 0]}}),
        ("pixelsort", {"lower_threshold": {}}, "pixel_sort", {"low": {"range": [0, 255]}}),
        ("ripple", {"amplitude": {"range": [0, 0.1]}}, "wave", {"amplitude": {"range": [0, 0.1]}}),
    ],
)
def test_a_bound_original_parameter_renders_as_the_bound_canonical_one(
    alias: str, binding: dict[str, Any], effect: str, canonical: dict[str, Any]
) -> None:
    shape = {"events": [0.02, 0.1], "decay": 0.05}
    seq = frames(5)
    got = run_alias(alias, seq, {}, {name: {**shape, **b} for name, b in binding.items()})
    _, fixed, _ = resolve_alias(alias, {}, {})
    want = run(effect, seq, fixed, {name: {**shape, **b} for name, b in canonical.items()})
    for a, b in zip(got, want, strict=True):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    ("alias", "params", "bindings", "field", "words"),
    [
        ("brightness", {"amount": 300}, {}, "params.amount", "255"),
        ("pixelsort", {"sort_by": "luma"}, {}, "params.sort_by", "lightness"),
        ("pixelsort", {"angle": 45}, {}, "params.angle", "90"),
        ("noise", {"strength": 3}, {}, "params.strength", "unknown parameter"),
        ("flip", {}, {"direction": {"events": [0.0]}}, "bindings.direction", "cannot be bound"),
        ("contrast", {}, {"gain": {"events": [0.0]}}, "bindings.gain", "no parameter"),
    ],
)
def test_alias_errors_name_the_original_parameter(
    alias: str, params: dict[str, Any], bindings: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        resolve_alias(alias, params, bindings)
    assert info.value.field == field
    assert words in info.value.message
    with pytest.raises(ValueError, match=words):
        EffectConfig.model_validate({"effect": alias, "params": params, "bindings": bindings})


def test_names_that_are_not_aliases_pass_through_untouched() -> None:
    config = {"effect": "blur", "params": {"radius": 2}, "bindings": {}, "frames": [0, 10]}
    assert resolve_effect_config(config) == config
    assert resolve_alias("no_such_effect", {"x": 1}, {}) == ("no_such_effect", {"x": 1}, {})
    resolved = resolve_effect_config({"effect": "flip", "params": {}, "frames": [0, 10]})
    assert resolved["effect"] == "mirror" and resolved["frames"] == [0, 10]


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_aliases_render_deterministically(name: str) -> None:
    seq = frames(4)
    for a, b in zip(run_alias(name, seq, {}), run_alias(name, seq, {}), strict=True):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("name", ["neon_glow", "fisheye", "ascii_zones", "crt", "color_adjust"])
def test_new_effects_are_deterministic_and_bindable(name: str) -> None:
    seq = frames(4)
    spec = get_effect(name)
    bindings = {p: {"events": [0.03], "decay": 0.05} for p in spec.numeric_params()}
    assert bindings, "every new effect has a parameter analysis can drive"
    first = run(name, seq, {}, bindings, seed=7)
    for a, b in zip(first, run(name, seq, {}, bindings, seed=7), strict=True):
        assert a.tobytes() == b.tobytes()
    assert any(not np.array_equal(a, b) for a, b in zip(first, run(name, seq, seed=7), strict=True))
