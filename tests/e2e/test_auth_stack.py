"""End to end: the token `artdag up` makes, `artdag token create`, and `artdag verify` (signature, re-render)."""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from artdag_cli.demo_media import write_test_clip
from artdag_common.examples import example_path
from artdag_common.tokens import local_user, token_path
from tests.e2e.conftest import CLI, Stack, clean_env

RECIPE = example_path("resize").read_text()


def wait_until(client: httpx.Client, path: str, key: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(path).json()
        if body.get(key) and body.get("status", "completed") in ("completed", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def test_up_made_an_admin_token_for_the_local_user(stack: Stack, client: httpx.Client) -> None:
    path = token_path(stack.home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    me = client.get("/auth/me").json()
    assert me["user"] == local_user() and me["roles"] == ["admin"]
    anonymous = httpx.post(f"{stack.url}/runs", json={"recipe": RECIPE}, timeout=10)
    assert anonymous.status_code == 401
    assert stack.token not in stack.log.read_text()  # never logged


def test_token_create_makes_a_working_token_for_another_user(stack: Stack, client: httpx.Client) -> None:
    made = subprocess.run(
        [str(CLI), "token", "create", "--user", "zoe", "--home", str(stack.home)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("adt_") and token not in (stack.home / "artdag.db").read_bytes().decode("latin-1")
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as zoe:
        assert zoe.get("/auth/me").json() == {
            "user": "zoe",
            "roles": [],
            "scopes": [],
            "source": "local",
            "expires_at": zoe.get("/auth/me").json()["expires_at"],
        }
        assert zoe.get("/runs").json()["total"] == 0  # the admin's runs are not zoe's
    bad = subprocess.run(
        [str(CLI), "token", "create", "--user", "no spaces", "--home", str(stack.home)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "--user" in bad.stderr


def test_verify_checks_the_signature_and_re_renders(stack: Stack, client: httpx.Client, tmp_path: Path) -> None:
    clip = tmp_path / "verify.mp4"
    write_test_clip(clip, width=160, height=120, fps=10, duration_s=1.0)
    with clip.open("rb") as handle:
        source = client.post("/cache/upload", files={"file": ("verify.mp4", handle)}).json()["cid"]
    started = client.post("/runs", json={"recipe": RECIPE, "inputs": {"video": source}})
    assert started.status_code == 202, started.text
    run = wait_until(client, f"/runs/{started.json()['run_id']}", "output_cid")
    assert run["status"] == "completed", run
    output = run["output_cid"]
    wait_until(client, f"/cache/{output}/meta", "provenance_cid")

    checked = subprocess.run(
        [str(CLI), "verify", output, "--server", stack.url],
        env=stack.cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "signature OK" in checked.stdout

    rendered = subprocess.run(
        [str(CLI), "verify", output, "--render", "--server", stack.url],
        env=stack.cli_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    assert "bytes match" in rendered.stdout
    # The re-render really rendered: its run has no step served from the cache.
    runs = client.get("/runs", params={"limit": 1}).json()["runs"]
    again = client.get(f"/runs/{runs[0]['run_id']}").json()
    assert again["fresh"] is True and again["output_cid"] == output
    assert all(step["status"] != "cached" for step in again["steps"].values() if step["node_type"] != "SOURCE")

    no_provenance = subprocess.run(
        [str(CLI), "verify", source, "--server", stack.url],
        env=stack.cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert no_provenance.returncode == 1 and "no provenance record" in no_provenance.stderr


def test_a_plain_user_renders_and_downloads_at_once_and_sees_only_theirs(
    stack: Stack, client: httpx.Client, tmp_path: Path
) -> None:
    made = subprocess.run(
        [str(CLI), "token", "create", "--user", "yuri", "--home", str(stack.home)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    clip = tmp_path / "yuri.mp4"
    write_test_clip(clip, width=128, height=96, fps=10, duration_s=1.0, tone_hz=330.0)
    admins = client.post("/cache/upload", files={"file": ("admins.bin", b"the admin's own bytes")}).json()["cid"]
    with httpx.Client(
        base_url=stack.url, headers={"Authorization": f"Bearer {made.stdout.strip()}"}, timeout=30
    ) as yuri:
        assert yuri.get(f"/cache/{admins}/raw").status_code == 404
        # Another user's content is no input of his (the planner checks, with his viewer): it reads as unknown.
        for path in ("/runs", "/api/plan"):
            refused = yuri.post(path, json={"recipe": RECIPE, "inputs": {"video": admins}})
            assert refused.status_code == 422 and "upload it first" in refused.json()["detail"], refused.text
        with clip.open("rb") as handle:
            source = yuri.post("/cache/upload", files={"file": ("yuri.mp4", handle)}).json()["cid"]
        run_id = yuri.post("/runs", json={"recipe": RECIPE, "inputs": {"video": source}}).json()["run_id"]
        deadline = time.monotonic() + 60
        while (run := yuri.get(f"/runs/{run_id}").json())["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert run["status"] == "completed", run
        # Downloadable the moment the run says it is done.
        assert yuri.get(f"/cache/{run['output_cid']}/raw").status_code == 200
        assert run_id in [r["run_id"] for r in yuri.get("/runs").json()["runs"]]
        # What the run recorded (provenance, plan) and what yuri analyzes are his to read too.
        meta = wait_until(yuri, f"/cache/{run['output_cid']}/meta", "provenance_cid")
        assert yuri.get(f"/cache/{meta['provenance_cid']}/raw").json()["rendered_by"] == "yuri"
        deadline = time.monotonic() + 10
        while yuri.get(f"/cache/{run['plan_cid']}/raw").status_code != 200:
            assert time.monotonic() < deadline, "the run's plan never became yuri's"
            time.sleep(0.1)
        analysis = yuri.post("/api/analyze", json={"cid": source, "features": ["metadata"]})
        assert analysis.status_code == 200, analysis.text
        assert yuri.get(f"/cache/{analysis.json()['result_cid']}/raw").status_code == 200
    assert client.get(f"/runs/{run_id}").status_code == 200  # the admin sees every run


def _user(stack: Stack, name: str) -> httpx.Client:
    made = subprocess.run(
        [str(CLI), "token", "create", "--user", name, "--home", str(stack.home)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {made.stdout.strip()}"}, timeout=30)


def test_recipes_are_their_uploaders_and_examples_everyones(stack: Stack, client: httpx.Client) -> None:
    text = RECIPE.replace("name: resize", "name: shared-resize") + "\n# shared\n"
    with _user(stack, "una") as una, _user(stack, "vic") as vic, _user(stack, "wes") as wes:
        mine = una.post("/recipes/upload", content=text)
        assert mine.status_code == 201, mine.text
        recipe_id = mine.json()["recipe_id"]
        assert vic.get(f"/recipes/{recipe_id}").status_code == 404
        assert vic.post("/recipes/upload", content=text).json()["recipe_id"] == recipe_id  # the same recipe
        assert vic.get(f"/recipes/{recipe_id}").status_code == 200
        assert wes.get(f"/recipes/{recipe_id}").status_code == 404
        assert recipe_id not in [r["recipe_id"] for r in wes.get("/recipes").json()["recipes"]]
        assert wes.delete(f"/recipes/{recipe_id}").status_code == 404
        assert vic.delete(f"/recipes/{recipe_id}").status_code == 200  # vic lets go of it…
        assert vic.get(f"/recipes/{recipe_id}").status_code == 404
        assert una.get(f"/recipes/{recipe_id}").status_code == 200  # …una still has it
        examples = [r for r in wes.get("/recipes").json()["recipes"] if r["example"]]
        assert examples, "the examples are everyone's"
        assert wes.delete(f"/recipes/{examples[0]['recipe_id']}").status_code == 403
        assert client.get(f"/recipes/{recipe_id}").status_code == 200  # the admin sees all
