"""The original engine's recipe shapes, over HTTP: each plans to the steps of its canonical spelling and renders.

Every shape of the reference (the engine form `dag: {nodes, output}`, SOURCE `input: true`,
SOURCE_LIST, `asset:`, step inputs as a mapping, TRANSFORM's `effects:`, MUX's stream indexes,
EFFECT parameters beside `effect`, ANALYZE `feature`/`all`/`motion_tempo`, the example
`simple_sequence`) is planned through `POST /api/plan` next to its canonical spelling, run, and
then found cached under the canonical spelling: one meaning, one cache.
"""

from __future__ import annotations

import io
from typing import Any

import av
import httpx
import pytest

from artdag_cli.demo_media import write_click_track, write_test_clip
from tests.e2e.test_planner_api import upload, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def media(client: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """CIDs of two short clips (video + sound) and a click track at 120 BPM."""
    folder = tmp_path_factory.mktemp("engine-media")
    write_test_clip(folder / "a.mp4", width=160, height=120, fps=10, duration_s=2.0)
    write_test_clip(folder / "b.mp4", width=128, height=96, fps=10, duration_s=1.0, tone_hz=660.0)
    write_click_track(folder / "click.wav", bpm=120, duration_s=2.0)
    return {name: upload(client, folder / name) for name in ("a.mp4", "b.mp4", "click.wav")}


def dag(*nodes: str, output: str = "out", head: str = "") -> str:
    body = "\n".join(f"    - {node}" for node in nodes)
    return f"name: engine-shape\n{head}dag:\n  nodes:\n{body}\n  output: {output}\n"


VIDEO = "{id: video, type: SOURCE, config: {input: true, name: video, description: the clip}}"
MUSIC = "{id: music, type: SOURCE, config: {input: music}}"
AUDIO = "inputs: {music: {type: audio}}\n"

# name: (engine spelling, canonical spelling, inputs by media name)
SHAPES: dict[str, tuple[str, str, dict[str, str]]] = {
    # The reference's examples/simple_sequence.yaml, times scaled to the clip.
    "simple_sequence": (
        dag(
            VIDEO,
            "{id: seg1, type: SEGMENT, inputs: [video], config: {start: 0, end: 0.5}}",
            "{id: seg2, type: SEGMENT, inputs: [video], config: {start: 1, end: 1.5}}",
            "{id: out, type: SEQUENCE, inputs: [seg1, seg2]}",
        ),
        "name: engine-shape\ninputs: [video]\nsteps:\n"
        "  - {id: seg1, type: SEGMENT, inputs: [video], config: {start: 0, end: 0.5}}\n"
        "  - {id: seg2, type: SEGMENT, inputs: [video], config: {start: 1, end: 1.5}}\n"
        "  - {id: out, type: SEQUENCE, inputs: [seg1, seg2]}\noutput: out\n",
        {"video": "a.mp4"},
    ),
    "transform effects": (
        dag(
            VIDEO,
            "{id: out, type: TRANSFORM, inputs: [video], config: {effects: {saturation: 1.4, contrast: 1.1,"
            " brightness: 0.05, gamma: 1.2, hue: 20, blur: 1, sharpen: 0.5, speed: 2}}}",
        ),
        dag(
            VIDEO,
            "{id: out, type: TRANSFORM, inputs: [video], config: {saturation: 1.4, contrast: 1.1,"
            " brightness: 0.05, gamma: 1.2, hue: 20, blur: 1, sharpen: 0.5, speed: 2}}",
        ),
        {"video": "a.mp4"},
    ),
    "mux streams and inputs as a mapping": (
        dag(
            MUSIC,
            VIDEO,
            "{id: out, type: MUX, inputs: {audio: music, video: video}, config: {video_stream: 1, audio_stream: 0}}",
            head=AUDIO,
        ),
        dag(MUSIC, VIDEO, "{id: out, type: MUX, inputs: [video, music]}", head=AUDIO),
        {"video": "a.mp4", "music": "click.wav"},
    ),
    "effect params beside effect": (
        dag(VIDEO, "{id: out, type: EFFECT, inputs: [video], config: {effect: blur, radius: 2}}"),
        dag(VIDEO, "{id: out, type: EFFECT, inputs: [video], config: {effect: blur, params: {radius: 2}}}"),
        {"video": "a.mp4"},
    ),
    "analyze feature and motion_tempo": (
        dag(
            VIDEO,
            "{id: loud, type: ANALYZE, inputs: [video], config: {feature: energy}}",
            "{id: moves, type: ANALYZE, inputs: [video], config: {features: [motion_tempo]}}",
            "{id: dim, type: EFFECT, inputs: [video], config: {effect: invert,"
            " bindings: {intensity: {analysis: loud, feature: energy}}}}",
            "{id: grey, type: EFFECT, inputs: [video], config: {effect: grayscale,"
            " bindings: {intensity: {analysis: moves, feature: motion}}}}",
            "{id: out, type: SEQUENCE, inputs: [dim, grey]}",
        ),
        dag(
            VIDEO,
            "{id: loud, type: ANALYZE, inputs: [video], config: {features: [energy]}}",
            "{id: moves, type: ANALYZE, inputs: [video], config: {features: [motion]}}",
            "{id: dim, type: EFFECT, inputs: [video], config: {effect: invert,"
            " bindings: {intensity: {analysis: loud, feature: energy}}}}",
            "{id: grey, type: EFFECT, inputs: [video], config: {effect: grayscale,"
            " bindings: {intensity: {analysis: moves, feature: motion}}}}",
            "{id: out, type: SEQUENCE, inputs: [dim, grey]}",
        ),
        {"video": "a.mp4"},
    ),
    "analyze all of a track": (
        dag(
            MUSIC,
            VIDEO,
            "{id: beats, type: ANALYZE, inputs: [music], config: {features: all}}",
            "{id: out, type: BEAT_SYNC, inputs: [video, beats]}",
            head=AUDIO,
        ),
        dag(
            MUSIC,
            VIDEO,
            "{id: beats, type: ANALYZE, inputs: [music], config: {features: [beats, energy, onsets, spectrum]}}",
            "{id: out, type: BEAT_SYNC, inputs: [video, beats]}",
            head=AUDIO,
        ),
        {"video": "a.mp4", "music": "click.wav"},
    ),
    "source list": (
        dag(
            "{id: clips, type: SOURCE_LIST, config: {input: true, name: clips}}",
            "{id: out, type: SEQUENCE, inputs: [clips], config: {target_size: largest}}",
        ),
        "name: engine-shape\ninputs: {clips: {list: true}}\nsteps:\n"
        "  - {id: out, type: SEQUENCE, inputs: [clips], config: {target_size: largest}}\noutput: out\n",
        {"clips": "a.mp4,b.mp4"},
    ),
    "layer, blend and audio mix": (
        dag(
            VIDEO,
            "{id: other, type: SOURCE, config: {input: true}}",
            "{id: small, type: RESIZE, inputs: {clip: other}, config: {width: 64, height: 48, mode: fill}}",
            "{id: over, type: LAYER, inputs: [video, small], config: {inputs: [{position: [8, 8], opacity: 0.5}]}}",
            "{id: mixed, type: BLEND, inputs: {base: over, top: video}, config: {mode: screen, opacity: 0.5}}",
            "{id: sound, type: AUDIO_MIX, inputs: [video, other], config: {gains: [1.0, 0.5]}}",
            "{id: out, type: MUX, inputs: [sound, mixed], config: {video_stream: 1, audio_stream: 0}}",
        ),
        dag(
            VIDEO,
            "{id: other, type: SOURCE, config: {input: true}}",
            "{id: small, type: RESIZE, inputs: [other], config: {width: 64, height: 48, mode: fill}}",
            "{id: over, type: LAYER, inputs: [video, small], config: {inputs: [{position: [8, 8], opacity: 0.5}]}}",
            "{id: mixed, type: BLEND, inputs: [over, video], config: {mode: screen, opacity: 0.5}}",
            "{id: sound, type: AUDIO_MIX, inputs: [video, other], config: {gains: [1.0, 0.5]}}",
            "{id: out, type: MUX, inputs: [mixed, sound]}",
        ),
        {"video": "a.mp4", "other": "b.mp4"},
    ),
}


def plan(client: httpx.Client, text: str, inputs: dict[str, str]) -> dict[str, Any]:
    reply = client.post("/api/plan", json={"recipe": text, "inputs": inputs})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


@pytest.mark.parametrize("shape", list(SHAPES))
def test_engine_shape_plans_like_its_canonical_spelling_and_renders(
    client: httpx.Client, media: dict[str, str], shape: str
) -> None:
    engine, canonical, bound = SHAPES[shape]
    inputs = {name: ",".join(media[m] for m in files.split(",")) for name, files in bound.items()}
    theirs, ours = plan(client, engine, inputs), plan(client, canonical, inputs)
    ids = [s["step_id"] for s in theirs["plan"]["steps"]]
    assert ids == [s["step_id"] for s in ours["plan"]["steps"]]
    assert theirs["plan"]["output_step"] == ours["plan"]["output_step"]
    run = client.post("/api/execute", json={"plan_id": theirs["plan"]["plan_id"]})
    assert run.status_code == 202, run.text
    done = wait_for(client, run.json()["run_id"], timeout_s=90)
    assert done["status"] == "completed", done
    output = client.get(f"/cache/{done['output_cid']}/raw")
    assert output.status_code == 200 and len(output.content) > 1000
    # The canonical spelling finds everything the engine spelling rendered.
    again = plan(client, canonical, inputs)
    rendered = {s["name"]: s["status"] for s in again["steps"] if s["node_type"] not in ("SOURCE", "ANALYZE")}
    assert set(rendered.values()) == {"cached"} and again["cost_frames"] == 0, rendered


def test_a_named_asset_source(client: httpx.Client, media: dict[str, str]) -> None:
    named = client.post("/assets", json={"name": "engine-intro", "cid": media["b.mp4"]})
    assert named.status_code == 201, named.text
    text = dag(
        "{id: intro, type: SOURCE, config: {asset: engine-intro}}",
        "{id: out, type: TRANSFORM, inputs: [intro], config: {effects: {hue: 45}}}",
    )
    planned = plan(client, text, {})
    run = client.post("/api/execute", json={"plan_id": planned["plan"]["plan_id"]})
    assert run.status_code == 202, run.text
    assert wait_for(client, run.json()["run_id"], timeout_s=90)["status"] == "completed"
    bound = plan(client, text, {"intro": media["b.mp4"]})
    assert bound["to_run"] == 0, "the asset is its CID: the same steps"


def test_registry_and_owner_are_shown_with_the_recipe(client: httpx.Client) -> None:
    text = "owner: '@alice@example.org'\nregistry:\n  assets: {intro: {hash: QmIntro, url: 'https://example.org/i'}}\n"
    text += dag(VIDEO, "{id: out, type: RESIZE, inputs: [video], config: {width: 64, height: 48}}")
    uploaded = client.post("/recipes/upload", content=text.encode(), headers={"content-type": "text/yaml"})
    assert uploaded.status_code == 201, uploaded.text
    record = client.get(f"/recipes/{uploaded.json()['recipe_id']}").json()
    assert record["recipe_owner"] == "@alice@example.org"
    assert record["registry"] == {"assets": {"intro": {"hash": "QmIntro", "url": "https://example.org/i"}}}
    assert record["owner"] != "@alice@example.org", "the uploader stays the uploader"


@pytest.mark.parametrize(
    ("node", "field", "words"),
    [
        ("{id: video, type: SOURCE, config: {path: /etc/hostname}}", "dag.nodes[0].config.path", "upload the file"),
        (
            "{id: video, type: SOURCE_LIST, config: {path: /etc/hostname}}",
            "dag.nodes[0].config.path",
            "asset: NAME",
        ),
    ],
)
def test_path_sources_are_refused_with_what_to_do(client: httpx.Client, node: str, field: str, words: str) -> None:
    text = dag(node, "{id: out, type: SEQUENCE, inputs: [video], config: {target_size: first}}")
    reply = client.post("/api/plan", json={"recipe": text, "inputs": {}})
    assert reply.status_code in (400, 422), reply.text
    assert field in reply.text and words in reply.text


def test_target_size_last_takes_the_last_clips_size(client: httpx.Client, media: dict[str, str]) -> None:
    second = "{id: second, type: SOURCE, config: {input: true, name: second}}"
    text = dag(VIDEO, second, "{id: out, type: SEQUENCE, inputs: [video, second, second], config: {target_size: last}}")
    inputs = {"video": media["a.mp4"], "second": media["b.mp4"]}  # 160x120, then 128x96
    run = client.post("/runs", json={"recipe": text, "inputs": inputs})
    assert run.status_code == 202, run.text
    done = wait_for(client, run.json()["run_id"], timeout_s=90)
    assert done["status"] == "completed", done.get("error")
    out = client.get(f"/cache/{done['output_cid']}/raw").content
    with av.open(io.BytesIO(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (128, 96)
