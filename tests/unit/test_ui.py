"""The web UI's pure parts: plots, YAML highlighting, DAG elements, the client wheel, negotiation."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

import pytest

from artdag_common.examples import example_path
from artdag_common.recipe import parse_recipe
from artdag_common.schemas import Plan, PlanStep, RunState, StepState, StepStatus
from services.gateway.ui import dag, plots
from services.gateway.ui.client_wheel import MODULES, build_wheel, wheel_name
from services.gateway.ui.events import parse_after, run_of, sse_message
from services.gateway.ui.highlight import error_line, highlight_effect, highlight_recipe, highlight_yaml
from services.gateway.ui.negotiate import wants_html
from services.gateway.ui.render import ENV

RESULT = {
    "duration": 4.0,
    "features": ["beats", "energy", "spectrum", "scene_changes"],
    "audio": {
        "energy": {"times": [0.05 * i for i in range(80)], "values": [((i % 10) / 10) for i in range(80)]},
        "beats": {
            "tempo": 120.0,
            "beat_times": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5],
            "downbeat_times": [0.0, 2.0],
            "tempo_curve": {"times": [0.0, 2.0, 4.0], "bpm": [119.0, 120.0, 121.0]},
        },
        "spectrum": {
            "times": [0.1 * i for i in range(40)],
            "bands": {"bass": [0.5] * 40, "mid": [0.2] * 40},
            "band_ranges": {"bass": [20, 250], "mid": [250, 4000]},
        },
    },
    "video": {"scene_changes": {"times": [1.25, 3.0]}},
}


def test_energy_plot_draws_every_beat_downbeat_and_scene_change() -> None:
    svg = str(plots.energy_plot(RESULT))
    assert svg.count('class="beat"') == 8 and svg.count('class="downbeat"') == 2
    assert svg.count('class="scene"') == 2 and 'class="energy"' in svg
    # Beat at 2.0 s of 4.0 s sits half-way across the plot area.
    mid = plots.PAD_L + (plots.WIDTH - plots.PAD_L - plots.PAD_R) / 2
    assert f'x1="{round(mid, 1)}"' in svg


def test_spectrum_and_tempo_plots() -> None:
    spectrum = plots.spectrum_plot(RESULT)
    assert spectrum is not None
    svg, legend = spectrum
    assert str(svg).count("<polyline") == 2
    assert [(name, hz) for name, _, hz in legend] == [("bass", [20.0, 250.0]), ("mid", [250.0, 4000.0])]
    tempo = str(plots.tempo_plot(RESULT))
    assert "<polyline" in tempo and ">110<" in tempo and ">130<" in tempo


def _with_candidates(tempo: float, candidates: list[Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(RESULT))
    result["audio"]["beats"].update(tempo=tempo, tempo_candidates=candidates)
    return result


HALF_TIME = [{"bpm": 139.7, "confidence": 0.62}, {"bpm": 69.8, "confidence": 0.3}, {"bpm": 46.6, "confidence": 0.08}]


def test_tempo_levels_mark_the_one_the_beats_came_at() -> None:
    rows = plots.tempo_levels(_with_candidates(140.1, HALF_TIME))
    assert [(r["bpm"], r["confidence"], r["chosen"]) for r in rows] == [
        (139.7, 0.62, True),
        (69.8, 0.3, False),
        (46.6, 0.08, False),
    ]
    # A hint picked the second level: the beats (and the tempo, their curve's median) are at 70.
    assert [r["chosen"] for r in plots.tempo_levels(_with_candidates(70.2, HALF_TIME))] == [False, True, False]
    assert [r["chosen"] for r in plots.tempo_levels(_with_candidates(100.0, HALF_TIME))] == [False] * 3
    assert plots.tempo_levels(RESULT) == [] and plots.tempo_levels({}) == []
    assert plots.tempo_levels(_with_candidates(120.0, [])) == []
    odd = [{"bpm": "fast"}, {"bpm": 120.0}, "x", {"bpm": -3, "confidence": 1}]
    assert plots.tempo_levels(_with_candidates(120.0, odd)) == [{"bpm": 120.0, "confidence": None, "chosen": True}]


def test_the_analysis_page_lists_the_tempo_candidates_best_first() -> None:
    result = _with_candidates(70.2, HALF_TIME)
    analysis = {"name": "listen", "tempo_levels": plots.tempo_levels(result), "tempo_hint": 70}
    html = ENV.get_template("_tempo_levels.html").render(a=analysis)
    rows = re.findall(
        r'<tr class="(chosen)?" data-bpm="([0-9.]+)">\s*<td>(\d)</td>\s*<td><b>([0-9.]+)</b></td>\s*<td>(\d+%)', html
    )
    assert rows == [
        ("", "139.7", "1", "139.7", "62%"),
        ("chosen", "69.8", "2", "69.8", "30%"),
        ("", "46.6", "3", "46.6", "8%"),
    ]
    assert html.count("beats follow this") == 1 and "tempo hint (70 BPM)" in html
    unhinted = ENV.get_template("_tempo_levels.html").render(a={**analysis, "tempo_hint": None})
    assert "most likely level" in unhinted
    assert ENV.get_template("_tempo_levels.html").render(a={"name": "listen", "tempo_levels": []}).strip() == ""


def test_plots_are_none_without_data_and_downsample_long_series() -> None:
    assert plots.energy_plot({"audio": None, "video": None}) is None
    assert plots.spectrum_plot({}) is None and plots.tempo_plot({}) is None and plots.motion_plot({}) is None
    n = 50_000
    long = {"duration": n / 100, "audio": {"energy": {"times": [i / 100 for i in range(n)], "values": [0.1] * n}}}
    long["audio"]["energy"]["values"][31_337] = 1.0  # type: ignore[index]
    svg = str(plots.energy_plot(long))
    points = svg.split('points="', 1)[1].split('"', 1)[0].split()
    assert len(points) <= plots.MAX_POINTS + 2
    assert f",{plots.PAD_T}" in " ".join(points)  # the one peak survived pooling (y at the top of the plot)


def test_plots_ignore_non_numbers() -> None:
    bad = {"duration": 1.0, "audio": {"beats": {"beat_times": [0.5, "x", None, float("nan")]}}}
    assert str(plots.energy_plot(bad)).count('class="beat"') == 1


def test_highlight_escapes_numbers_lines_and_marks_errors() -> None:
    html = str(highlight_yaml("name: <b>x</b>\nsteps:\n  - {id: a, n: 3}  # note\n", {2}))
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert 'class="ln err" data-n="2"' in html and html.count('class="ln"') == 2
    assert '<span class="n">3</span>' in html and '<span class="c"> # note</span>' in html
    assert '<span class="k">id</span>' in html
    assert error_line("step 'a': unknown node type 'X' (line 4, column 19)") == 4
    assert error_line("no position") is None


def test_a_recipe_is_highlighted_as_what_it_is() -> None:
    sexp = str(highlight_recipe('; cut\n(recipe "x" :inputs ((v)) (segment v :start 0.5))\n', {2}))
    assert '<span class="kw">:inputs</span>' in sexp and '<span class="c">; cut</span>' in sexp
    assert 'class="ln err" data-n="2"' in sexp and '<span class="n">0.5</span>' in sexp
    yaml_text = str(highlight_recipe("# (not an S-expression)\nname: x\n"))
    assert '<span class="k">name</span>' in yaml_text and 'class="kw"' not in yaml_text


def test_an_effect_is_highlighted_as_what_it_is() -> None:
    lang = str(highlight_effect("(define-effect x (- 255 frame))"))
    assert '<span class="k">define-effect</span>' in lang
    python = str(highlight_effect('# artdag: python-effect\nMETA = {"name": "<x>"}\n', {2}))
    assert 'class="k"' not in python and "&lt;x&gt;" in python and 'class="ln err" data-n="2"' in python


def test_plan_elements_follow_the_run_state() -> None:
    steps = [
        PlanStep(step_id="a" * 64, name="input:video", node_type="SOURCE", op_version="1", level=0),
        PlanStep(step_id="b" * 64, name="small", node_type="RESIZE", op_version="1", level=1, inputs=["a" * 64]),
    ]
    plan = Plan(plan_id="p", recipe_id="r", recipe_name="n", input_cids={}, steps=steps, output_step="b" * 64)
    state = RunState(
        run_id="run-" + "0" * 32,
        recipe_id="r",
        recipe_name="n",
        inputs={},
        steps={"b" * 64: StepState(name="small", node_type="RESIZE", status=StepStatus.RUNNING)},
    )
    elements = dag.plan_elements(plan, state)
    by_id = {n["data"]["id"]: n["data"] for n in elements["nodes"]}
    assert by_id["a" * 64]["status"] == "input" and by_id["b" * 64]["status"] == "running"
    assert by_id["b" * 64]["output"] is True and by_id["b" * 64]["label"] == "small\nRESIZE"
    assert elements["edges"] == [{"data": {"id": f"{'a' * 64}>{'b' * 64}#0", "source": "a" * 64, "target": "b" * 64}}]
    assert "<" not in dag.as_json({"nodes": [{"data": {"label": "</script>"}}], "edges": []})


def test_recipe_elements_place_steps_after_their_inputs() -> None:
    elements = dag.recipe_elements(parse_recipe(example_path("beat-sync").read_text()))
    level = {n["data"]["id"]: n["data"]["level"] for n in elements["nodes"]}
    assert level == {"input:video": 0, "input:audio": 0, "step:analyze_audio": 1, "step:sync_video": 2}
    assert {(e["data"]["source"], e["data"]["target"]) for e in elements["edges"]} == {
        ("input:audio", "step:analyze_audio"),
        ("input:video", "step:sync_video"),
        ("step:analyze_audio", "step:sync_video"),
    }


def test_client_wheel_is_complete_and_deterministic() -> None:
    data = build_wheel()
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    assert set(MODULES) <= set(names)
    info = wheel_name().removesuffix("-py3-none-any.whl") + ".dist-info"
    assert "artdag = artdag_cli.main:main" in archive.read(f"{info}/entry_points.txt").decode()
    record = archive.read(f"{info}/RECORD").decode()
    assert all(name in record for name in MODULES)
    # Every artdag module the packaged code imports at the top is packaged too (`up` and `migrate`
    # import the server's modules inside the function: they need the full install).
    for name in MODULES:
        source = archive.read(name).decode()
        for line in source.splitlines():
            words = line.split()
            if line.startswith(("from ", "import ")) and words[1].startswith(("artdag_cli", "artdag_common")):
                module = words[1].replace(".", "/") + ".py"
                assert module in names, f"{name} imports {words[1]}, which the wheel lacks"
    assert build_wheel.__wrapped__() == data


@pytest.mark.parametrize(
    ("headers", "html"),
    [
        ({"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, True),
        ({"accept": "application/json"}, False),
        ({"accept": "*/*"}, False),
        ({}, False),
        ({"hx-request": "true", "accept": "*/*"}, True),
    ],
)
def test_who_gets_pages(headers: dict[str, str], html: bool) -> None:
    assert wants_html(headers) is html


def test_sse_messages_and_resume_points() -> None:
    text = sse_message(42, "artdag.event.step.run-x.abc", json.dumps({"status": "running"}).encode())
    assert text == 'id: 42\nevent: step\ndata: {"status":"running"}\n\n'
    assert sse_message(7, "artdag.event.run.run-x.completed", b"{}").startswith("id: 7\nevent: run\n")
    assert parse_after("17", 3) == 17 and parse_after(None, 3) == 3 and parse_after(None, None) is None
    with pytest.raises(ValueError, match="stream sequence"):
        parse_after("17; drop", None)


def test_the_run_an_event_is_about() -> None:
    assert run_of("artdag.event.run.run-ab12.completed") == "run-ab12"
    assert run_of("artdag.event.step.run-ab12.QmStep") == "run-ab12"
    assert run_of("artdag.event.cache.QmX") is None and run_of("artdag.event.run.") is None
