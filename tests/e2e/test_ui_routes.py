"""The web UI's routes over HTTP: Accept negotiation, error pages, form actions, resumable event streams."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from artdag_cli.demo_media import write_test_clip
from artdag_common.examples import example_path
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture(scope="module")
def finished_run(client: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    clip = tmp_path_factory.mktemp("ui") / "ui-routes.mp4"
    write_test_clip(clip, width=112, height=64, fps=10, duration_s=1.0, tone_hz=733.0)
    with clip.open("rb") as handle:
        cid = client.post("/cache/upload", files={"file": ("ui-routes.mp4", handle)}).json()["cid"]
    run_id = client.post("/runs", json={"recipe": example_path("resize").read_text(), "inputs": {"video": cid}}).json()[
        "run_id"
    ]
    deadline = time.monotonic() + 60
    while (run := client.get(f"/runs/{run_id}").json())["status"] != "completed":
        assert run["status"] in ("pending", "running") and time.monotonic() < deadline, run
        time.sleep(0.2)
    return {"run": run, "cid": cid}


@pytest.mark.parametrize(("path", "title"), [("/", "Home"), ("/runs", "Runs"), ("/recipes", "Recipes"),
                                             ("/media", "Media"), ("/storage", "Storage")])  # fmt: skip
def test_shared_paths_serve_pages_to_browsers_and_json_to_clients(client: httpx.Client, path: str, title: str) -> None:
    page = client.get(path, headers=HTML)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f"<title>{title} · artdag</title>" in page.text
    assert "Accept" in page.headers["vary"]
    boosted = client.get(path, headers={"HX-Request": "true"})
    assert boosted.headers["content-type"].startswith("text/html")
    api = client.get(path)
    assert api.headers["content-type"] == "application/json"
    api.json()


def test_home_shows_counts_and_each_service(client: httpx.Client) -> None:
    page = client.get("/", headers=HTML).text
    for service in ("gateway", "auth", "planner", "analyzer", "executor", "cache"):
        assert f"{service} ✓" in page
    recipes = client.get("/recipes").json()["total"]
    assert f'<div class="n" id="count-recipes">{recipes}</div>' in page


def test_error_pages_for_people_and_json_for_programs(client: httpx.Client) -> None:
    page = client.get("/no/such/page", headers=HTML)
    assert page.status_code == 404 and "Not found" in page.text and "<html" in page.text
    assert client.get("/no/such/page").json()["detail"] == "Not Found"
    unknown = client.get("/run/run-0123456789abcdef0123456789abcdef/plan", headers=HTML)
    assert unknown.status_code == 404 and "Not found" in unknown.text
    invalid = client.get("/run/not-a-run/plan", headers=HTML)
    assert invalid.status_code == 422 and "run_id" in invalid.text
    assert client.get("/runs/not-a-run").json()["error"]["field"] == "run_id"  # the API is unchanged


def test_run_pages_show_real_data(client: httpx.Client, finished_run: dict[str, Any]) -> None:
    run = finished_run["run"]
    plan = client.get(f"/run/{run['run_id']}/plan", headers=HTML).text
    data = json.loads(plan.split('<script type="application/json" id="dag-data">', 1)[1].split("</script>", 1)[0])
    assert {n["data"]["status"] for n in data["nodes"]} == {"completed"}
    assert len(data["nodes"]) == len(run["steps"]) and len(data["edges"]) == 1
    artifacts = client.get(f"/run/{run['run_id']}/artifacts", headers=HTML).text
    assert f'src="/cache/{run["output_cid"]}/raw"' in artifacts and 'id="output-video"' in artifacts
    step_id = run["output_step"]
    panel = client.get(f"/ui/run/{run['run_id']}/step/{step_id}").text
    assert "RESIZE" in panel and "&#34;width&#34;: 320" in panel and "miss" in panel
    analysis = client.get(f"/run/{run['run_id']}/analysis", headers=HTML).text
    assert "used no analysis" in analysis


def test_run_events_resume_after_last_event_id(client: httpx.Client, finished_run: dict[str, Any]) -> None:
    run_id = finished_run["run"]["run_id"]

    def read(headers: dict[str, str], url: str, until: int) -> list[tuple[int, str, dict[str, Any]]]:
        got: list[tuple[int, str, dict[str, Any]]] = []
        with client.stream("GET", url, headers=headers, timeout=10) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            event: dict[str, str] = {}
            for line in response.iter_lines():
                if line.startswith(("id:", "event:", "data:")):
                    key, _, value = line.partition(":")
                    event[key] = value.strip()
                elif line == "" and "data" in event:
                    got.append((int(event["id"]), event["event"], json.loads(event["data"])))
                    event = {}
                    if len(got) >= until:
                        return got
        return got

    everything = read({}, f"/events/run/{run_id}?after=0", until=4)
    ids = [seq for seq, _, _ in everything]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert all(body["run_id"] == run_id for _, _, body in everything)
    assert everything[0][1] == "run" and everything[0][2]["status"] == "pending"
    resumed = read({"Last-Event-ID": str(ids[1])}, f"/events/run/{run_id}?after=0", until=2)
    assert [seq for seq, _, _ in resumed] == ids[2:4]  # Last-Event-ID wins over ?after, nothing lost or repeated
    bad = client.get(f"/events/run/{run_id}", headers={"Last-Event-ID": "x"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "Last-Event-ID"
    listing = read({}, f"/events/runs?after={ids[0] - 1}", until=1)
    assert listing[0][0] == ids[0]


def test_recipe_upload_error_marks_the_line(client: httpx.Client) -> None:
    text = (
        "name: bad\ninputs: [video]\nsteps:\n"
        "  - {id: a, type: RESIZE, inputs: [video], config: {width: -2}}\noutput: a\n"
    )
    response = client.post("/ui/recipes/upload", data={"recipe": text}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert 'class="ln err" data-n="4"' in response.text and "width" in response.text
    good = client.post("/ui/recipes/upload", files={"file": ("r.yaml", example_path("resize").read_bytes())})
    assert good.status_code == 200 and good.headers["HX-Location"].startswith("/recipe/Qm")
    assert client.get(good.headers["HX-Location"], headers=HTML).status_code == 200


def test_run_form_names_the_missing_input_then_runs(client: httpx.Client, finished_run: dict[str, Any]) -> None:
    recipe = next(r for r in client.get("/recipes").json()["recipes"] if r["name"] == "resize-demo")
    missing = client.post(f"/ui/recipe/{recipe['recipe_id']}/run", data={"input.video": ""})
    assert missing.status_code == 422 and "inputs.video" in missing.text
    started = client.post(f"/ui/recipe/{recipe['recipe_id']}/run", data={"input.video": finished_run["cid"]})
    assert started.status_code == 200 and started.headers["HX-Location"].startswith("/run/run-")


def test_media_metadata_edit(client: httpx.Client, finished_run: dict[str, Any]) -> None:
    cid = finished_run["cid"]
    bad = client.patch(f"/ui/media/{cid}/meta", data={"name": "x", "tags": "ok, not/ok"})
    assert bad.status_code == 422 and "tags" in bad.text
    good = client.patch(f"/ui/media/{cid}/meta", data={"name": "Renamed", "tags": "a, b", "pinned": "on"})
    assert good.status_code == 200 and "Renamed" in good.text
    meta = client.get(f"/cache/{cid}/meta").json()
    assert meta["name"] == "Renamed" and meta["tags"] == ["a", "b"] and meta["pinned"] is True
    client.patch(f"/cache/{cid}/meta", json={"pinned": False})


def test_static_assets_are_vendored(client: httpx.Client) -> None:
    for name in ("htmx-2.0.11.min.js", "cytoscape-3.35.0.min.js"):
        response = client.get(f"/static/vendor/{name}")
        assert response.status_code == 200 and len(response.content) > 40_000
    page = client.get("/", headers=HTML).text
    assert "http://" not in page.split("<body", 1)[0] and "https://" not in page.split("<body", 1)[0]


def test_delete_buttons(client: httpx.Client, finished_run: dict[str, Any], tmp_path: Path) -> None:
    # Content a run used is kept, and the tile says why.
    kept = client.delete(f"/ui/media/{finished_run['cid']}")
    assert kept.status_code == 409 and "flash bad" in kept.text
    clip = tmp_path / "doomed.mp4"
    write_test_clip(clip, width=64, height=48, fps=10, duration_s=0.3, tone_hz=919.0)
    with clip.open("rb") as handle:
        cid = client.post("/cache/upload", files={"file": ("doomed.mp4", handle)}).json()["cid"]
    gone = client.delete(f"/ui/media/{cid}")
    assert gone.status_code == 200 and gone.text == ""
    assert client.get(f"/cache/{cid}/meta").status_code == 404

    # A recipe of its own (a comment alone would give the example's id, and an admin deleting it deletes the example).
    doomed = example_path("resize").read_text().replace("name: resize-demo", "name: doomed")
    recipe = client.post("/recipes/upload", content=doomed).json()
    assert recipe["name"] == "doomed" and not recipe["example"]
    deleted = client.delete(f"/ui/recipe/{recipe['recipe_id']}")
    assert deleted.headers["HX-Location"] == "/recipes"
    assert client.get(f"/recipes/{recipe['recipe_id']}").status_code == 404

    run_id = client.post(
        "/runs", json={"recipe": example_path("resize").read_text(), "inputs": {"video": finished_run["cid"]}}
    ).json()["run_id"]
    removed = client.delete(f"/ui/run/{run_id}")
    assert removed.headers["HX-Location"] == "/runs"
    assert client.get(f"/runs/{run_id}").status_code == 404


def _events(client: httpx.Client, url: str, quiet_s: float = 3.0) -> list[tuple[int, dict[str, Any]]]:
    """Every event the stream sends until it has been quiet for `quiet_s`."""
    got: list[tuple[int, dict[str, Any]]] = []
    event: dict[str, str] = {}
    try:
        with client.stream("GET", url, timeout=httpx.Timeout(30, read=quiet_s)) as response:
            assert response.status_code == 200, response.read()
            for line in response.iter_lines():
                if line.startswith(("id:", "data:")):
                    key, _, value = line.partition(":")
                    event[key] = value.strip()
                elif line == "" and "data" in event:
                    got.append((int(event["id"]), json.loads(event["data"])))
                    event = {}
    except httpx.ReadTimeout:
        pass
    return got


def test_another_user_sees_none_of_it(stack: Stack, client: httpx.Client, finished_run: dict[str, Any]) -> None:
    admins_run, admins_cid = finished_run["run"]["run_id"], finished_run["cid"]
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {stack.token_for('bob')}"}) as bob:
        for path in (f"/run/{admins_run}/plan", f"/run/{admins_run}/artifacts", f"/run/{admins_run}/analysis"):
            page = bob.get(path, headers=HTML)
            assert page.status_code == 404 and "Not found" in page.text and admins_cid not in page.text, path
        assert bob.get(f"/events/run/{admins_run}").status_code == 404
        assert admins_run not in bob.get("/runs", headers=HTML).text
        assert admins_cid not in bob.get("/media", headers=HTML).text
        assert bob.delete(f"/ui/run/{admins_run}").status_code == 404
        assert client.get(f"/runs/{admins_run}").status_code == 200  # still there

        # Bob's own run: his stream of every run's events carries it, and nothing of the admin's.
        clip = stack.home / "bob.mp4"
        write_test_clip(clip, width=64, height=48, fps=10, duration_s=0.5, tone_hz=587.0)
        with clip.open("rb") as handle:
            cid = bob.post("/cache/upload", files={"file": ("bob.mp4", handle)}).json()["cid"]
        recipe = example_path("resize").read_text()
        run_id = bob.post("/runs", json={"recipe": recipe, "inputs": {"video": cid}}).json()["run_id"]
        deadline = time.monotonic() + 60
        while bob.get(f"/runs/{run_id}").json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        seen = {body["run_id"] for _, body in _events(bob, "/events/runs?after=0")}
        assert seen == {run_id}
        everyone = {body["run_id"] for _, body in _events(client, "/events/runs?after=0", quiet_s=1.5)}
        assert {run_id, admins_run} <= everyone  # the admin sees all
