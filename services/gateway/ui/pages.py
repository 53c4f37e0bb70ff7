"""The web UI's pages. Each gathers what it shows over NATS (like the JSON routes) and renders a template.

Every page asks as the signed-in user: lists and lookups carry `viewer=`, runs, recipes and providers
go through the same ownership checks as the JSON API (another user's thing is "not found"), and a page
of private data answers an anonymous visitor with the 401 login page.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from artdag_common import subjects
from artdag_common.cid import validate_cid
from artdag_common.contracts import Cache, Planner, health_of
from artdag_common.errors import ArtdagError, InvalidInputError, NotFoundError
from artdag_common.ids import check_step_id
from artdag_common.recipe import RecipeRef, is_sexp_recipe, parse_recipe
from artdag_common.recipe_includes import load_includes
from artdag_common.schemas import (
    AssetListRequest,
    CidRequest,
    ContentList,
    ContentRecord,
    HealthRequest,
    ListRunsRequest,
    MediaListRequest,
    Plan,
    Principal,
    RecipeList,
    RecipeRecord,
    RunAnalysis,
    RunList,
    RunRequest,
    RunState,
    RunSummary,
    StepStatus,
    StorageListRequest,
    StorageProviderList,
    StorageType,
)
from services.gateway.auth import CurrentUser, OptionalUser, local_path, optional_user
from services.gateway.deps import Gateway, GatewayDep
from services.gateway.effects import REF_PATTERN, effects_of, find_effect, names_for
from services.gateway.policy import owned_run, viewer_of, visible_recipe
from services.gateway.ui import dag, plots
from services.gateway.ui.events import last_sequence
from services.gateway.ui.highlight import highlight_effect, highlight_recipe
from services.gateway.ui.preview import PREVIEW_SECONDS, SAMPLE_NAME, colour_hex
from services.gateway.ui.render import render

# Every page knows who is signed in (for the nav), whether or not it needs a user.
router = APIRouter(include_in_schema=False, dependencies=[Depends(optional_user)])

RUNS_PAGE = 20
# One-step runs the gateway makes for itself (GET /cache/{cid}/thumbnail and /mp4): not the user's work.
DERIVED = ("thumbnail", "browser-mp4")
MEDIA_PAGE = 48
MEDIA_FILTERS = (("", "All"), ("video", "Video"), ("audio", "Audio"), ("image", "Images"), ("application", "Other"))


async def _run_rows(gw: Gateway, runs: list[RunSummary]) -> list[dict[str, Any]]:
    """Each listed run with its step counts (for the progress bars); the runs come from a viewer's list."""

    async def one(summary: RunSummary) -> dict[str, Any]:
        try:
            state: RunState = await gw.call(Planner.get_run, RunRequest(run_id=summary.run_id))
        except ArtdagError:
            return {"run": summary, "done": 0, "total": 0}
        done = sum(1 for s in state.steps.values() if s.status.done)
        return {"run": summary, "done": done, "total": len(state.steps)}

    return list(await asyncio.gather(*(one(r) for r in runs)))


async def _health(gw: Gateway, service: str) -> dict[str, Any]:
    try:
        reply = await gw.call(health_of(service), HealthRequest(), timeout_s=gw.settings.health_timeout_s)
    except ArtdagError as exc:
        return {"service": service, "ok": False, "error": exc.message}
    return {"service": service, "ok": reply.ok, "uptime_s": reply.uptime_s, "instance": reply.instance}


async def _counts(gw: Gateway, user: Principal) -> tuple[RunList, dict[str, int]]:
    viewer = user.viewer()
    runs, recipes, media = await asyncio.gather(
        gw.call(Planner.list_runs, ListRunsRequest(limit=50, viewer=viewer)),
        gw.call(Planner.recipe_list, ListRunsRequest(limit=1, viewer=viewer)),
        gw.call(Cache.list, MediaListRequest(limit=1, viewer=viewer)),
    )
    return runs, {"runs": runs.total, "recipes": recipes.total, "media": media.total}


@router.get("/ui/home")
async def home(request: Request, gw: GatewayDep, user: OptionalUser) -> HTMLResponse:
    # Anonymous visitors see the server, not anyone's runs, recipes or media.
    services = await asyncio.gather(*(_health(gw, s) for s in subjects.SERVICES))
    rows: list[dict[str, Any]] = []
    counts: dict[str, int] | None = None
    if user is not None:
        runs, counts = await _counts(gw, user)
        rows = await _run_rows(gw, [r for r in runs.runs if r.recipe_name not in DERIVED][:5])
    nats = gw.runtime.nc.connected_url
    return render(
        request,
        "home.html",
        runs=rows,
        counts=counts,
        services=services,
        server={
            "store": gw.settings.store.kind,
            "bus": nats.netloc if nats else "—",
            "cid_version": gw.settings.store.cid_version,
            "max_upload": gw.settings.max_upload_bytes,
        },
    )


@router.get("/ui/runs")
async def runs_page(
    request: Request, gw: GatewayDep, user: CurrentUser, page: Annotated[int, Query(ge=1, le=10_000)] = 1
) -> HTMLResponse:
    after = await last_sequence(gw)
    query = ListRunsRequest(limit=RUNS_PAGE, offset=(page - 1) * RUNS_PAGE, viewer=user.viewer())
    found: RunList = await gw.call(Planner.list_runs, query)
    rows = await _run_rows(gw, found.runs)
    pages = max(1, -(-found.total // RUNS_PAGE))
    return render(
        request, "runs.html", rows=rows, total=found.total, page=page, pages=pages, after=after, derived=DERIVED
    )


async def _run_context(gw: Gateway, user: Principal, run_id: str) -> dict[str, Any]:
    after = await last_sequence(gw)  # before reading the state: nothing between the two is lost
    state = await owned_run(gw, user, run_id)
    done = sum(1 for s in state.steps.values() if s.status.done)
    return {"run": state, "done": done, "total": len(state.steps), "after": after}


async def _plan(gw: Gateway, run_id: str) -> Plan | None:
    try:
        plan: Plan = await gw.call(Planner.get_plan, RunRequest(run_id=run_id))
    except NotFoundError:
        return None
    return plan


@router.get("/run/{run_id}")
@router.get("/run/{run_id}/plan")
async def run_plan(request: Request, run_id: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    context = await _run_context(gw, user, run_id)
    plan = await _plan(gw, context["run"].run_id)
    elements = dag.plan_elements(plan, context["run"]) if plan is not None else None
    return render(
        request,
        "run_plan.html",
        tab="plan",
        plan=plan,
        elements=dag.as_json(elements) if elements else None,
        **context,
    )


@router.get("/ui/run/{run_id}/graph")
async def run_graph(run_id: str, gw: GatewayDep, user: CurrentUser) -> JSONResponse:
    """The DAG's elements now: the page fetches them again when planning replaces the plan."""
    state = await owned_run(gw, user, run_id)
    plan = await _plan(gw, state.run_id)
    elements = dag.plan_elements(plan, state) if plan is not None else {"nodes": [], "edges": []}
    return JSONResponse(elements, headers={"Cache-Control": "no-store"})


@router.get("/ui/run/{run_id}/step/{step_id}")
async def run_step(request: Request, run_id: str, step_id: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    state = await owned_run(gw, user, run_id)
    step_id = check_step_id(step_id)
    plan = await _plan(gw, state.run_id)
    planned = next((s for s in plan.steps if s.step_id == step_id), None) if plan else None
    live = state.steps.get(step_id)
    if planned is None and live is None:
        raise NotFoundError(f"run {run_id} has no step {step_id}", field="step_id")
    record: ContentRecord | None = None
    if live is not None and live.output_cid:
        try:
            query = CidRequest(cid=live.output_cid, viewer=user.viewer())
            record = await gw.call(Cache.stat, query)
        except ArtdagError:
            record = None
    return render(request, "_step.html", run=state, step_id=step_id, planned=planned, live=live, record=record)


@router.get("/run/{run_id}/analysis")
async def run_analysis(request: Request, run_id: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    context = await _run_context(gw, user, run_id)
    query = RunRequest(run_id=context["run"].run_id)
    found: RunAnalysis = await gw.call(Planner.get_analysis, query)
    analyses = []
    for name, entry in found.analyses.items():
        result = entry.get("result") or {}
        beats = (result.get("audio") or {}).get("beats") or {}
        scenes = ((result.get("video") or {}).get("scene_changes") or {}).get("times") or []
        analyses.append(
            {
                "name": name,
                "entry": entry,
                "result": result,
                "energy": plots.energy_plot(result),
                "spectrum": plots.spectrum_plot(result),
                "tempo_plot": plots.tempo_plot(result),
                "tempo_levels": plots.tempo_levels(result),
                "tempo_hint": (entry.get("params") or {}).get("tempo_hint"),
                "motion": plots.motion_plot(result),
                "beats": beats,
                "scenes": scenes,
            }
        )
    return render(request, "run_analysis.html", tab="analysis", analyses=analyses, **context)


@router.get("/run/{run_id}/artifacts")
async def run_artifacts(request: Request, run_id: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    context = await _run_context(gw, user, run_id)
    state: RunState = context["run"]
    plan = await _plan(gw, state.run_id)
    order = [s.step_id for s in plan.steps] if plan else list(state.steps)
    with_output = [sid for sid in order if sid in state.steps and state.steps[sid].output_cid]
    # The output first, then the rest in plan order.
    if state.output_step in with_output:
        with_output.remove(state.output_step)
        with_output.insert(0, state.output_step)
    with_output = with_output[:200]

    async def stat(cid: str) -> ContentRecord | None:
        try:
            query = CidRequest(cid=cid, viewer=user.viewer())
            record: ContentRecord = await gw.call(Cache.stat, query)
        except ArtdagError:
            return None
        return record

    records = await asyncio.gather(*(stat(state.steps[sid].output_cid or "") for sid in with_output))
    artifacts = [
        {"step_id": sid, "step": state.steps[sid], "record": rec, "output": sid == state.output_step}
        for sid, rec in zip(with_output, records, strict=True)
    ]
    return render(request, "run_artifacts.html", tab="artifacts", artifacts=artifacts, **context)


# -- recipes --------------------------------------------------------------------------


@router.get("/ui/recipes")
async def recipes_page(request: Request, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    query = ListRunsRequest(limit=500, viewer=user.viewer())
    found: RecipeList = await gw.call(Planner.recipe_list, query)
    return render(request, "recipes.html", recipes=found.recipes, total=found.total)


def _recipe_id(recipe_id: str) -> str:
    """`/recipe/beat-sync`, `/recipe/<cid>` or `/recipe/beat-sync@<cid>`; anything else is no page (404)."""
    try:
        return str(RecipeRef.parse(recipe_id))
    except InvalidInputError:
        raise NotFoundError("no such recipe: give its name, its CID or name@cid", field="recipe_id") from None


async def _recipe(gw: Gateway, user: Principal, recipe_id: str) -> RecipeRecord:
    return await visible_recipe(gw, user, _recipe_id(recipe_id))


def _media_kind(input_type: str) -> str | None:
    return input_type if input_type in ("video", "audio", "image") else None


@router.get("/recipe/{recipe_id}")
async def recipe_page(request: Request, recipe_id: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    record = await _recipe(gw, user, recipe_id)

    async def choices(kind: str | None) -> list[ContentRecord]:
        query = MediaListRequest(media_type=kind, limit=100, viewer=user.viewer())
        found: ContentList = await gw.call(Cache.list, query)
        return found.items

    lists = await asyncio.gather(*(choices(_media_kind(i.type)) for i in record.inputs))
    inputs = [{"spec": spec, "choices": items} for spec, items in zip(record.inputs, lists, strict=True)]
    return render(request, "recipe.html", recipe=record, inputs=inputs, source=highlight_recipe(record.text))


@router.get("/recipe/{recipe_id}/dag")
async def recipe_dag(request: Request, recipe_id: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    record = await _recipe(gw, user, recipe_id)
    if "include" in record.text and is_sexp_recipe(record.text):
        await load_includes(record.text, lambda cid, limit: gw.store.get_bytes(cid, max_bytes=limit))
    recipe = await asyncio.to_thread(parse_recipe, record.text)
    return render(request, "recipe_dag.html", recipe=record, elements=dag.as_json(dag.recipe_elements(recipe)))


# -- effects --------------------------------------------------------------------------

EFFECTS_PAGE = 200
_EFFECT_REF = re.compile(REF_PATTERN)


@router.get("/ui/effects")
async def effects_page(request: Request, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    found = await effects_of(gw, user, EFFECTS_PAGE)
    return render(request, "effects.html", effects=found.effects, total=found.total)


@router.get("/effect/{ref}")
async def effect_page(request: Request, ref: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    """An effect (by CID or a name): its source, parameters and names, and a preview form."""
    if not _EFFECT_REF.match(ref):
        raise NotFoundError("no such effect: give its CID or a name it goes by", field="ref")
    effect = await find_effect(gw, user, ref)
    query = MediaListRequest(media_type="video", limit=100, viewer=user.viewer())
    videos: ContentList
    videos, names = await asyncio.gather(gw.call(Cache.list, query), names_for(gw, user))
    return render(
        request,
        "effect.html",
        effect=effect,
        names=names.get(effect.cid, []),
        source=highlight_effect(effect.source or ""),
        videos=videos.items,
        sample=SAMPLE_NAME,
        seconds=PREVIEW_SECONDS,
        colour=colour_hex,
    )


@router.get("/ui/effect/{cid}/preview/{run_id}")
async def effect_preview(request: Request, cid: str, run_id: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    """A preview's run as it stands (the fragment asks again until the run is finished)."""
    state = await owned_run(gw, user, run_id)
    return render(request, "_effect_preview.html", run=state, cid=validate_cid(cid))


# -- media ----------------------------------------------------------------------------


@router.get("/ui/media")
async def media_page(
    request: Request,
    gw: GatewayDep,
    user: OptionalUser,
    media_type: Annotated[str | None, Query(alias="type", max_length=128)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    try:
        # Anonymous visitors see published content only (as GET /media answers them).
        query = MediaListRequest(
            media_type=media_type or None, limit=MEDIA_PAGE, offset=(page - 1) * MEDIA_PAGE, viewer=viewer_of(user)
        )
    except ValueError:
        raise InvalidInputError("a media type is like 'video' or 'image/png'", field="type") from None
    found: ContentList = await gw.call(Cache.list, query)
    pages = max(1, -(-found.total // MEDIA_PAGE))
    assets = (
        (await gw.call(Cache.asset_list, AssetListRequest(viewer=user.viewer()))).assets if user is not None else []
    )
    return render(
        request,
        "media.html",
        assets=assets,
        items=found.items,
        total=found.total,
        current=media_type or "",
        filters=MEDIA_FILTERS,
        page=page,
        pages=pages,
        max_upload=gw.settings.max_upload_bytes,
    )


# -- storage --------------------------------------------------------------------------


@router.get("/ui/storage")
async def storage_page(request: Request, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    query = StorageListRequest(viewer=user.viewer())
    found: StorageProviderList = await gw.call(Cache.storage_list, query)
    return render(
        request,
        "storage.html",
        providers=found.providers,
        types=list(get_args(StorageType)),
        store=gw.settings.store.kind,
    )


# -- logging in -----------------------------------------------------------------------


@router.get("/login")
async def login_page(
    request: Request, next_path: Annotated[str, Query(alias="next", max_length=2048)] = "/"
) -> HTMLResponse:
    """A form where a person pastes a token; it goes to `GET /auth?auth_token=…&next=…`."""
    return render(request, "login.html", next_path=local_path(next_path))


# -- the CLI --------------------------------------------------------------------------


@router.get("/download/client")
async def download_client_page(request: Request) -> HTMLResponse:
    from services.gateway.ui.client_wheel import wheel_name

    base = str(request.base_url).rstrip("/")
    return render(request, "download.html", wheel=wheel_name(), base=base)


@router.get("/download/client/{filename}")
async def download_client(filename: str) -> Response:
    from services.gateway.ui.client_wheel import build_wheel, wheel_name

    if filename != wheel_name():
        raise NotFoundError(f"no such file; the client is {wheel_name()}", field="filename")
    data = await asyncio.to_thread(build_wheel)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-cache"},
    )


STEP_STATUSES = [s.value for s in StepStatus]
