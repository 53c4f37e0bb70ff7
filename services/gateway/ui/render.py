"""Jinja2 set-up for the web UI: one environment, a few filters, one function to render a page."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from artdag_common import __version__
from artdag_common.schemas import Principal
from services.gateway.auth import local_path
from services.gateway.ui.negotiate import NEGOTIATED

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

PAGE_PATHS = {page: public for public, page in NEGOTIATED.items()}

NAV = (
    ("/", "Home"),
    ("/runs", "Runs"),
    ("/recipes", "Recipes"),
    ("/effects", "Effects"),
    ("/media", "Media"),
    ("/storage", "Storage"),
    ("/download/client", "CLI"),
)


def human_bytes(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def short(value: str | None, n: int = 12) -> str:
    if not value:
        return "—"
    return value if len(value) <= n + 1 else value[:n] + "…"


def ago(timestamp: float | None) -> str:
    if not timestamp:
        return "—"
    seconds = max(0.0, time.time() - timestamp)
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h ago"
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def clock(timestamp: float | None) -> str:
    if not timestamp:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    enable_async=False,
)
ENV.filters.update(bytes=human_bytes, short=short, ago=ago, clock=clock, seconds=seconds, pretty_json=pretty_json)
ENV.globals.update(version=__version__, nav=NAV)


def signed_in(request: Request) -> Principal | None:
    """Who the request's token or session belongs to, once a route has checked it (None: anonymous)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal


def public_path(request: Request) -> str:
    """The page's address as the browser knows it (`/runs`, not `/ui/runs`), with its query."""
    path = PAGE_PATHS.get(request.url.path, request.url.path)
    return f"{path}?{request.url.query}" if request.url.query else path


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page (or fragment) as an HTML response; `path` (the public path) marks the current nav entry,
    `user` (the signed-in principal or None) fills the nav's Log in / Log out."""
    path = request.url.path
    path = PAGE_PATHS.get(path, path)
    context.setdefault("user", signed_in(request))
    context.setdefault("here", local_path(public_path(request)))
    body = ENV.get_template(template).render(request=request, path=path, **context)
    return HTMLResponse(
        body, status_code=status_code, headers={"Vary": "Accept, HX-Request, Cookie", "Cache-Control": "no-store"}
    )
