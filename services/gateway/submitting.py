"""Starting a run: its id (fixed by the caller's Idempotency-Key, so a submit sent again never makes a
second run), and what a planner that answers late means for the caller."""

from __future__ import annotations

import logging
import re
from typing import Annotated, TypeVar

from fastapi import Header

from artdag_common.contracts import Planner, Verb
from artdag_common.errors import BadRequestError, NoAnswerInTimeError, NotFoundError, ServiceUnavailableError
from artdag_common.ids import new_run_id, sha3_hex
from artdag_common.schemas import (
    ExecuteRequest,
    Principal,
    RunRecipeRequest,
    RunRequest,
    RunState,
    SubmitRunReply,
    SubmitRunRequest,
)
from services.gateway.deps import Gateway
from services.gateway.policy import visible_recipe

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9._:+/=-]{1,128}$")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="any unique string (a UUID): the same submit sent again with it answers with the same "
        "run instead of starting another",
    ),
]


def run_id_for(user: Principal, key: str | None) -> str:
    """The run id a submit takes: fixed by the user's Idempotency-Key, else a new one."""
    if key is None:
        return new_run_id()
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise BadRequestError("must be 1-128 letters, digits or ._:+/=-", field="Idempotency-Key")
    return "run-" + sha3_hex(["submit", user.user, key])[:32]


# What starts a run: a recipe and inputs, a stored recipe, a plan made by a dry run.
Starting = TypeVar("Starting", SubmitRunRequest, RunRecipeRequest, ExecuteRequest)


async def start_run(gw: Gateway, verb: Verb[Starting, SubmitRunReply], request: Starting) -> SubmitRunReply:
    """Ask the planner to start a run whose id is fixed here.

    A planner that does not answer in time either took the submit (the run exists: 202 with its
    id, it is being made) or never got to it (it drops requests whose caller gave up: 503, to
    send again; under the same Idempotency-Key that never makes a second run).
    """
    assert request.run_id is not None
    gw.ensure_room("a new run")
    try:
        reply = await gw.call(verb, request)
    except NoAnswerInTimeError as exc:
        log.warning("planner %s of %s answered late: %s", verb.name, request.run_id, exc)
        try:
            state: RunState = await gw.call(Planner.get_run, RunRequest(run_id=request.run_id))
        except (NotFoundError, NoAnswerInTimeError):
            raise ServiceUnavailableError(
                "the planner is too busy to take the run now; send it again "
                "(with an Idempotency-Key, sending again never makes a second run)"
            ) from exc
        return SubmitRunReply(run_id=request.run_id, status=state.status, plan_id=state.plan_id)
    return reply


async def run_stored(
    recipe_id: str, inputs: dict[str, str], gw: Gateway, user: Principal, idempotency_key: str | None
) -> SubmitRunReply:
    """Start a run of a stored recipe the user may see, on inputs they may see."""
    run_id = run_id_for(user, idempotency_key)
    record = await visible_recipe(gw, user, recipe_id)
    request = RunRecipeRequest(
        recipe_id=record.recipe_id, inputs=inputs, owner=user.user, run_id=run_id, viewer=user.viewer()
    )
    return await start_run(gw, Planner.recipe_run, request)
