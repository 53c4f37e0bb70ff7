"""The effect pages in a real browser (Debian's chromium driven by Playwright), against the whole stack.

What a person writing an effect does: open Effects from the menu, upload a source with a mistake and
see it marked at its line and column, upload a good one and land on its page (source, parameters,
names), preview it on the stack's sample clip with a colour of their choosing, and watch the output
play. The output's pixels are read twice: from the playing video (drawn on a canvas) and from its
bytes; its CID is the one the same recipe gives over the API. Screenshots land in
tests/output/browser/ (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest

from services.gateway.ui.preview import SAMPLE_NAME, preview_recipe
from tests.e2e.conftest import Stack
from tests.e2e.test_browser import SHOTS, logged_in_tab, wait_until

pytestmark = pytest.mark.e2e

BROKEN = "(define-effect broken\n  (+ frame nothing))"
GOOD = """; paints every pixel, mixed with the frame by amount
(define-effect browser-paint
  :description "one colour over the picture"
  :params ((color :type color :default [255 0 0])
           (amount :default 1.0 :range [0 1]))
  (mix frame color amount))
"""


@pytest.fixture
def page(stack: Stack) -> Iterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with logged_in_tab(stack) as tab:
        yield tab


# The playing video's mean colour: its current frame drawn on a canvas, read back (same origin).
MEAN_COLOUR = """(() => {
  const v = document.getElementById('preview-video');
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
  const n = d.length / 4;
  return sum.map(s => s / n);
})()"""


def test_write_an_effect_see_its_page_and_preview_it(page: Any, stack: Stack, tmp_path: Path) -> None:
    page.goto("/")
    page.click("nav.nav >> text=Effects")
    page.wait_for_url("**/effects")
    assert page.get_attribute("nav.nav a[href='/effects']", "aria-current") == "page"

    # A mistake: refused, with its line and column, and the line marked in the source shown.
    page.fill("#effect-source", BROKEN)
    page.click("#effect-upload")
    page.wait_for_selector("#effect-error")
    message = page.inner_text("#effect-error")
    assert "line 2, column 12" in message and "unknown name 'nothing'" in message, message
    assert page.locator("#effect-result .ln.err").get_attribute("data-n") == "2"
    page.screenshot(path=SHOTS / "effects-01-error.png", full_page=True)

    # A good one: stored, named, and its page shows the source, the parameters and the name.
    page.fill("#effect-source", GOOD)
    page.fill("#effect-name", "browser-paint")
    page.click("#effect-upload")
    page.wait_for_url("**/effect/Qm*")
    cid = page.inner_text("#effect-cid")
    assert page.inner_text("#effect-name") == "browser-paint"
    assert page.inner_text("#effect-description") == "one colour over the picture"
    assert page.locator("#effect-params tr[data-param]").evaluate_all("rows => rows.map(r => r.dataset.param)") == [
        "color",
        "amount",
    ]
    assert "0 – 1" in page.inner_text("#effect-params tr[data-param='amount']")
    assert page.locator("#effect-names [data-name='browser-paint']").count() == 1
    source = page.inner_text("pre.source")
    assert "(define-effect browser-paint" in source and "(mix frame color amount)" in source
    assert page.locator("pre.source .c").first.inner_text().startswith("; paints"), "comments are highlighted"
    page.screenshot(path=SHOTS / "effects-02-page.png", full_page=True)

    # Preview on the sample clip, in green: a run of its own, followed until the video plays.
    page.select_option("#preview-clip", "sample")
    page.fill("#param-color", "#00ff00")
    page.click("#preview-button")
    page.wait_for_selector("#preview-run")
    page.wait_for_selector("#preview-video", timeout=120_000)
    assert page.get_attribute("#preview-run", "data-status") == "completed"
    page.evaluate("(() => { const v = document.getElementById('preview-video'); v.muted = true; return v.play(); })()")
    wait_until(page, "(v => v.readyState >= 2 && v.currentTime > 0)(document.getElementById('preview-video'))", 60_000)
    page.evaluate("document.getElementById('preview-video').pause()")
    shown = np.array(page.evaluate(MEAN_COLOUR))
    assert np.abs(shown - [0, 255, 0]).max() < 16, f"the video shows {shown}, not green"
    page.screenshot(path=SHOTS / "effects-03-preview.png", full_page=True)

    # The output's bytes are green too, and it is what the same recipe gives over the API.
    output = page.get_attribute("#preview-video", "data-cid")
    run_id = page.get_attribute("#preview-run", "data-run")
    with stack.http() as client:
        assert client.get(f"/runs/{run_id}").json()["output_cid"] == output
        path = tmp_path / "preview.mp4"
        path.write_bytes(client.get(f"/cache/{output}/raw").content)
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(frames) == 50, "two seconds of the 25 fps sample clip"
        assert np.abs(frames[0].astype(int).mean(axis=(0, 1)) - [0, 255, 0]).max() < 12
        recipe = preview_recipe(cid, {"color": [0, 255, 0]}, sample=True)
        planned = client.post("/api/plan", json={"recipe": recipe, "inputs": {}})
        assert planned.status_code == 200, planned.text
        out = next(s for s in planned.json()["steps"] if s["step_id"] == planned.json()["plan"]["output_step"])
        assert out["status"] == "cached", "the preview rendered exactly this recipe's output step"
        sample = [a for a in client.get("/assets").json()["assets"] if a["name"] == SAMPLE_NAME]
        assert len(sample) == 1 and sample[0]["shared"], "the sample clip is a shared asset"
        assert httpx.get(f"{stack.url}/effects", timeout=10).status_code == 401, "the effects need a login"

    # The list shows it, by name; the page also answers to the name.
    page.click("nav.nav >> text=Effects")
    page.wait_for_selector(f"#effects tr[data-effect='{cid}'] [data-name='browser-paint']")
    page.goto("/effect/browser-paint")
    assert page.inner_text("#effect-cid") == cid
