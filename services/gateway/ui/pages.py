"""The web UI's pages. Each gathers what it shows over NATS (like the JSON routes) and renders a template."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from artdag_common import rpc, subjects
from artdag_common.cid import validate_cid
from artdag_common.errors import ArtdagError, InvalidCidError, InvalidInputError, NotFoundError
from artdag_common.ids import check_run_id, check_step_id
from artdag_common.recipe import parse_recipe
from artdag_common.schemas import (
    CidRequest,
    ContentList,
    ContentRecord,
    HealthReply,
    HealthRequest,
    ListRunsRequest,
    MediaListRequest,
    Plan,
    RecipeList,
    RecipeRecord,
    RecipeRequest,
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
from services.gateway.deps import Gateway, GatewayDep
from services.gateway.ui import dag, plots
from services.gateway.ui.events import last_sequence
from services.gateway.ui.highlight import highlight_yaml
from services.gateway.ui.render import render

router = APIRouter(include_in_schema=False)

RUNS_PAGE = 20
# One-step runs the gateway makes for itself (GET /cache/{cid}/thumbnail and /mp4): not the user's work.
DERIVED = ("thumbnail", "browser-mp4")
MEDIA_PAGE = 48
MEDIA_FILTERS = (("", "All"), ("video", "Video"), ("audio", "Audio"), ("image", "Images"), ("application", "Other"))


async def _run_state(gw: Gateway, run_id: str) -> RunState:
    state: RunState = await gw.call("planner", "get_run", RunRequest(run_id=check_run_id(run_id)), RunState)
    return state


async def _run_rows(gw: Gateway, runs: list[RunSummary]) -> list[dict[str, Any]]:
    """Each listed run with its step counts (for the progress bars)."""

    async def one(summary: RunSummary) -> dict[str, Any]:
        try:
            state = await _run_state(gw, summary.run_id)
        except ArtdagError:
            return {"run": summary, "done": 0, "total": 0}
        done = sum(1 for s in state.steps.values() if s.status.done)
        return {"run": summary, "done": done, "total": len(state.steps)}

    return list(await asyncio.gather(*(one(r) for r in runs)))


async def _health(gw: Gateway, service: str) -> dict[str, Any]:
    try:
        reply: HealthReply = await rpc.call(
            gw.runtime.nc, service, "health", HealthRequest(), HealthReply, timeout_s=gw.settings.health_timeout_s
        )
    except ArtdagError as exc:
        return {"service": service, "ok": False, "error": exc.message}
    return {"service": service, "ok": reply.ok, "uptime_s": reply.uptime_s, "instance": reply.instance}


@router.get("/ui/home")
async def home(request: Request, gw: GatewayDep) -> HTMLResponse:
    (runs, recipes, media), services = await asyncio.gather(
        asyncio.gather(
            gw.call("planner", "list_runs", ListRunsRequest(limit=50), RunList),
            gw.call("planner", "recipe_list", ListRunsRequest(limit=1), RecipeList),
            gw.call("cache", "list", MediaListRequest(limit=1), ContentList),
        ),
        asyncio.gather(*(_health(gw, s) for s in subjects.SERVICES)),
    )
    rows = await _run_rows(gw, [r for r in runs.runs if r.recipe_name not in DERIVED][:5])
    nats = gw.runtime.nc.connected_url
    return render(
        request,
        "home.html",
        runs=rows,
        counts={"runs": runs.total, "recipes": recipes.total, "media": media.total},
        services=services,
        server={
            "store": gw.settings.store,
            "bus": nats.netloc if nats else "—",
            "cid_version": gw.settings.cid_version,
            "max_upload": gw.settings.max_upload_bytes,
        },
    )


@router.get("/ui/runs")
async def runs_page(request: Request, gw: GatewayDep, page: Annotated[int, Query(ge=1, le=100000)] = 1) -> HTMLResponse:
    after = await last_sequence(gw)
    found: RunList = await gw.call(
        "planner", "list_runs", ListRunsRequest(limit=RUNS_PAGE, offset=(page - 1) * RUNS_PAGE), RunList
    )
    rows = await _run_rows(gw, found.runs)
    pages = max(1, -(-found.total // RUNS_PAGE))
    return render(
        request, "runs.html", rows=rows, total=found.total, page=page, pages=pages, after=after, derived=DERIVED
    )


async def _run_context(gw: Gateway, run_id: str) -> dict[str, Any]:
    after = await last_sequence(gw)  # before reading the state: nothing between the two is lost
    state = await _run_state(gw, run_id)
    done = sum(1 for s in state.steps.values() if s.status.done)
    return {"run": state, "done": done, "total": len(state.steps), "after": after}


async def _plan(gw: Gateway, run_id: str) -> Plan | None:
    try:
        plan: Plan = await gw.call("planner", "get_plan", RunRequest(run_id=run_id), Plan)
    except NotFoundError:
        return None
    return plan


@router.get("/run/{run_id}")
@router.get("/run/{run_id}/plan")
async def run_plan(request: Request, run_id: str, gw: GatewayDep) -> HTMLResponse:
    context = await _run_context(gw, run_id)
    plan = await _plan(gw, run_id)
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
async def run_graph(run_id: str, gw: GatewayDep) -> JSONResponse:
    """The DAG's elements now: the page fetches them again when planning replaces the plan."""
    state = await _run_state(gw, run_id)
    plan = await _plan(gw, run_id)
    elements = dag.plan_elements(plan, state) if plan is not None else {"nodes": [], "edges": []}
    return JSONResponse(elements, headers={"Cache-Control": "no-store"})


@router.get("/ui/run/{run_id}/step/{step_id}")
async def run_step(request: Request, run_id: str, step_id: str, gw: GatewayDep) -> HTMLResponse:
    state = await _run_state(gw, run_id)
    step_id = check_step_id(step_id)
    plan = await _plan(gw, run_id)
    planned = next((s for s in plan.steps if s.step_id == step_id), None) if plan else None
    live = state.steps.get(step_id)
    if planned is None and live is None:
        raise NotFoundError(f"run {run_id} has no step {step_id}", field="step_id")
    record: ContentRecord | None = None
    if live is not None and live.output_cid:
        try:
            record = await gw.call("cache", "stat", CidRequest(cid=live.output_cid), ContentRecord)
        except ArtdagError:
            record = None
    return render(request, "_step.html", run=state, step_id=step_id, planned=planned, live=live, record=record)


@router.get("/run/{run_id}/analysis")
async def run_analysis(request: Request, run_id: str, gw: GatewayDep) -> HTMLResponse:
    context = await _run_context(gw, run_id)
    found: RunAnalysis = await gw.call("planner", "get_analysis", RunRequest(run_id=run_id), RunAnalysis)
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
                "motion": plots.motion_plot(result),
                "beats": beats,
                "scenes": scenes,
            }
        )
    return render(request, "run_analysis.html", tab="analysis", analyses=analyses, **context)


@router.get("/run/{run_id}/artifacts")
async def run_artifacts(request: Request, run_id: str, gw: GatewayDep) -> HTMLResponse:
    context = await _run_context(gw, run_id)
    state: RunState = context["run"]
    plan = await _plan(gw, run_id)
    order = [s.step_id for s in plan.steps] if plan else list(state.steps)
    with_output = [sid for sid in order if sid in state.steps and state.steps[sid].output_cid]
    # The output first, then the rest in plan order.
    if state.output_step in with_output:
        with_output.remove(state.output_step)
        with_output.insert(0, state.output_step)
    with_output = with_output[:200]

    async def stat(cid: str) -> ContentRecord | None:
        try:
            record: ContentRecord = await gw.call("cache", "stat", CidRequest(cid=cid), ContentRecord)
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
async def recipes_page(request: Request, gw: GatewayDep) -> HTMLResponse:
    found: RecipeList = await gw.call("planner", "recipe_list", ListRunsRequest(limit=500), RecipeList)
    return render(request, "recipes.html", recipes=found.recipes, total=found.total)


def _recipe_id(recipe_id: str) -> str:
    try:
        return validate_cid(recipe_id)
    except InvalidCidError:
        raise NotFoundError("no such recipe (recipe ids are CIDs)", field="recipe_id") from None


async def _recipe(gw: Gateway, recipe_id: str) -> RecipeRecord:
    record: RecipeRecord = await gw.call(
        "planner", "recipe_get", RecipeRequest(recipe_id=_recipe_id(recipe_id)), RecipeRecord
    )
    return record


def _media_kind(input_type: str) -> str | None:
    return input_type if input_type in ("video", "audio", "image") else None


@router.get("/recipe/{recipe_id}")
async def recipe_page(request: Request, recipe_id: str, gw: GatewayDep) -> HTMLResponse:
    record = await _recipe(gw, recipe_id)

    async def choices(kind: str | None) -> list[ContentRecord]:
        found: ContentList = await gw.call("cache", "list", MediaListRequest(media_type=kind, limit=100), ContentList)
        return found.items

    lists = await asyncio.gather(*(choices(_media_kind(i.type)) for i in record.inputs))
    inputs = [{"spec": spec, "choices": items} for spec, items in zip(record.inputs, lists, strict=True)]
    return render(request, "recipe.html", recipe=record, inputs=inputs, source=highlight_yaml(record.text))


@router.get("/recipe/{recipe_id}/dag")
async def recipe_dag(request: Request, recipe_id: str, gw: GatewayDep) -> HTMLResponse:
    record = await _recipe(gw, recipe_id)
    recipe = await asyncio.to_thread(parse_recipe, record.text)
    return render(request, "recipe_dag.html", recipe=record, elements=dag.as_json(dag.recipe_elements(recipe)))


# -- media ----------------------------------------------------------------------------


@router.get("/ui/media")
async def media_page(
    request: Request,
    gw: GatewayDep,
    media_type: Annotated[str | None, Query(alias="type", max_length=128)] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> HTMLResponse:
    try:
        query = MediaListRequest(media_type=media_type or None, limit=MEDIA_PAGE, offset=(page - 1) * MEDIA_PAGE)
    except ValueError:
        raise InvalidInputError("a media type is like 'video' or 'image/png'", field="type") from None
    found: ContentList = await gw.call("cache", "list", query, ContentList)
    pages = max(1, -(-found.total // MEDIA_PAGE))
    return render(
        request,
        "media.html",
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
async def storage_page(request: Request, gw: GatewayDep) -> HTMLResponse:
    found: StorageProviderList = await gw.call("cache", "storage_list", StorageListRequest(), StorageProviderList)
    return render(
        request,
        "storage.html",
        providers=found.providers,
        types=list(get_args(StorageType)),
        store=gw.settings.store,
    )


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
