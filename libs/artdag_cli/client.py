"""A small HTTP client for the gateway: upload, submit, wait, download."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from artdag_common.errors import ArtdagError
from artdag_common.tokens import client_token

TERMINAL = {"completed", "failed", "cancelled"}


class ApiError(ArtdagError):
    """The server refused a request; the message is its explanation."""


class Client:
    """Talks to one artdag gateway."""

    def __init__(self, server: str, timeout_s: float = 30.0, token: str | None = None) -> None:
        """`token`: sent as `Authorization: Bearer`; default `ARTDAG_TOKEN` or the one `artdag up` saved."""
        token = token if token is not None else client_token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server.rstrip("/"), timeout=timeout_s, headers=headers)

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the server at {self.http.base_url}: {exc}") from None

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            hint = ""
            if response.status_code == 401:
                hint = " (no valid token: set ARTDAG_TOKEN, or ARTDAG_HOME to where `artdag up` saved one)"
            raise ApiError(f"HTTP {response.status_code}: {detail}{hint}")
        return response.json()

    def upload(self, path: Path) -> str:
        cid: str = self.upload_record(path)["cid"]
        return cid

    def submit(self, recipe: str, inputs: dict[str, str], *, fresh: bool = False) -> str:
        """Start a run; `fresh` renders every step again instead of reusing cached results."""
        payload: dict[str, Any] = {"recipe": recipe, "inputs": inputs}
        if fresh:
            payload["fresh"] = True
        body = self._check(self._send("POST", "/runs", json=payload))
        run_id: str = body["run_id"]
        return run_id

    def plan(self, recipe: str, inputs: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = self._check(self._send("POST", "/api/plan", json={"recipe": recipe, "inputs": inputs}))
        return body

    def assets(self) -> list[dict[str, Any]]:
        """Your asset names and the shared ones."""
        body: dict[str, Any] = self._check(self._send("GET", "/assets"))
        found: list[dict[str, Any]] = body["assets"]
        return found

    def add_effect(self, source: str, name: str | None = None) -> dict[str, Any]:
        """Store an effect's source (checked by the server first) and name it (`name`, else the name it
        declares); its CID, names and parameters."""
        payload = {"source": source} if name is None else {"source": source, "name": name}
        body: dict[str, Any] = self._check(self._send("POST", "/effects", json=payload))
        return body

    def add_asset(self, name: str, cid: str, *, shared: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = self._check(
            self._send("POST", "/assets", json={"name": name, "cid": cid, "shared": shared})
        )
        return body

    def delete_asset(self, name: str, *, shared: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = self._check(
            self._send("DELETE", f"/assets/{quote(name, safe='')}", params={"shared": str(shared).lower()})
        )
        return body

    def recipe(self, ref: str) -> dict[str, Any]:
        """A stored recipe by CID, name (the newest you may see) or name@cid."""
        body: dict[str, Any] = self._check(self._send("GET", f"/recipes/{quote(ref, safe='@')}"))
        return body

    def execute(self, plan_id: str) -> str:
        body = self._check(self._send("POST", "/api/execute", json={"plan_id": plan_id}))
        run_id: str = body["run_id"]
        return run_id

    def runs(self, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        body: dict[str, Any] = self._check(self._send("GET", "/runs", params={"limit": limit, "offset": offset}))
        return body

    def recipes(self, limit: int = 100) -> dict[str, Any]:
        body: dict[str, Any] = self._check(self._send("GET", "/recipes", params={"limit": limit}))
        return body

    def upload_record(self, path: Path) -> dict[str, Any]:
        with path.open("rb") as handle:
            body: dict[str, Any] = self._check(self._send("POST", "/cache/upload", files={"file": (path.name, handle)}))
        return body

    def run(self, run_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self._check(self._send("GET", f"/runs/{run_id}"))
        return body

    def wait(
        self, run_id: str, timeout_s: float, on_update: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.run(run_id)
            if on_update is not None:
                on_update(state)
            if state["status"] in TERMINAL:
                return state
            if time.monotonic() > deadline:
                raise ApiError(f"run {run_id} did not finish within {timeout_s:g} s (status {state['status']})")
            time.sleep(0.2)

    def analyze(self, cid: str, features: list[str], params: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = self._check(
            self._send(
                "POST", "/api/analyze", json={"cid": cid, "features": features, "params": params or {}}, timeout=600.0
            )
        )
        return body

    def locations(self, cid: str) -> dict[str, Any]:
        """Where `cid` is kept: whether this server's store holds it, and each copy at a storage provider."""
        body: dict[str, Any] = self._check(self._send("GET", f"/cache/{cid}/locations"))
        return body

    def copy(self, cid: str, provider_id: str | None = None) -> dict[str, Any]:
        """Copy `cid` to one of your storage providers (None: your default one); the copy is made in the
        background, and the answer is where it is kept now (the new copy `pending`)."""
        payload = {"provider_id": provider_id} if provider_id else {}
        body: dict[str, Any] = self._check(self._send("POST", f"/cache/{cid}/locations", json=payload))
        return body

    def providers(self) -> list[dict[str, Any]]:
        """Your storage providers (secrets masked)."""
        body: dict[str, Any] = self._check(self._send("GET", "/storage"))
        found: list[dict[str, Any]] = body["providers"]
        return found

    def download(self, cid: str, dest: Path) -> None:
        tmp = dest.with_name(dest.name + ".part")
        with self.http.stream("GET", f"/cache/{cid}/raw") as response:
            if response.status_code >= 400:
                response.read()
                self._check(response)
            with tmp.open("wb") as out:
                for chunk in response.iter_bytes(1024 * 1024):
                    out.write(chunk)
        tmp.replace(dest)

    def get_json(self, path: str) -> Any:
        """GET a JSON document from the gateway."""
        return self._check(self.http.get(path))

    def get_bytes(self, path: str) -> bytes:
        """GET raw bytes from the gateway."""
        response = self.http.get(path)
        if response.status_code >= 400:
            self._check(response)
        return response.content
