"""REST routes for storage providers: list, add (form or JSON), show, change, delete, test, field schemas.

The cache service owns the providers and their encrypted secrets; these routes only relay.
Secrets are never returned: a secret field reads `"********"` once it is set.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from artdag_common.contracts import Cache
from artdag_common.errors import InvalidInputError
from artdag_common.restore import RESTORE_TIMEOUT_S
from artdag_common.schemas import (
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
)
from services.gateway import errors, openapi
from services.gateway.auth import CurrentUser
from services.gateway.deps import GatewayDep
from services.gateway.policy import owned_provider
from services.gateway.uploads import read_form

router = APIRouter()


@router.get(
    "/storage", tags=["storage"], summary="List your storage providers (secrets masked)", responses=errors.responses()
)
async def list_providers(gw: GatewayDep, user: CurrentUser) -> StorageProviderList:
    request = StorageListRequest(viewer=user.viewer())
    found: StorageProviderList = await gw.call(Cache.storage_list, request)
    return found


@router.post(
    "/storage",
    status_code=201,
    tags=["storage"],
    summary="Add a provider from a form (name, type, …)",
    responses=errors.responses(400, 409, 413),
    openapi_extra=openapi.form_body(
        {"name": {"type": "string", "maxLength": 128}, "type": {"type": "string", "maxLength": 32}}, ["name", "type"]
    ),
)
async def add_provider_form(request: Request, gw: GatewayDep, user: CurrentUser) -> StorageProviderRecord:
    fields = await read_form(request.stream(), request.headers.get("content-type", ""))
    fields.pop("csrf_token", None)  # the web form's CSRF field is not provider config
    name = fields.pop("name", "")
    kind = fields.pop("type", "")
    replicate = fields.pop("replicate", "") or "none"
    default = fields.pop("default", "").lower() in ("1", "true", "on", "yes")
    config: dict[str, Any] = {k: v for k, v in fields.items() if v != ""}  # an empty form field means "not set"
    try:
        provider = StorageProviderInput(
            name=name,
            type=kind,
            config=config,
            replicate=replicate,  # checked by the model
            default=default,
            owner=user.user,
            viewer=user.viewer(),
        )
    except ValueError as exc:
        raise InvalidInputError(str(exc).splitlines()[-1].strip(), field="type" if name else "name") from None
    added: StorageProviderRecord = await gw.call(Cache.storage_add, provider)
    return added


@router.post(
    "/storage/add",
    status_code=201,
    tags=["storage"],
    summary="Add a provider: {name, type, config}",
    responses=errors.responses(400, 409),
)
async def add_provider(provider: StorageProviderInput, gw: GatewayDep, user: CurrentUser) -> StorageProviderRecord:
    provider = provider.model_copy(update={"owner": user.user, "viewer": user.viewer()})  # never what the client claims
    added: StorageProviderRecord = await gw.call(Cache.storage_add, provider)
    return added


@router.get(
    "/storage/type/{kind}",
    tags=["storage"],
    summary="The fields a provider of this type takes",
    responses=errors.responses(404),
)
async def provider_type(kind: str, gw: GatewayDep, user: CurrentUser) -> StorageTypeSchema:
    schema: StorageTypeSchema = await gw.call(Cache.storage_type, StorageTypeRequest(type=kind))
    return schema


@router.get(
    "/storage/{provider_id}",
    tags=["storage"],
    summary="A provider (secrets masked)",
    responses=errors.responses(400, 404),
)
async def get_provider(provider_id: str, gw: GatewayDep, user: CurrentUser) -> StorageProviderRecord:
    return await owned_provider(gw, user, provider_id)


@router.patch(
    "/storage/{provider_id}",
    tags=["storage"],
    summary="Rename or change config fields",
    responses=errors.responses(400, 404, 409),
)
async def patch_provider(
    provider_id: str, patch: StorageProviderPatch, gw: GatewayDep, user: CurrentUser
) -> StorageProviderRecord:
    await owned_provider(gw, user, provider_id)
    request = StorageProviderUpdate(id=provider_id, patch=patch, viewer=user.viewer())
    updated: StorageProviderRecord = await gw.call(Cache.storage_update, request)
    return updated


@router.delete(
    "/storage/{provider_id}", tags=["storage"], summary="Delete a provider", responses=errors.responses(400, 404, 409)
)
async def delete_provider(
    provider_id: str,
    gw: GatewayDep,
    user: CurrentUser,
    keep_copies: Annotated[
        bool, Query(description="leave the copies at the provider (false: remove them first)")
    ] = True,
) -> StorageProviderRecord:
    await owned_provider(gw, user, provider_id)
    request = StorageProviderRequest(id=provider_id, keep_copies=keep_copies)
    # Removing the copies first takes a request per copy: as long as it takes.
    timeout_s = gw.settings.rpc_timeout_s + (0 if keep_copies else RESTORE_TIMEOUT_S)
    deleted: StorageProviderRecord = await gw.call(Cache.storage_delete, request, timeout_s=timeout_s)
    return deleted


@router.post(
    "/storage/{provider_id}/test",
    tags=["storage"],
    summary="Round-trip a small object through it",
    responses=errors.responses(400, 404),
)
async def test_provider(provider_id: str, gw: GatewayDep, user: CurrentUser) -> StorageTestReply:
    # The test connects wherever the provider's config points: only its (authenticated) owner may ask,
    # and the cache lets it reach private addresses or the bus only with the caller's rights.
    await owned_provider(gw, user, provider_id)
    reply: StorageTestReply = await gw.call(
        Cache.storage_test,
        StorageProviderRequest(id=provider_id, viewer=user.viewer()),
        timeout_s=gw.settings.storage_test_timeout_s,
    )
    return reply
