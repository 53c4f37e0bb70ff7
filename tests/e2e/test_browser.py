"""The web UI in a real browser (Debian's chromium driven by Playwright), against the whole stack.

One walk through what a person does: upload a video and a track on /media, run the
beat-sync recipe from its page, watch the DAG's nodes turn completed without a reload,
see the beat markers on the analysis tab, play the output on the artifacts tab, go back
and forward. Every tab logs in first (`GET /auth?auth_token=…`), as a person following a
login link does; one test logs in through the form of the "Please log in" page.
Screenshots of every page land in tests/output/browser/ (git-ignored).
"""

from __future__ import annotations

import io
import os
import shutil
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from artdag_cli.demo_media import write_click_track, write_test_clip
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SHOTS = Path(__file__).resolve().parents[1] / "output" / "browser"

playwright_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():  # `make test` installs it (apt-get install -y chromium)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("no /usr/bin/chromium, and in CI the browser tests must run", pytrace=False)
    pytest.skip("no /usr/bin/chromium: run `make test` (it installs Debian's chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    return SHOTS


@pytest.fixture
def anonymous_page(browser: Any, stack: Stack) -> Iterator[Any]:
    """A fresh browser tab that nobody has logged in with."""
    context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))

    def blocked(message: Any) -> None:  # the Content-Security-Policy allows no inline script: a block is a bug
        if "Content Security Policy" in message.text:
            errors.append(message.text)

    tab.on("console", blocked)
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


@pytest.fixture
def page(anonymous_page: Any, stack: Stack) -> Any:
    """A tab logged in as the local user: `GET /auth?auth_token=…` set the session cookies."""
    response = anonymous_page.goto(f"/auth?auth_token={stack.token}")
    assert response is not None and response.ok
    assert anonymous_page.context.cookies()[0]["name"] in ("artdag_session", "artdag_csrf")
    return anonymous_page


@contextmanager
def logged_in_tab(stack: Stack, *, accept_dialogs: bool = False) -> Iterator[Any]:
    """A tab of a browser of its own, logged in as the stack's local user (an admin); fails the test on any
    script or Content-Security-Policy error. `accept_dialogs`: confirm() dialogs are answered yes."""
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        context = browser.new_context(base_url=stack.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(20_000)
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
        if accept_dialogs:
            tab.on("dialog", lambda dialog: dialog.accept())
        response = tab.goto(f"/auth?auth_token={stack.token}")
        assert response is not None and response.ok
        try:
            yield tab
        finally:
            context.close()
            browser.close()
        assert errors == [], f"JavaScript errors: {errors}"


def wait_until(page: Any, expression: str, timeout: float = 20_000) -> None:
    """Poll `expression` in the page until it is truthy (`timeout` in ms, like Playwright's). Not
    `wait_for_function`: that evaluates a string in the page, which its CSP (no eval) refuses."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        time.sleep(0.05)


def mark_document(page: Any) -> None:
    """Put a value on `window` that a full page load would wipe out."""
    page.evaluate("window.__stillHere = 'yes'")


def not_reloaded(page: Any) -> bool:
    return bool(page.evaluate("window.__stillHere === 'yes'"))


def test_upload_run_watch_analyse_play(page: Any, stack: Stack, shots: Path, tmp_path: Path) -> None:
    # Media only this test makes, so that its steps are not cached by earlier tests: the DAG must change live.
    video, track = tmp_path / "browser-clip.mp4", tmp_path / "browser-track.wav"
    write_test_clip(video, width=224, height=128, fps=24, duration_s=3.0, tone_hz=523.0)
    write_click_track(track, bpm=110, duration_s=3.4)

    page.goto("/")
    page.screenshot(path=shots / "01-home.png", full_page=True)
    mark_document(page)

    # /media: upload both through the file picker of the drop zone, with progress rows.
    page.click("nav.nav >> text=Media")
    page.wait_for_url("**/media")
    page.set_input_files("#media-files", [str(video), str(track)])
    wait_until(page, "document.querySelectorAll('#upload-list .upload-row.done').length === 2")
    cids = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#upload-list .upload-row')]"
        ".map(r => [r.querySelector('.name').textContent, r.dataset.cid]))"
    )
    assert set(cids) == {"browser-clip.mp4", "browser-track.wav"}
    page.wait_for_selector(f"#tile-{cids['browser-clip.mp4']}")  # the gallery refreshed in place
    page.screenshot(path=shots / "02-media.png", full_page=True)
    assert not_reloaded(page)

    # The beat-sync recipe's page: pick the two inputs, run.
    page.click("nav.nav >> text=Recipes")
    page.wait_for_url("**/recipes")
    page.screenshot(path=shots / "03-recipes.png", full_page=True)
    page.click("[data-recipe='beat-sync']")
    page.wait_for_selector("#run-form")
    page.select_option("#in-video", value=cids["browser-clip.mp4"])
    page.select_option("#in-audio", value=cids["browser-track.wav"])
    page.screenshot(path=shots / "04-recipe.png", full_page=True)
    page.click("#run-button")
    page.wait_for_url("**/run/run-*/plan")
    assert not_reloaded(page)

    # The DAG: nodes turn completed as events arrive, with no reload.
    page.wait_for_selector("#dag-status")
    # The plan the page was rendered with (its JSON stays as served; the live graph may already have moved on).
    first = page.evaluate(
        "[+document.getElementById('dag-status').dataset.done, window.artdagDag.nodes().length,"
        " JSON.parse(document.getElementById('dag-data').textContent).nodes.length]"
    )
    page.screenshot(path=shots / "05-plan-running.png", full_page=True)
    wait_until(
        page,
        "(() => { const s = document.getElementById('dag-status');"
        " return +s.dataset.total > 0 && s.dataset.done === s.dataset.total; })()",
        timeout=90_000,
    )
    done, total, rendered = first
    assert done < total, "the run was finished before the page showed it: nothing was watched live"
    statuses = page.evaluate("window.artdagDag.nodes().map(n => n.data('status'))")
    final_total = int(page.get_attribute("#dag-status", "data-total") or 0)
    assert set(statuses) <= {"completed", "cached"} and len(statuses) == final_total
    # Planning expands BEAT_SYNC after the analysis; the graph shows the final plan, and when the page came
    # before that (a warm analyzer often beats the page load), it followed without a reload.
    run_id = page.url.rsplit("/run/", 1)[1].split("/", 1)[0]
    with stack.http() as http:
        planned = len(http.get(f"/api/run/{run_id}/plan").json()["steps"])
    assert final_total == planned and rendered <= final_total
    page.wait_for_selector("#run-facts .badge.completed")  # the run's facts refreshed when it completed
    assert not_reloaded(page)
    run_url = page.url

    # Click a node: its step panel (config, id, cache status, output).
    page.evaluate("window.artdagDag.nodes().filter(n => n.data('output'))[0].emit('tap')")
    page.wait_for_selector("#step-panel video")
    page.screenshot(path=shots / "06-plan-done.png", full_page=True)

    # Analysis: beat markers plotted.
    page.click("nav.tabs >> text=Analysis")
    page.wait_for_url("**/analysis")
    beats = page.locator("svg[data-plot='energy'] line.beat")
    assert beats.count() >= 4  # a click every 0.545 s over 3.4 s
    assert page.locator("[id^='tempo-']").first.inner_text().startswith("1")  # ~110 BPM
    page.screenshot(path=shots / "07-analysis.png", full_page=True)

    # Artifacts: the output plays (served with Range requests).
    page.click("nav.tabs >> text=Artifacts")
    page.wait_for_url("**/artifacts")
    page.wait_for_selector("#output-video")
    page.evaluate("(() => { const v = document.getElementById('output-video'); v.muted = true; return v.play(); })()")
    wait_until(
        page,
        "(() => { const v = document.getElementById('output-video'); return v.duration > 0 && v.currentTime > 0; })()",
    )
    duration = page.evaluate("document.getElementById('output-video').duration")
    assert 2.0 < duration < 5.0
    # Seeking works, and the source answers byte ranges (what lets a long video seek without downloading it).
    page.evaluate(
        "new Promise(ok => { const v = document.getElementById('output-video');"
        " v.addEventListener('seeked', ok, {once: true}); v.currentTime = v.duration * 0.75; })"
    )
    src = page.get_attribute("#output-video", "src")
    ranged = page.request.get(src, headers={"Range": "bytes=100-199"})
    assert ranged.status == 206 and len(ranged.body()) == 100
    page.evaluate("document.getElementById('output-video').pause()")
    page.screenshot(path=shots / "08-artifacts.png", full_page=True)
    assert not_reloaded(page)

    # Back and forward through the tabs, still one document.
    page.go_back()
    page.wait_for_url("**/analysis")
    page.wait_for_selector("svg[data-plot='energy'] line.beat", state="attached")
    page.go_back()
    page.wait_for_url(run_url)
    page.wait_for_selector("#dag-status[data-total]")
    page.go_forward()
    page.wait_for_url("**/analysis")
    page.wait_for_selector("nav.tabs a.active >> text=Analysis")
    assert not_reloaded(page)

    # The runs list shows the run completed.
    page.click("nav.nav >> text=Runs")
    page.wait_for_url("**/runs")
    run_id = run_url.split("/run/")[1].split("/")[0]
    page.wait_for_selector(f"[data-run-row='{run_id}'] .badge.completed")
    page.screenshot(path=shots / "09-runs.png", full_page=True)
    page.click("nav.nav >> text=Home")
    page.wait_for_selector(f"a[href='/run/{run_id}/plan']")
    page.screenshot(path=shots / "09-home-after-a-run.png", full_page=True)


TOUR = """name: analysis-tour
description: Every analysis feature of a video and a track, and the video cut on the beats
inputs:
  video: {type: video, description: Source video}
  audio: {type: audio, description: Audio track}
steps:
  - id: listen
    type: ANALYZE
    inputs: [audio]
    config: {features: [beats, energy, spectrum, onsets]}
  - id: watch
    type: ANALYZE
    inputs: [video]
    config: {features: [scene_changes, motion]}
  - id: synced
    type: BEAT_SYNC
    inputs: [video, listen]
    config: {mode: cut}
output: synced
"""


def test_upload_a_recipe_run_it_and_see_every_plot(page: Any, stack: Stack, shots: Path, tmp_path: Path) -> None:
    video, track = tmp_path / "tour.mp4", tmp_path / "tour.wav"
    write_test_clip(video, width=128, height=96, fps=20, duration_s=2.0, tone_hz=499.0)
    write_click_track(track, bpm=130, duration_s=2.2)
    page.goto("/media")
    page.set_input_files("#media-files", [str(video), str(track)])
    wait_until(page, "document.querySelectorAll('#upload-list .upload-row.done').length === 2")
    cids = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#upload-list .upload-row')]"
        ".map(r => [r.querySelector('.name').textContent, r.dataset.cid]))"
    )
    page.goto("/recipes")
    mark_document(page)
    page.fill("#recipe-text", TOUR)
    page.click("form[hx-post='/ui/recipes/upload'] button[type=submit]")
    page.wait_for_url("**/recipe/Qm*")  # stored, and on its page without a reload
    assert not_reloaded(page)
    assert page.locator(".source .ln").count() == TOUR.count("\n")
    page.select_option("#in-video", value=cids["tour.mp4"])
    page.select_option("#in-audio", value=cids["tour.wav"])
    page.click("#run-button")
    page.wait_for_url("**/run/run-*/plan")
    page.wait_for_selector("#run-facts .badge.completed", timeout=90_000)
    page.click("nav.tabs >> text=Analysis")
    page.wait_for_url("**/analysis")
    for kind in ("energy", "spectrum", "tempo", "motion"):
        assert page.locator(f"svg[data-plot='{kind}']").count() == 1, kind
    assert page.locator("svg[data-plot='spectrum'] polyline").count() >= 3  # one curve per band
    # The tempo candidates (metrical levels) as the analysis has them, best first, the beats' level marked.
    run_id = page.url.rsplit("/run/", 1)[1].split("/", 1)[0]
    with stack.http() as http:
        beats = http.get(f"/api/run/{run_id}/analysis").json()["analyses"]["listen"]["result"]["audio"]["beats"]
    rows = page.locator("[data-tempo-levels='listen'] tbody tr")
    shown = [float(rows.nth(i).get_attribute("data-bpm") or 0) for i in range(rows.count())]
    assert shown and shown == [c["bpm"] for c in beats["tempo_candidates"]]
    chosen = float(page.get_attribute("[data-tempo-levels='listen'] tr.chosen", "data-bpm") or 0)
    assert chosen == pytest.approx(beats["tempo"], rel=0.1) and chosen == pytest.approx(130, rel=0.03)
    assert "most likely level" in page.inner_text("[data-analysis='listen']")
    assert not_reloaded(page)
    page.screenshot(path=shots / "18-analysis-every-plot.png", full_page=True)


def test_log_in_from_the_login_page_and_out(anonymous_page: Any, stack: Stack, shots: Path) -> None:
    page = anonymous_page
    response = page.goto("/runs")
    assert response is not None and response.status == 401
    assert "Please log in" in page.inner_text("h1") and page.locator("#nav-user").count() == 0
    page.screenshot(path=shots / "00-please-log-in.png", full_page=True)
    page.fill("#auth-token", "adt_not-a-real-token-at-all")
    page.click("#login-form button[type=submit]")
    page.wait_for_load_state()
    assert "Please log in" in page.inner_text("h1")  # a wrong token: the same page, still anonymous
    assert "adt_not-a-real" not in page.content()  # the token is not echoed back
    page.fill("#auth-token", stack.token)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/runs")
    assert page.inner_text("h1").startswith("Runs")
    user = stack.http().get("/auth/me").json()["user"]
    assert page.inner_text("#nav-user").startswith(user) and page.locator("#nav-logout").is_visible()
    page.screenshot(path=shots / "01-logged-in-runs.png", full_page=True)
    page.click("#nav-logout")
    page.wait_for_url(f"{stack.url}/")
    assert page.locator("#nav-login").is_visible() and page.locator("#count-runs").count() == 0
    page.screenshot(path=shots / "02-logged-out-home.png", full_page=True)


def test_runs_list_updates_live(page: Any, stack: Stack, client: httpx.Client, tmp_path: Path) -> None:
    page.goto("/runs")
    mark_document(page)
    clip = tmp_path / "live.mp4"
    write_test_clip(clip, width=96, height=64, fps=10, duration_s=1.0, tone_hz=611.0)
    with clip.open("rb") as handle:
        cid = client.post("/cache/upload", files={"file": ("live.mp4", handle)}).json()["cid"]
    recipe = (Path(__file__).resolve().parents[2] / "libs/artdag_common/examples/resize.yaml").read_text()
    run_id = client.post("/runs", json={"recipe": recipe, "inputs": {"video": cid}}).json()["run_id"]
    page.wait_for_selector(f"[data-run-row='{run_id}'] .badge.completed", timeout=60_000)
    assert not_reloaded(page)

    # The connection drops; a run starts and finishes meanwhile; the page catches up when it is back.
    page.context.set_offline(True)
    page.wait_for_timeout(300)
    again = client.post("/runs", json={"recipe": recipe.replace("240", "144"), "inputs": {"video": cid}}).json()
    deadline = time.monotonic() + 60
    while client.get(f"/runs/{again['run_id']}").json()["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert page.locator(f"[data-run-row='{again['run_id']}']").count() == 0
    page.context.set_offline(False)
    page.wait_for_selector(f"[data-run-row='{again['run_id']}'] .badge.completed", timeout=30_000)
    assert not_reloaded(page)


def test_pages_errors_storage_and_client(page: Any, stack: Stack, shots: Path) -> None:
    page.goto("/storage")
    page.fill("#sp-name", "scratch")
    page.select_option("#sp-type", "local")
    page.wait_for_selector("#sp-fields input")
    field = page.locator("#sp-fields input").first
    scratch = stack.home / "providers" / "scratch"  # under ARTDAG_PROVIDER_LOCAL_ROOTS' default
    scratch.mkdir(parents=True, exist_ok=True)
    field.fill(str(scratch))
    page.click("#add-provider button[type=submit]")
    page.wait_for_selector("[data-provider='scratch']")
    page.click("[data-provider='scratch'] button:has-text('Test')")
    page.wait_for_selector("[data-provider='scratch'] .test-result .flash.ok")
    page.screenshot(path=shots / "10-storage.png", full_page=True)

    # A recipe with an error: the message, and the line marked in the source.
    page.goto("/recipes")
    page.fill(
        "#recipe-text", "name: broken\ninputs: [video]\nsteps:\n  - {id: a, type: NOPE, inputs: [video]}\noutput: a\n"
    )
    page.click("form[hx-post='/ui/recipes/upload'] button[type=submit]")
    page.wait_for_selector("#recipe-error")
    assert "NOPE" in page.inner_text("#recipe-error")
    assert page.locator(".source .ln.err").count() == 1
    assert page.locator(".source .ln.err").get_attribute("data-n") == "4"
    page.screenshot(path=shots / "11-recipe-error.png", full_page=True)

    response = page.goto("/run/run-00000000000000000000000000000000/plan")
    assert response is not None and response.status == 404
    assert "Not found" in page.inner_text("h1")
    page.screenshot(path=shots / "12-not-found.png", full_page=True)

    page.goto("/download/client")
    link = page.locator("a[href^='/download/client/']").first
    with page.expect_download() as download:
        link.click()
    data = Path(download.value.path()).read_bytes()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "artdag_cli/main.py" in names and any(n.endswith(".dist-info/METADATA") for n in names)
    page.screenshot(path=shots / "13-download-client.png", full_page=True)

    # The run form uploads a file picked next to an input, then selects it.
    page.goto("/recipes")
    page.click("[data-recipe='resize-demo']")
    clip = stack.home / "form-upload.mp4"
    write_test_clip(clip, width=96, height=64, fps=10, duration_s=0.5, tone_hz=877.0)
    page.set_input_files("[data-upload-into='in-video']", str(clip))
    wait_until(page, "document.getElementById('in-video').value.startsWith('Qm')")
    page.click("text=View DAG")
    page.wait_for_url("**/dag")
    wait_until(page, "window.artdagDag && window.artdagDag.nodes().length === 2")
    page.screenshot(path=shots / "17-recipe-dag.png", full_page=True)

    # Media: filter by type, edit a tile's details in place.
    page.goto("/media")
    page.click("nav.filters >> text=Audio")
    page.wait_for_url("**/media?type=audio")
    kinds = page.locator(".tile .kind").all_inner_texts()
    assert kinds and all(k.startswith("audio/") for k in kinds)
    tile = page.locator(".tile").first
    cid = tile.get_attribute("data-cid")
    tile.locator("summary").click()
    tile.locator("input[name=name]").fill("Renamed in the browser")
    tile.locator("input[name=tags]").fill("drums, test")
    tile.locator("button[type=submit]").click()
    page.wait_for_selector(f"#tile-{cid} .flash.ok")
    assert "Renamed in the browser" in page.inner_text(f"#tile-{cid} .name")
    page.screenshot(path=shots / "16-media-edited.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto("/runs")
    page.screenshot(path=shots / "14-phone-runs.png", full_page=True)
    page.goto("/media")
    page.screenshot(path=shots / "15-phone-media.png", full_page=True)
