"""Exactly-once submits: a burst of clients retrying their 503s with an Idempotency-Key makes one run each."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Stack, running_stack

pytestmark = pytest.mark.e2e

CLIENTS = 200


def _recipe(k: int) -> str:
    return f"steps:\n  - {{id: a, type: NOOP, inputs: [], config: {{n: {7_000_000 + k}}}}}\noutput: a\n"


async def _submit_until_accepted(http: httpx.AsyncClient, k: int) -> tuple[str, int]:
    """What a careful client does: the same request, the same key, again after each 503 (or a lost answer)."""
    tries = 0
    while True:
        tries += 1
        try:
            answer = await http.post("/runs", json={"recipe": _recipe(k)}, headers={"Idempotency-Key": f"burst-{k}"})
        except httpx.TransportError:  # a lost answer: the request may or may not have arrived
            await asyncio.sleep(0.1)
            continue
        if answer.status_code == 202:
            return str(answer.json()["run_id"]), tries
        assert answer.status_code == 503, answer.text
        assert "Retry-After" in answer.headers
        await asyncio.sleep(float(answer.headers["Retry-After"]))


async def _burst(st: Stack) -> tuple[list[str], list[int], list[str]]:
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=st.url, headers=st.headers, timeout=30, limits=limits) as http:
        # Each submit sent twice at once (a client that retried too soon): one run between them.
        doubled = await asyncio.gather(*(_submit_until_accepted(http, k) for k in range(CLIENTS) for _ in (0, 1)))
        accepted = doubled[::2]
        assert [run_id for run_id, _ in doubled[1::2]] == [run_id for run_id, _ in accepted]
        # Every client asks once more, as one would whose answer was lost: the same run each time.
        again = await asyncio.gather(*(_submit_until_accepted(http, k) for k in range(CLIENTS)))
        listed = (await http.get("/runs", params={"limit": 500})).json()["runs"]
    assert [run_id for run_id, _ in again] == [run_id for run_id, _ in accepted]
    return [run_id for run_id, _ in accepted], [tries for _, tries in accepted], [r["run_id"] for r in listed]


def test_a_burst_of_retried_submits_makes_one_run_each(tmp_path: Path) -> None:
    with running_stack(tmp_path / "home") as st, st.http() as http:
        run_ids, tries, listed = asyncio.run(_burst(st))
        assert len(set(run_ids)) == CLIENTS
        assert sorted(listed) == sorted(run_ids), "exactly one run per submit, however often it was sent"
        # The same key with another recipe is a mistake, said as such.
        clash = http.post("/runs", json={"recipe": _recipe(CLIENTS + 1)}, headers={"Idempotency-Key": "burst-0"})
        assert clash.status_code == 409 and clash.json()["error"]["field"] == "Idempotency-Key", clash.text
        bad = http.post("/runs", json={"recipe": _recipe(0)}, headers={"Idempotency-Key": "no spaces allowed"})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "Idempotency-Key", bad.text
        # Another user's key is theirs: the same key makes another run.
        other = httpx.post(
            f"{st.url}/runs",
            json={"recipe": _recipe(0)},
            headers={"Authorization": f"Bearer {st.token_for('someone-else')}", "Idempotency-Key": "burst-0"},
            timeout=30,
        )
        assert other.status_code == 202 and other.json()["run_id"] not in run_ids, other.text
        print(f"{CLIENTS} clients: {sum(tries)} submits sent for {CLIENTS} runs")
