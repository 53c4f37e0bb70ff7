"""A tiny HTTP listener per service for Kubernetes probes and Prometheus.

`GET /livez` answers 200 while the event loop turns (a wedged process stops
answering); `GET /readyz` answers 200 only while the service is started and its
NATS connection is up (503 otherwise, with the reason); `GET /metrics` answers the
Prometheus text. Plain asyncio: no web framework in services that have no HTTP API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from artdag_common.metrics import prometheus_text

log = logging.getLogger(__name__)

# A probe request is one short line and a few headers; anything longer is not a probe.
_MAX_REQUEST_BYTES = 8192
_READ_TIMEOUT_S = 5.0

Readiness = Callable[[], str | None]


def _response(status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request"}.get(
        status, "Service Unavailable"
    )
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class ProbeServer:
    """Answers `/livez`, `/readyz` and `/metrics`; `not_ready()` gives a reason, or None when ready."""

    def __init__(self, host: str, port: int, not_ready: Readiness, *, metrics: bool) -> None:
        self.host = host
        self.port = port
        self.not_ready = not_ready
        self.metrics = metrics
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        # Port 0 asks the OS for a free one (tests): report the one it gave.
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("probes and metrics on http://%s:%d", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)

    def answer(self, method: str, path: str) -> bytes:
        """The whole HTTP response to one request line."""
        path = path.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return _response(405, b"only GET\n")
        if path == "/livez":
            return _response(200, b"ok\n")
        if path == "/readyz":
            reason = self.not_ready()
            return _response(200, b"ready\n") if reason is None else _response(503, f"{reason}\n".encode())
        if path == "/metrics" and self.metrics:
            return _response(200, prometheus_text(), "text/plain; version=0.0.4; charset=utf-8")
        return _response(404, b"not found\n")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > _MAX_REQUEST_BYTES:
                response = _response(400, b"request too large\n")
            else:
                parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
                response = _response(400, b"bad request\n") if len(parts) != 3 else self.answer(parts[0], parts[1])
                if parts and parts[0] == "HEAD":
                    response = response.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"  # the headers alone
            writer.write(response)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
