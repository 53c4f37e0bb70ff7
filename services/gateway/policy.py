"""Who may see what: the ownership checks every route and page of the gateway makes before it answers.

Another user's run, recipe, provider or content reads exactly like one that does not exist ("not
found"): its existence is not disclosed. Admins see everything; anonymous callers only published
content. The services filter by the `Viewer` they are given; these checks ask them as the caller.
"""

from __future__ import annotations

from artdag_common.cid import validate_cid
from artdag_common.contracts import Cache, Planner, Verb
from artdag_common.errors import NotFoundError
from artdag_common.ids import check_run_id
from artdag_common.recipe import RecipeRef
from artdag_common.schemas import (
    CidRequest,
    ContentRecord,
    Principal,
    RecipeRecord,
    RecipeRequest,
    RunRequest,
    RunState,
    StorageProviderRecord,
    StorageProviderRequest,
    Viewer,
)
from services.gateway.deps import Gateway


def viewer_of(principal: Principal | None) -> Viewer:
    """How the services' ownership filters see the caller (anonymous: published content only)."""
    return principal.viewer() if principal is not None else Viewer(user=None)


async def owned_run(gw: Gateway, user: Principal, run_id: str) -> RunState:
    """The run if the user may see it; another user's run is "not found" (its existence is not disclosed)."""
    state: RunState = await gw.call(Planner.get_run, RunRequest(run_id=check_run_id(run_id)))
    if not user.viewer().may_see(state.owner):
        raise NotFoundError(f"no run {run_id}", field="run_id")
    return state


def recipe_ref(recipe_id: str | None) -> str | None:
    """A recipe reference as given (its CID, its name, or name@cid), checked for form: 400 naming the field."""
    if recipe_id is None:
        return None
    return str(RecipeRef.parse(recipe_id))


async def visible_recipe(gw: Gateway, user: Principal, recipe_id: str) -> RecipeRecord:
    """The recipe if the user uploaded it, it is an example, or they are an admin; otherwise 404."""
    request = RecipeRequest(recipe_id=recipe_ref(recipe_id) or "", viewer=user.viewer())
    record: RecipeRecord = await gw.call(Planner.recipe_get, request)
    return record


async def owned_provider(gw: Gateway, user: Principal, provider_id: str) -> StorageProviderRecord:
    """The provider if it is the user's (admins: any); another user's is "not found"."""
    found: StorageProviderRecord = await gw.call(Cache.storage_get, StorageProviderRequest(id=provider_id))
    if not user.viewer().may_see(found.owner):
        raise NotFoundError(f"no storage provider {provider_id}", field="id")
    return found


async def visible_content(
    gw: Gateway, user: Principal | None, cid: str, verb: Verb[CidRequest, ContentRecord] = Cache.stat
) -> ContentRecord:
    """Content the caller may see (theirs, published, or any for admins); otherwise 404."""
    request = CidRequest(cid=validate_cid(cid), viewer=viewer_of(user))
    record = await gw.call(verb, request)
    return record
