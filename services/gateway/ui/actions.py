"""The UI's form actions (sent by HTMX, with the CSRF header). Each answers with HTML: a fragment
to swap in, an error fragment naming the field, or `HX-Location` to navigate to a new page.

Every action needs a user (`CurrentUser`: 401 without one, 403 for a session form without the CSRF
token) and acts as that user: the same ownership checks as the JSON API, `owner=` on what it creates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from artdag_common.cid import validate_cid
from artdag_common.contracts import Cache, Planner
from artdag_common.errors import ArtdagError, InvalidInputError
from artdag_common.ids import new_run_id
from artdag_common.restore import RESTORE_TIMEOUT_S
from artdag_common.schemas import (
    CidRequest,
    ContentMetaPatch,
    ContentMetaUpdate,
    ContentRecord,
    Principal,
    RecipeRecord,
    RecipeRequest,
    RecipeUpload,
    RunRecipeRequest,
    RunRequest,
    StorageListRequest,
    StorageProviderInput,
    StorageProviderList,
    StorageProviderPatch,
    StorageProviderRecord,
    StorageProviderRequest,
    StorageProviderUpdate,
    StorageTestReply,
    StorageTypeRequest,
    StorageTypeSchema,
    SubmitRunReply,
    SubmitRunRequest,
)
from services.gateway.auth import CurrentUser
from services.gateway.deps import Gateway, GatewayDep
from services.gateway.effects import MAX_SOURCE_BYTES, find_effect, store_effect
from services.gateway.errors import status_for
from services.gateway.policy import owned_provider, owned_run, visible_recipe
from services.gateway.submitting import start_run
from services.gateway.ui.highlight import error_line, highlight_effect, highlight_recipe
from services.gateway.ui.preview import preview_params, preview_recipe, sample_clip
from services.gateway.ui.render import render
from services.gateway.uploads import MAX_FORM_BYTES, read_form

router = APIRouter(include_in_schema=False)


def _navigate(path: str) -> Response:
    """Tell HTMX to go to `path` like a link (URL pushed, no full reload)."""
    return Response(status_code=200, headers={"HX-Location": path})


async def _form(request: Request, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
    return await read_form(request.stream(), request.headers.get("content-type", ""), limit)


def _flash(request: Request, message: str, status: int, ok: bool = False) -> HTMLResponse:
    return render(request, "_flash.html", status_code=status, message=message, ok=ok)


def _first_error(exc: ValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or None
    return str(first.get("msg", "invalid")), field


# -- recipes --------------------------------------------------------------------------


@router.post("/ui/recipes/upload")
async def upload_recipe(request: Request, gw: GatewayDep, user: CurrentUser) -> Response:
    form = await _form(request, gw.settings.max_recipe_bytes + MAX_FORM_BYTES)
    text = (form.get("file") or "").strip() and form["file"]
    text = text or form.get("recipe", "")
    if not text.strip():
        return render(
            request,
            "_recipe_error.html",
            status_code=422,
            message="choose a recipe file (YAML or S-expression) or paste one",
            field="file",
            source=None,
        )
    try:
        upload = RecipeUpload(text=text, owner=user.user)
        record: RecipeRecord = await gw.call(Planner.recipe_upload, upload)
    except ArtdagError as exc:
        return _refused_upload(request, "_recipe_error.html", exc, highlight_recipe, text)
    return _navigate(f"/recipe/{record.recipe_id}")


def _refused_upload(
    request: Request, template: str, exc: ArtdagError, highlight: Callable[[str, set[int]], Markup], text: str
) -> HTMLResponse:
    """An upload's error fragment: the message, and the text with the line it names marked."""
    line = error_line(exc.message)
    return render(
        request,
        template,
        status_code=status_for(exc),
        message=exc.message,
        field=exc.field,
        line=line,
        source=highlight(text, {line} if line else set()),
    )


@router.post("/ui/recipe/{recipe_id}/run")
async def run_recipe(request: Request, recipe_id: str, gw: GatewayDep, user: CurrentUser) -> Response:
    form = await _form(request)
    try:
        record = await visible_recipe(gw, user, recipe_id)
        inputs: dict[str, str] = {}
        for spec in record.inputs:
            value = form.get(f"input.{spec.name}", "").strip()
            if not value:
                raise InvalidInputError(f"choose the {spec.type} for input {spec.name!r}", field=f"inputs.{spec.name}")
            cids = [validate_cid(v.strip()) for v in value.split(",") if v.strip()]
            inputs[spec.name] = ",".join(cids)
        gw.ensure_room("a new run")
        run = RunRecipeRequest(recipe_id=record.recipe_id, inputs=inputs, owner=user.user, viewer=user.viewer())
        reply: SubmitRunReply = await gw.call(Planner.recipe_run, run)
    except ArtdagError as exc:
        where = f"{exc.field}: " if exc.field else ""
        return _flash(request, where + exc.message, status_for(exc))
    return _navigate(f"/run/{reply.run_id}/plan")


@router.delete("/ui/recipe/{recipe_id}")
async def delete_recipe(request: Request, recipe_id: str, gw: GatewayDep, user: CurrentUser) -> Response:
    try:
        query = RecipeRequest(recipe_id=validate_cid(recipe_id), viewer=user.viewer())
        await gw.call(Planner.recipe_delete, query)
    except ArtdagError as exc:
        return _flash(request, exc.message, status_for(exc))
    return _navigate("/recipes")


# -- effects --------------------------------------------------------------------------


@router.post("/ui/effects/upload")
async def upload_effect(request: Request, gw: GatewayDep, user: CurrentUser) -> Response:
    form = await _form(request, 2 * MAX_SOURCE_BYTES + MAX_FORM_BYTES)
    source = form["file"] if (form.get("file") or "").strip() else form.get("source", "")
    if not source.strip():
        return render(
            request,
            "_effect_error.html",
            status_code=422,
            message="choose an effect's file or paste its source",
            field="source",
            source=None,
        )
    try:
        stored = await store_effect(gw, user, source, form.get("name", "").strip() or None)
    except ArtdagError as exc:
        return _refused_upload(request, "_effect_error.html", exc, highlight_effect, source)
    return _navigate(f"/effect/{stored.cid}")


@router.post("/ui/effect/{cid}/preview")
async def preview_effect(request: Request, cid: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    """Run the effect on the first seconds of a clip (the user's video, or the sample clip) with the
    form's parameter values; answers with the preview's fragment, which follows the run."""
    form = await _form(request)
    try:
        effect = await find_effect(gw, user, validate_cid(cid))
        params = preview_params(form, effect.params)
        clip = form.get("clip", "").strip()
        if not clip:
            raise InvalidInputError("choose a clip to preview the effect on", field="clip")
        sample = clip == "sample"
        if sample:
            await sample_clip(gw)
        inputs = {} if sample else {"clip": validate_cid(clip)}
        submit = SubmitRunRequest(
            recipe=preview_recipe(effect.cid, params, sample=sample),
            inputs=inputs,
            owner=user.user,
            run_id=new_run_id(),
            viewer=user.viewer(),
        )
        reply: SubmitRunReply = await start_run(gw, Planner.submit, submit)
        state = await owned_run(gw, user, reply.run_id)
    except ArtdagError as exc:
        where = f"{exc.field}: " if exc.field else ""
        return _flash(request, where + exc.message, status_for(exc))
    return render(request, "_effect_preview.html", run=state, cid=effect.cid)


# -- runs -----------------------------------------------------------------------------


@router.delete("/ui/run/{run_id}")
async def delete_run(request: Request, run_id: str, gw: GatewayDep, user: CurrentUser) -> Response:
    try:
        state = await owned_run(gw, user, run_id)
        await gw.call(Planner.cancel, RunRequest(run_id=state.run_id))
    except ArtdagError as exc:
        return _flash(request, exc.message, status_for(exc))
    return _navigate("/runs")


# -- media ----------------------------------------------------------------------------


@router.delete("/ui/media/{cid}")
async def delete_media(request: Request, cid: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    query = CidRequest(cid=validate_cid(cid), viewer=user.viewer())
    try:
        await gw.call(Cache.delete, query)
    except ArtdagError as exc:
        record: ContentRecord = await gw.call(Cache.stat, query)  # 404: not the user's
        return render(request, "_tile.html", status_code=status_for(exc), item=record, error=exc.message, open=True)
    return HTMLResponse("")


@router.patch("/ui/media/{cid}/meta")
async def edit_media(request: Request, cid: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    query = CidRequest(cid=validate_cid(cid), viewer=user.viewer())
    form = await _form(request)
    error: str | None = None
    try:
        patch = ContentMetaPatch(
            name=form.get("name", "").strip() or None,
            description=form.get("description", ""),
            tags=[t.strip() for t in form.get("tags", "").split(",") if t.strip()],
            pinned=form.get("pinned") == "on",
        )
        update = ContentMetaUpdate(cid=query.cid, patch=patch, viewer=query.viewer)
        record: ContentRecord = await gw.call(Cache.update_meta, update)
        status = 200
    except ValidationError as exc:
        message, field = _first_error(exc)
        error, status = f"{field}: {message}" if field else message, 422
        record = await gw.call(Cache.stat, query)
    except ArtdagError as exc:
        error, status = exc.message, status_for(exc)
        record = await gw.call(Cache.stat, query)
    return render(request, "_tile.html", status_code=status, item=record, error=error, saved=error is None, open=True)


# -- storage --------------------------------------------------------------------------


async def _providers(
    request: Request, gw: Gateway, user: Principal, message: str | None = None, ok: bool = True, status: int = 200
) -> HTMLResponse:
    query = StorageListRequest(viewer=user.viewer())
    found: StorageProviderList = await gw.call(Cache.storage_list, query)
    return render(request, "_providers.html", status_code=status, providers=found.providers, message=message, ok=ok)


@router.get("/ui/storage/form")
async def storage_form(
    request: Request, gw: GatewayDep, user: CurrentUser, kind: Annotated[str, Query(alias="type", max_length=32)] = ""
) -> HTMLResponse:
    if not kind:
        return HTMLResponse("")
    schema: StorageTypeSchema = await gw.call(Cache.storage_type, StorageTypeRequest(type=kind))
    return render(request, "_storage_fields.html", schema=schema, values={})


def _config_from(form: dict[str, str]) -> dict[str, Any]:
    return {k[len("config.") :]: v for k, v in form.items() if k.startswith("config.") and v != ""}


def _policy_from(form: dict[str, str]) -> dict[str, Any]:
    """The form's replication policy fields, only those it sent (pydantic checks them). The edit form
    sends `default=off` in a hidden field before the checkbox, so that an unticked box clears it."""
    return {k: form[k].strip() for k in ("replicate", "default") if form.get(k, "").strip()}


@router.post("/ui/storage")
async def add_storage(request: Request, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    form = await _form(request)
    try:
        provider = StorageProviderInput(
            name=form.get("name", ""),
            type=form.get("type", ""),
            config=_config_from(form),
            owner=user.user,
            viewer=user.viewer(),
            **_policy_from(form),
        )
        added: StorageProviderRecord = await gw.call(Cache.storage_add, provider)
    except ValidationError as exc:
        message, field = _first_error(exc)
        return await _providers(request, gw, user, f"{field}: {message}" if field else message, ok=False, status=422)
    except ArtdagError as exc:
        text = f"{exc.field}: {exc.message}" if exc.field else exc.message
        return await _providers(request, gw, user, text, ok=False, status=status_for(exc))
    return await _providers(request, gw, user, f"Added {added.name} ({added.type}).")


@router.patch("/ui/storage/{provider_id}")
async def edit_storage(request: Request, provider_id: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    form = await _form(request)
    try:
        await owned_provider(gw, user, provider_id)
        patch = StorageProviderPatch(
            name=form.get("name") or None, config=_config_from(form) or None, **_policy_from(form)
        )
        updated: StorageProviderRecord = await gw.call(
            Cache.storage_update, StorageProviderUpdate(id=provider_id, patch=patch, viewer=user.viewer())
        )
    except ValidationError as exc:
        message, field = _first_error(exc)
        return await _providers(request, gw, user, f"{field}: {message}" if field else message, ok=False, status=422)
    except ArtdagError as exc:
        text = f"{exc.field}: {exc.message}" if exc.field else exc.message
        return await _providers(request, gw, user, text, ok=False, status=status_for(exc))
    return await _providers(request, gw, user, f"Saved {updated.name}.")


@router.delete("/ui/storage/{provider_id}")
async def delete_storage(
    request: Request, provider_id: str, gw: GatewayDep, user: CurrentUser, keep_copies: bool = True
) -> HTMLResponse:
    # `keep_copies=false` comes from the card's "also delete the copies" box (HTMX sends a DELETE's
    # fields in the query).
    try:
        await owned_provider(gw, user, provider_id)
        # Removing the copies first takes a request per copy: as long as the JSON route allows it.
        timeout_s = gw.settings.rpc_timeout_s + (0 if keep_copies else RESTORE_TIMEOUT_S)
        gone: StorageProviderRecord = await gw.call(
            Cache.storage_delete, StorageProviderRequest(id=provider_id, keep_copies=keep_copies), timeout_s=timeout_s
        )
    except ArtdagError as exc:
        return await _providers(request, gw, user, exc.message, ok=False, status=status_for(exc))
    kept = "its copies stay at the provider" if keep_copies else "its copies are being removed"
    return await _providers(request, gw, user, f"Deleted {gone.name}: {kept}.")


@router.post("/ui/storage/{provider_id}/test")
async def test_storage(request: Request, provider_id: str, gw: GatewayDep, user: CurrentUser) -> HTMLResponse:
    try:
        # The test connects wherever the provider's config points: only its owner (or an admin) may ask.
        await owned_provider(gw, user, provider_id)
        reply: StorageTestReply = await gw.call(
            Cache.storage_test,
            StorageProviderRequest(id=provider_id, viewer=user.viewer()),
            timeout_s=gw.settings.storage_test_timeout_s,
        )
    except ArtdagError as exc:
        return _flash(request, exc.message, 200)
    if reply.ok:
        return _flash(
            request, f"Connected: wrote, read back and deleted a test object in {reply.elapsed_s:.2f} s.", 200, ok=True
        )
    return _flash(request, f"Failed: {reply.error}", 200)
