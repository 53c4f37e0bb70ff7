"""S-expression recipes against `artdag up`: uploaded, planned and run as their YAML spelling is, with the
same recipe id and step ids (so one's results serve the other), and refused with line and column."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from artdag_cli.demo_media import write_test_clip
from tests.e2e.test_planner_api import upload, wait_for

pytestmark = pytest.mark.e2e

SEXP = """; cut, tinted and scaled: the recipe YAML writes below
(recipe "sexp-e2e" :description "cut, tint, scale"
  :inputs ((clip :type video))
  :params ((width :type int :default 96 :range [32 320]))
  (def cut (segment clip :start 0 :end 0.6))
  (def tinted (-> cut (effect hue-shift :degrees 90)))
  (def small (resize tinted width (* width 0.75))))
"""

YAML = """
name: sexp-e2e
description: cut, tint, scale
inputs: {clip: {type: video}}
steps:
  - {id: cut, type: SEGMENT, inputs: [clip], config: {start: 0, end: 0.6}}
  - {id: tinted, type: EFFECT, inputs: [cut], config: {effect: hue_shift, params: {degrees: 90}}}
  - {id: small, type: RESIZE, inputs: [tinted], config: {width: 96, height: 72}}
output: small
"""


def test_an_s_expression_recipe_is_stored_planned_and_run_as_its_yaml_spelling(
    client: httpx.Client, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=128, height=96, fps=10, duration_s=1.0, tone_hz=330.0)
    inputs = {"clip": upload(client, clip)}

    stored = client.post("/recipes/upload", files={"file": ("cut.sexp", SEXP.encode())})
    assert stored.status_code == 201, stored.text
    record = stored.json()
    assert record["name"] == "sexp-e2e" and [i["name"] for i in record["inputs"]] == ["clip"]
    again = client.post("/recipes/upload", content=YAML.encode(), headers={"content-type": "text/yaml"})
    assert again.json()["recipe_id"] == record["recipe_id"], "the same recipe in either form: one recipe id"
    assert client.get(f"/recipes/{record['recipe_id']}").json()["text"] == SEXP

    plans = [client.post("/api/plan", json={"recipe": text, "inputs": inputs}) for text in (SEXP, YAML)]
    assert all(p.status_code == 200 for p in plans), [p.text for p in plans]
    ours, theirs = (p.json()["plan"] for p in plans)
    assert [s["step_id"] for s in ours["steps"]] == [s["step_id"] for s in theirs["steps"]]
    assert (ours["plan_id"], ours["output_step"]) == (theirs["plan_id"], theirs["output_step"])

    run = client.post(f"/recipes/{record['recipe_id']}/run", json={"inputs": inputs})
    assert run.status_code == 202, run.text
    done = wait_for(client, run.json()["run_id"])
    assert done["status"] == "completed", done
    assert done["plan_id"] == theirs["plan_id"]
    # The YAML spelling's run is the same steps: every one served from the first run's results.
    yaml_run = client.post("/runs", json={"recipe": YAML, "inputs": inputs})
    assert yaml_run.status_code == 202, yaml_run.text
    cached = wait_for(client, yaml_run.json()["run_id"])
    assert cached["status"] == "completed" and cached["output_cid"] == done["output_cid"]
    assert set(cached["steps"]) == set(done["steps"])


def test_a_wrong_s_expression_recipe_is_refused_with_line_and_column(client: httpx.Client) -> None:
    wrong = SEXP.replace("(* width 0.75)", "(/ width 0)")
    refused = client.post("/recipes/upload", content=wrong.encode())
    assert refused.status_code == 422, refused.text
    assert "line 7, column 44: division by zero" in refused.json()["detail"]
    escape = SEXP.replace("(def cut (segment clip", '(def cut (segment (source :path "/etc/passwd")')
    refused = client.post("/runs", json={"recipe": escape, "inputs": {}})
    assert refused.status_code == 422 and "cannot read files on the server" in refused.text, refused.text
    unclosed = client.post("/recipes/upload", content=SEXP.rstrip()[:-1].encode())
    assert unclosed.status_code == 400 and "line 2, column 1" in unclosed.json()["detail"], unclosed.text


TINT = """; a look several recipes share, stored once and included by its CID
(def tinted (-> cut (effect hue-shift :degrees 90)))
"""


def test_a_recipe_includes_a_stored_text_by_its_cid(client: httpx.Client, tmp_path: Path) -> None:
    stored = client.post("/cache/upload", files={"file": ("tint.sexp", TINT.encode())})
    assert stored.status_code == 201, stored.text
    tint = stored.json()["cid"]
    including = SEXP.replace(
        "  (def tinted (-> cut (effect hue-shift :degrees 90)))\n", f'  (include tint :cid "{tint}")\n'
    )
    assert including != SEXP
    record = client.post("/recipes/upload", content=including.encode())
    assert record.status_code == 201, record.text
    assert client.get(f"/recipe/{record.json()['recipe_id']}/dag", headers={"accept": "text/html"}).status_code == 200
    clip = tmp_path / "clip.mp4"
    write_test_clip(clip, width=128, height=96, fps=10, duration_s=1.0, tone_hz=330.0)
    inputs = {"clip": upload(client, clip)}
    plans = [client.post("/api/plan", json={"recipe": text, "inputs": inputs}) for text in (including, YAML)]
    assert all(p.status_code == 200 for p in plans), [p.text for p in plans]
    ours, theirs = (p.json()["plan"] for p in plans)
    assert [s["step_id"] for s in ours["steps"]] == [s["step_id"] for s in theirs["steps"]]
    # Only what is stored, by CID: a CID nobody stored, or a path, is refused with where.
    unknown = including.replace(tint, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")
    refused = client.post("/api/plan", json={"recipe": unknown, "inputs": inputs})
    assert refused.status_code == 422 and "no text with that CID is stored" in refused.text, refused.text
    by_path = including.replace(f':cid "{tint}"', ':path "/etc/passwd"')
    refused = client.post("/recipes/upload", content=by_path.encode())
    assert refused.status_code == 422 and "never a file or a URL" in refused.json()["detail"], refused.text
