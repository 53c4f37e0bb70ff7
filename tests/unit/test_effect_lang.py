"""Effects users write (`define-effect`): what they compute, and hostile effects ending in clear errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import BaseModel, ValidationError

from artdag_common.errors import InvalidMediaError
from artdag_common.sexp import SexpError
from artdag_effects import lang
from artdag_effects.lang import MAX_NODES, UserEffect, compile_effect
from artdag_effects.spec import EffectSetup, Frame, FrameContext

RNG = np.random.default_rng(5)
FRAME: Frame = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)


def render(effect: UserEffect, frame: Frame = FRAME, index: int = 0, *, seed: int = 7, **params: object) -> Frame:
    spec = effect.spec("QmUserEffect")
    values: BaseModel = spec.params_model(**params)
    run = spec.factory(values, EffectSetup(frame.shape[1], frame.shape[0], 25.0, seed))
    return run(frame, FrameContext(index, index / 25.0, values))


def test_a_pointwise_effect_matches_its_formula() -> None:
    assert np.array_equal(render(compile_effect("(define-effect negative (- 255 frame))")), 255 - FRAME)
    levels = compile_effect(
        "(define-effect levels :params ((gain :default 1.5 :range [0 4])) (clamp (* frame gain) 0 255))"
    )
    expected = np.clip(np.rint(FRAME.astype(np.float32) * 1.5), 0, 255).astype(np.uint8)
    assert np.array_equal(render(levels), expected)
    assert np.array_equal(render(levels, gain=0.5), np.rint(FRAME * 0.5).astype(np.uint8))


def test_parameters_are_typed_and_bounded() -> None:
    tint = compile_effect(
        """(define-effect tint
             :description "towards a colour"
             :params ((amount :default 0.5 :range [0 1] :desc "how far")
                      (color :type color :default [255 0 0]))
             (mix frame color amount))"""
    )
    model = tint.spec("QmTint").params_model
    assert model().model_dump() == {"amount": 0.5, "color": (255, 0, 0)}
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        model(amount=2)
    with pytest.raises(ValidationError):
        model(color=(300, 0, 0))
    with pytest.raises(ValidationError, match="Extra inputs"):
        model(size=3)
    out = render(tint, amount=1.0, color=(0, 0, 255))
    assert (out == np.array([0, 0, 255], np.uint8)).all()
    # The original's positional form: (define-effect name ((param default) …) body).
    old = compile_effect("(define-effect brighten ((amount 20)) (+ frame amount))")
    assert np.array_equal(render(old), np.clip(FRAME.astype(int) + 20, 0, 255).astype(np.uint8))


def test_place_colour_neighbourhood_and_let() -> None:
    identity = compile_effect("(define-effect same (sample frame x y))")
    assert np.array_equal(render(identity), FRAME)
    kernel = compile_effect("(define-effect k (convolve frame [[0 0 0] [0 1 0] [0 0 0]]))")
    assert np.array_equal(render(kernel), FRAME)
    vignette = compile_effect("(define-effect v (let [d (+ (* cx cx) (* cy cy))] (* frame (- 1 (* 0.25 d)))))")
    h, w = FRAME.shape[:2]
    cx = (np.arange(w, dtype=np.float32) / (w - 1) * 2 - 1)[None, :, None]
    cy = (np.arange(h, dtype=np.float32) / (h - 1) * 2 - 1)[:, None, None]
    expected = np.clip(np.rint(FRAME * (1 - 0.25 * (cx * cx + cy * cy))), 0, 255).astype(np.uint8)
    assert np.abs(render(vignette).astype(int) - expected).max() <= 1
    gray = render(compile_effect("(define-effect g (gray frame))"))
    assert (gray[:, :, 0] == gray[:, :, 2]).all() and (gray[:, :, 1] == gray[:, :, 0]).all()
    round_trip = render(compile_effect("(define-effect h (hsv->rgb (rgb->hsv frame)))"))
    assert np.abs(round_trip.astype(int) - FRAME).max() <= 1
    swapped = render(compile_effect("(define-effect s (rgb b g r))"))
    assert np.array_equal(swapped, FRAME[:, :, ::-1])


def test_noise_is_seeded_from_the_step_and_new_every_frame() -> None:
    grain = compile_effect("(define-effect grain (+ frame (* 60 (- (noise 3) 0.5))))")
    first = render(grain, index=0)
    assert np.array_equal(first, render(grain, index=0)), "the same step and frame, the same grain"
    assert not np.array_equal(first, render(grain, index=1))
    assert not np.array_equal(first, render(grain, index=0, seed=8))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("(define-effect x (os.system frame))", "unknown function 'os.system'"),
        ("(define-effect x frame.__class__)", "unknown name 'frame.__class__'"),
        ("(define-effect x (__import__ 1))", "unknown function '__import__'"),
        ("(define-effect x (x frame))", "unknown function 'x'"),  # no recursion: effects are no functions
        ('(define-effect x (+ frame "a"))', "only numbers"),
        ("(define-effect x (let [frame 1] frame))", "plain names"),
        ("(define-effect x (sqrt))", "takes 1 arguments, not 0"),
        ("(define-effect x :params ((k :default 5 :range [0 1])) frame)", "outside its range"),
        ("(define-effect x :params ((frame :default 1)) frame)", "cannot name a parameter"),
        ("(define-effect x (blur frame 1) (blur frame 2))", "body is one expression"),
        ("(define-effect x (convolve frame [[1 1] [1]]))", "a vector holds"),
        ("(recipe x)", "an effect is (define-effect"),
        ("(define-effect x (* frame [1 2]))", "could not be broadcast"),  # two channels: never a frame
        ("(define-effect X frame)", "lower-case name"),
        ("(define-effect x " + "(blur " * 30 + "frame" + " 3)" * 30 + ")", "full-frame passes"),
        ("(define-effect x " + "(+ 1 " * 70 + "frame" + ")" * 70 + ")", "nested deeper"),
        ("(define-effect x (+ " + " 1" * (MAX_NODES + 5) + "))", "larger than"),
    ],
)
def test_hostile_or_wrong_effects_are_refused_with_where_and_why(text: str, words: str) -> None:
    with pytest.raises(SexpError) as raised:
        compile_effect(text)
    assert words in raised.value.message, raised.value.message
    assert raised.value.message.startswith("line ")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("(/ frame 0)", "not a number"),  # inf, and 0/0 NaN
        ("(log (- frame 300))", "not a number"),
        ("(pow frame 1000)", "not a number"),
    ],
)
def test_values_that_are_no_frame_fail_it_with_the_effects_name(body: str, words: str) -> None:
    effect = compile_effect(f"(define-effect broken {body})")
    with pytest.raises(InvalidMediaError, match=words):
        render(effect, frame=FRAME)


def test_a_remap_reads_where_it_says_and_one_channel_of_it_reads_alike() -> None:
    w = FRAME.shape[1]
    shift = compile_effect(f"(define-effect s (rgb (channel (sample frame (+ x {1 / (w - 1)!r}) y) 0) g b))")
    out = render(shift)
    assert np.array_equal(out[:, :-1, 0], FRAME[:, 1:, 0]), "red read one pixel to the right"
    assert np.array_equal(out[:, -1, 0], FRAME[:, -1, 0]), "clamped at the edge"
    assert np.array_equal(out[:, :, 1:], FRAME[:, :, 1:])
    whole = compile_effect(f"(define-effect s (sample frame (+ x {1 / (w - 1)!r}) y))")
    assert np.array_equal(render(whole)[:, :, 0], out[:, :, 0])


def test_the_gateway_bounds_a_source_as_the_loader_does() -> None:
    from artdag_effects.user import MAX_SOURCE_BYTES
    from services.gateway.effects import MAX_SOURCE_BYTES as GATEWAY_LIMIT

    assert GATEWAY_LIMIT == MAX_SOURCE_BYTES


def test_a_user_effect_is_registered_only_under_the_cid_of_its_bytes() -> None:
    from artdag_common.cid import cid_of_bytes
    from artdag_common.errors import InvalidInputError
    from artdag_effects import UnknownEffectError, get_effect
    from artdag_effects.user import effect_cids, register_user_effect

    source = b"(define-effect halve (* frame 0.5))"
    cid = cid_of_bytes(source)
    with pytest.raises(UnknownEffectError, match="no effect source with that CID"):
        get_effect(cid)
    with pytest.raises(InvalidInputError, match="do not hash to that CID"):
        register_user_effect(cid, source + b" ; tampered")
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        bad = b"\xff\xfe"
        register_user_effect(cid_of_bytes(bad), bad)
    broken = b"(define-effect broken (nothing))"
    with pytest.raises(InvalidInputError, match=r"line 1, column 24: unknown function"):
        register_user_effect(cid_of_bytes(broken), broken)
    spec = register_user_effect(cid, source)
    assert get_effect(cid) is spec and spec.name == cid
    v1 = cid_of_bytes(source, 1)
    assert register_user_effect(v1, source).name == v1, "a CIDv1 of the same bytes works too"
    config = {"configs": [{"effect": cid, "params": {}}, {"effect": "invert"}], "effect": v1}
    assert effect_cids(config) == {cid, v1}


# -- fast paths: each gives the general evaluation's pixels (exactly, or within 1 where it rounds) --

VIGNETTE = """(define-effect vignette-written
  :params ((strength :default 0.6 :range [0 1]) (radius :default 0.6 :range [0 1.5])
           (softness :default 0.5 :range [0.01 2]))
  (let [d (sqrt (/ (+ (* cx cx) (* cy cy)) 2))
        k (clamp (/ (- d radius) softness) 0 1)]
    (* frame (- 1 (* strength k k (- 3 (* 2 k)))))))"""
SPLIT = """(define-effect split :params ((distance :default 0.01 :range [0 0.2]))
  (rgb (channel (sample frame (- x distance) y) 0) g (channel (sample frame (+ x distance) y) 2)))"""
TINT = "(define-effect tint :params ((amount :default 0.5 :range [0 1]) (color :default [255 128 0]))"
GAIN = "(define-effect gain :params ((gain :default 1.5 :range [0 4]))"


def _frames() -> list[Frame]:
    rng = np.random.default_rng(11)
    edged = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    edged[::7] = 0
    edged[:, ::5] = 255
    return [
        edged,
        rng.integers(0, 256, (5, 7, 3), dtype=np.uint8),  # odd sizes
        rng.integers(0, 256, (1, 1, 3), dtype=np.uint8),
        rng.integers(0, 256, (1, 7, 3), dtype=np.uint8),  # one row
        np.zeros((6, 9, 3), np.uint8),
        np.full((6, 9, 3), 255, np.uint8),
    ]


# (effect, parameter values to try, how far a fast path may round from the general evaluation)
FAST_CASES: list[tuple[str, list[dict[str, Any]], int]] = [
    # a table per channel, bit-exact: integer passes for ramps (invert, brightness, clamps), else a lookup
    ("(define-effect a (- 255 frame))", [{}], 0),
    ("(define-effect a (+ frame 20))", [{}], 0),
    ("(define-effect a (clamp (- 300 frame) 40 220))", [{}], 0),
    ("(define-effect a (+ frame 0))", [{}], 0),
    (f"{GAIN} (* frame gain))", [{"gain": 0.0}, {"gain": 0.5}, {"gain": 4.0}], 0),
    (f"{TINT} (mix frame color amount))", [{"amount": 0.0}, {"amount": 1.0, "color": (0, 255, 7)}], 0),
    ("(define-effect a (+ frame (* 10 t) i))", [{}], 0),
    ("(define-effect a (+ frame (/ width 10) height))", [{}], 0),
    # frame·gain + offset in fixed point
    (VIGNETTE, [{}, {"strength": 1.0, "radius": 0.0, "softness": 0.01}, {"strength": 0.0}, {"radius": 1.5}], 1),
    (f"{TINT} (mix frame color (* x amount)))", [{}, {"amount": 1.0, "color": (255, 255, 255)}], 1),
    ("(define-effect a (- (* frame (+ 1 cx)) (* 40 cy)))", [{}], 1),
    ("(define-effect a (/ (* 2 frame y) 1.5))", [{}], 1),
    ("(define-effect a (+ (- frame) (* 1.2 (+ frame)) (* y 30)))", [{}], 1),
    ("(define-effect a (* frame (* x (+ 1 (sin t)))))", [{}], 1),
    # channels copied and remapped, whole-frame remaps
    (SPLIT, [{"distance": 0.0}, {"distance": 0.01}, {"distance": 0.2}], 1),
    ("(define-effect a (rgb r 128 (channel (sample frame x (- 1 y)) 2)))", [{}], 0),
    ("(define-effect a (sample frame (+ x 2) y))", [{}], 0),
    ("(define-effect a (sample frame (+ x (/ 3 (- width 1))) (- y (/ 2 (- height 1)))))", [{}], 0),
    ("(define-effect a (sample frame x (+ y 0.3)))", [{}], 1),
    ("(define-effect a (rgb (sample r (- x 0.5) y) g (sample b x (+ y 0.25))))", [{}], 1),
    ("(define-effect a (sample frame (* x 0.5) y))", [{}], 1),
    ("(define-effect a (sample frame (+ x 0.013) (- y 0.02)))", [{}], 1),
    ("(define-effect a (rgb (sample g (* x x) (* y y)) (* x 255) b))", [{}], 1),
]


def _no_general_evaluation(*_args: object) -> Frame:
    raise AssertionError("the general evaluation ran: the fast path declined")


@pytest.mark.parametrize(("text", "tries", "tolerance"), FAST_CASES)
def test_each_fast_path_gives_the_general_evaluations_pixels(
    text: str, tries: list[dict[str, Any]], tolerance: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    effect = compile_effect(text)
    for frame in _frames():
        for params in tries:
            for index in (0, 7):
                with monkeypatch.context() as patch:
                    patch.setattr(lang, "_to_frame", _no_general_evaluation)
                    fast = render(effect, frame, index, **params)
                with monkeypatch.context() as patch:
                    patch.setattr(lang, "FAST_PATHS", False)
                    general = render(effect, frame, index, **params)
                assert fast.shape == general.shape and fast.dtype == np.uint8
                worst = int(np.abs(fast.astype(int) - general).max())
                assert worst <= tolerance, f"{frame.shape} {params} frame {index}: off by {worst}"


def test_a_run_follows_parameters_that_change_from_frame_to_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bound parameters: each fast path rebuilds what it derived when they change, and only then."""
    for text, key, values in [
        (SPLIT, "distance", [0.01, 0.05, 0.05, 0.0, 0.01]),
        (VIGNETTE, "strength", [0.2, 1, 0.2]),
    ]:
        effect = compile_effect(text)
        spec = effect.spec("QmBound")
        run = spec.factory(spec.params_model(), EffectSetup(FRAME.shape[1], FRAME.shape[0], 25.0, 7))
        for index, value in enumerate(values):
            chosen: dict[str, Any] = {key: value}
            params = spec.params_model(**chosen)
            out = run(FRAME, FrameContext(index, index / 25.0, params))
            with monkeypatch.context() as patch:
                patch.setattr(lang, "FAST_PATHS", False)
                general = render(effect, FRAME, index, **chosen)
            assert np.abs(out.astype(int) - general).max() <= 1, (text, value)
            assert np.array_equal(out, run(FRAME, FrameContext(index, index / 25.0, params))), "deterministic"


def test_the_fixed_point_rules_are_pinned() -> None:
    """The rounding each integer path uses, written out: the same on every machine and every run."""
    w = FRAME.shape[1]
    v = FRAME.astype(np.int64)
    # frame·gain + offset: (v·round(256·gain) + round(256·offset) + 128) >> 8, clipped.
    x = (np.arange(w, dtype=np.float32) / np.float32(w - 1)).reshape(1, w, 1)
    gain = np.rint((np.float32(1) - np.float32(0.5) * x).astype(np.float64) * 256).astype(np.int64)
    expected = np.clip((v * gain + round(-20.0 * 256) + 128) >> 8, 0, 255)
    out = render(compile_effect("(define-effect a (- (* frame (- 1 (* 0.5 x))) 20))"))
    assert np.array_equal(out, expected)
    # A remap a quarter pixel on: (p0·192 + p1·64 + 128) >> 8, the edge repeated.
    shifted = render(compile_effect("(define-effect a (sample frame (+ x (/ 0.25 (- width 1))) y))"))
    right = np.concatenate([v[:, 1:], v[:, -1:]], axis=1)
    assert np.array_equal(shifted, (v * 192 + right * 64 + 128) >> 8)
    # A table's form is found from the table alone: invert is one integer pass, the same pixels.
    assert np.array_equal(render(compile_effect("(define-effect a (- 255 frame))")), 255 - FRAME)
    same = compile_effect("(define-effect a (* frame 1))")
    assert render(same) is FRAME or np.array_equal(render(same), FRAME)


def test_time_and_size_in_a_colour_table_are_the_frames() -> None:
    flat = np.full((4, 6, 3), 100, np.uint8)
    later = render(compile_effect("(define-effect a (+ frame (* 10 t)))"), flat, index=50)  # t = 2 s
    assert (later == 120).all()
    assert (render(compile_effect("(define-effect a (+ frame width))"), flat) == 106).all()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("(/ frame cx)", "not a number"),  # a gain that is infinite at the middle column
        ("(rgb (sample r (/ x 0) y) g b)", "coordinates are not a number"),
        ("(sample frame (/ cx 0) y)", "coordinates are not a number"),
    ],
)
def test_a_fast_path_fails_a_frame_as_the_general_evaluation_does(body: str, words: str) -> None:
    effect = compile_effect(f"(define-effect broken {body})")
    with pytest.raises(InvalidMediaError, match=words):
        render(effect, frame=_frames()[1])


def test_a_table_pass_equals_the_lookup_whatever_form_the_table_has() -> None:
    from artdag_effects.imaging import apply_lut, table_pass

    v = np.arange(256)
    tables: list[npt.NDArray[Any]] = [v, 255 - v, np.clip(v + 40, 0, 255), np.clip(v - 40, 10, 200)]
    tables += [np.clip(300 - v, 0, 255)]
    tables += [np.clip(100 - v, 0, 255), np.full(256, 9), (v * 0.5).round(), np.where(v > 128, 255, 0)]
    tables += [np.random.default_rng(2).integers(0, 256, 256)]
    frame = _frames()[0]
    for table in tables:
        lut = table.astype(np.uint8)
        assert np.array_equal(table_pass(lut)(frame), apply_lut(frame, lut)), table[:8]
        per_channel = np.stack([lut, 255 - lut, lut])
        assert np.array_equal(table_pass(per_channel)(frame), apply_lut(frame, per_channel))
