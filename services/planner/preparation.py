"""Preparing a run: its recipe and inputs checked, its plan made and kept.

First the preliminary plan, at submit (the inputs are stored content of the declared kind,
within the input limits and the owner's quotas); then the final one, as the run starts
(analyses done, beat-synced cuts expanded, long effects split into chunks), stored as content.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from nats.aio.client import Client as NatsClient

from artdag_common import streams
from artdag_common.bus import kv_get_many, outlasting
from artdag_common.content_store import ContentStore
from artdag_common.contracts import Analyzer, Cache
from artdag_common.errors import (
    ArtdagError,
    InvalidInputError,
    PayloadTooLargeError,
    RateLimitedError,
    ServiceUnavailableError,
)
from artdag_common.ids import canonical_json
from artdag_common.media_limits import InputLimits
from artdag_common.media_types import EFFECT_MEDIA_TYPE
from artdag_common.recipe import Recipe, is_sexp_recipe, parse_recipe, user_effect_names, user_effects_named
from artdag_common.recipe_includes import load_includes
from artdag_common.registration import store_document
from artdag_common.rpc import Client as RpcClient
from artdag_common.schemas import (
    MAX_LIST_ITEMS,
    AnalysisReply,
    AssetResolved,
    AssetResolveRequest,
    CidRequest,
    CidsRequest,
    ContentFound,
    ContentOrigin,
    ContentRecord,
    MediaInfo,
    Plan,
    ProbeManyReply,
    UsageReply,
    UsageRequest,
    Viewer,
)
from services.planner.handoff import chunkable, has_transition
from services.planner.planning import Chunking, analysis_requests, bind_inputs, build_plan, input_items
from services.planner.runs import RunBook
from services.planner.settings import PlannerSettings

if TYPE_CHECKING:
    from artdag_effects.sandbox import PythonEffectPolicy

log = logging.getLogger(__name__)

# The share of an RPC's time a submit gives the analyzer to probe its inputs.
PROBE_SHARE = 0.5
# Whether a result's bytes are still stored: this many checks at once.
LOOKUPS_IN_FLIGHT = 128


class Preparation:
    """Checks what a run is given and plans it; asks the cache and the analyzer, writes nothing
    but the final plan's bytes (and their record)."""

    def __init__(
        self, settings: PlannerSettings, rpc: RpcClient, nc: NatsClient, book: RunBook, store: ContentStore
    ) -> None:
        self.settings = settings
        self.rpc = rpc
        self.nc = nc
        self.book = book
        self.store = store
        self.chunking = Chunking(settings.chunk_seconds) if settings.chunk_seconds > 0 else None
        self.limits = InputLimits.of(settings)

    async def prepare(
        self, recipe_text: str, inputs: dict[str, str], owner: str | None, viewer: Viewer | None = None
    ) -> tuple[Recipe, Plan]:
        """Validate recipe and inputs (the inputs must be stored content of the declared kind, within
        the input limits), plan. A list's length is checked before any of its items is looked up.

        Inputs given by cid must be content `viewer` may see (a run must not turn another user's
        upload into output; another's content reads exactly like unknown content); inputs bound
        through an asset name are the owner's or shared, which resolving the name checked.
        """
        recipe = await self.parse(recipe_text, owner)
        input_cids = bind_inputs(recipe, await self._with_assets(recipe, inputs, owner))
        media_types: dict[str, str] = {}
        items = [
            (name, label, cid)
            for name, value in input_cids.items()
            for label, cid in input_items(name, value, recipe.inputs[name].list)
        ]
        given = [cid for name, _, cid in items if name in inputs]
        named = [cid for name, _, cid in items if name not in inputs]
        records = {**await self._stat_all(named), **await self._stat_all(given, viewer)}
        for name, _, cid in items:
            record = records.get(cid)
            if record is None:
                raise InvalidInputError(f"no content with cid {cid} (upload it first)", field=f"inputs.{name}")
            if recipe.inputs[name].type == "video" and record.media_type.startswith("audio/"):
                raise InvalidInputError(
                    f"the recipe wants video here, but {cid} is {record.media_type}", field=f"inputs.{name}"
                )
            media_types[name] = record.media_type
        await self._check_limits(items)
        plan = build_plan(
            recipe,
            input_cids,
            cluster_key=self.settings.cluster_key_value,
            max_steps=self.settings.max_plan_steps,
            media_types=media_types,
        )
        return recipe, plan

    async def parse(self, text: str, owner: str | None = None) -> Recipe:
        """`parse_recipe`, with the user effects the text names loaded first (their steps' params
        are validated against the effects' own declarations), those named by a name as `owner`'s
        names stand now: the recipe (and so the plan) has their CIDs."""
        await self.load_effects(text)  # first what it includes, where effects may be named too
        named = await self.effect_names(text, owner)
        return parse_recipe(text, effect_names=named)

    async def load_includes(self, text: str) -> None:
        """Read and verify the stored texts an S-expression recipe includes by CID (and what they include)."""
        if "include" in text and is_sexp_recipe(text):
            await load_includes(text, self._read_small)

    async def _read_small(self, cid: str, limit: int) -> bytes:
        return await self.store.get_bytes(cid, max_bytes=limit)

    async def load_effects(self, text: str) -> None:
        """Read, verify and compile the user effects (sources by CID) a recipe's text names (after the
        texts it includes, where they may be named)."""
        await self.load_includes(text)
        named = user_effects_named(text)
        if not named:
            return
        # Imported on first use: a planner that plans no user effect starts without the effects library.
        from artdag_effects.loading import load_user_effects

        await load_user_effects(named, self._read_small, python=self._python_effects())

    async def effect_names(self, text: str, owner: str | None) -> dict[str, str]:
        """The CIDs of the effects `text` names by a name (`effect: my-glow`, no built-in's): `owner`'s own
        name first, then a shared one, each loaded as an effect named by its CID is. A name nobody gave is
        left out (parsing says which step names it); one that names other content is refused."""
        names = sorted(user_effect_names(text))
        if not names:
            return {}
        found: dict[str, str] = {}
        for start in range(0, len(names), MAX_LIST_ITEMS):
            request = AssetResolveRequest(names=names[start : start + MAX_LIST_ITEMS], owner=owner)
            reply: AssetResolved = await self.rpc.call(Cache.asset_resolve, request)
            found.update(reply.cids)
        records = await self._stat_all(list(found.values()))
        for name, cid in sorted(found.items()):
            record = records.get(cid)
            if record is None or record.media_type != EFFECT_MEDIA_TYPE:
                what = f"{record.media_type} content" if record is not None else "content no longer stored"
                raise InvalidInputError(
                    f"effect {name!r} is the name of {cid} ({what}), not of an effect's source"
                    f" (`artdag effect add FILE --name {name}` names one)",
                    field="effect",
                )
        from artdag_effects.loading import load_user_effects

        await load_user_effects(found.values(), self._read_small, python=self._python_effects())
        return found

    def _python_effects(self) -> PythonEffectPolicy | None:
        """Python effects' policy (ARTDAG_PYTHON_EFFECT*), or None when they are off (as by default)."""
        from artdag_effects.sandbox import PythonEffectPolicy

        return PythonEffectPolicy.of(self.settings)

    async def _stat_all(self, cids: list[str], viewer: Viewer | None = None) -> dict[str, ContentRecord]:
        """The stored content among `cids` that `viewer` may see: one request per `MAX_LIST_ITEMS` of them."""
        wanted = list(dict.fromkeys(cids))
        found: dict[str, ContentRecord] = {}
        for start in range(0, len(wanted), MAX_LIST_ITEMS):
            reply: ContentFound = await self.rpc.call(
                Cache.stat_many, CidsRequest(cids=wanted[start : start + MAX_LIST_ITEMS], viewer=viewer)
            )
            found.update((record.cid, record) for record in reply.records)
        return found

    async def _check_limits(self, items: list[tuple[str, str, str]]) -> None:
        """Refuse (422) an input whose media declares more than the input limits (ARTDAG_MAX_INPUT_*).

        The analyzer probes each cid once (its answers are cached). An input it cannot read is
        left to its step, which says why; an analyzer too slow to answer leaves the limits to the
        executors, which check them again before they decode.
        """
        cids = list(dict.fromkeys(cid for _, _, cid in items))
        infos: dict[str, MediaInfo] = {}
        for start in range(0, len(cids), MAX_LIST_ITEMS):
            chunk = cids[start : start + MAX_LIST_ITEMS]
            try:
                reply: ProbeManyReply = await self.rpc.call(
                    Analyzer.probe_many, CidsRequest(cids=chunk), timeout_s=self.settings.rpc_timeout_s * PROBE_SHARE
                )
            except ServiceUnavailableError as exc:
                log.info("inputs not probed at submit (%s); their steps check the limits as they decode", exc)
                return
            infos.update((cid, out.info) for cid, out in zip(chunk, reply.outcomes, strict=True) if out.info)
        for name, label, cid in items:
            if (info := infos.get(cid)) is None:
                continue
            reason = self.limits.excess(
                width=info.width, height=info.height, duration_s=info.duration_s, frames=info.frame_count
            )
            if reason is not None:
                raise InvalidInputError(f"{label} ({cid}): {reason}", field=f"inputs.{name}")

    async def check_quotas(self, owner: str | None) -> None:
        """A user's runs not finished yet (429) and stored bytes (413) within their quotas (0: none)."""
        if owner is None:
            return  # the system's own runs (derived media)
        queued_quota = self.settings.quota_queued_runs
        if queued_quota and (queued := await self.book.unfinished(owner)) >= queued_quota:
            raise RateLimitedError(
                f"{owner} has {queued} runs not finished, the quota (ARTDAG_QUOTA_QUEUED_RUNS) is "
                f"{queued_quota}: wait for some to finish",
                field="quota_queued_runs",
            )
        bytes_quota = self.settings.quota_bytes
        if bytes_quota:
            usage: UsageReply = await self.rpc.call(Cache.usage, UsageRequest(user=owner))
            if usage.bytes >= bytes_quota:
                raise PayloadTooLargeError(
                    f"{owner} holds {usage.bytes:,} bytes, the quota (ARTDAG_QUOTA_BYTES) is {bytes_quota:,}: "
                    "delete some content before running more",
                    field="quota_bytes",
                )

    async def _with_assets(self, recipe: Recipe, inputs: dict[str, str], owner: str | None) -> dict[str, str]:
        """`inputs`, with each unbound input that names an asset bound to that asset's cid (the owner's
        own name first, then a shared one): the plan sees cids only, never names."""
        wanted = {name: spec.asset for name, spec in recipe.inputs.items() if spec.asset and name not in inputs}
        if not wanted:
            return inputs
        request = AssetResolveRequest(names=sorted(set(wanted.values())), owner=owner)
        found = await self.rpc.call(Cache.asset_resolve, request)
        bound = dict(inputs)
        for name, asset in wanted.items():
            if asset not in found.cids:
                raise InvalidInputError(
                    f"input {name!r} is the asset {asset!r}, which is no name of yours nor a shared one"
                    " (`artdag asset add NAME FILE`, or bind the input to a cid)",
                    field=f"inputs.{name}",
                )
            bound[name] = found.cids[asset]
        return bound

    async def final_plan(self, label: str, plan: Plan, recipe: Recipe) -> Plan:
        """The plan made again with what the preliminary one could not know: the analyses, and the
        inputs' media where cuts, chunks or transitions need it (`plan` itself when neither is wanted)."""
        analyses = await self._analyses(plan, recipe) if any(s.type == "ANALYZE" for s in recipe.steps) else None
        needs_media = (
            self._may_chunk(plan)
            or any(s.type == "BEAT_SYNC" for s in recipe.steps)
            or any(has_transition(s.node_type, s.config) for s in plan.steps)
        )
        media = await self.media(label, plan) if needs_media else {}
        if analyses is None and not media:
            return plan
        return build_plan(
            recipe,
            plan.input_cids,
            cluster_key=self.settings.cluster_key_value,
            max_steps=self.settings.max_plan_steps,
            media=media,
            chunking=self.chunking,
            media_types={s.name.removeprefix("input:"): s.media_type for s in plan.steps if s.node_type == "SOURCE"},
            analyses=analyses,
        )

    def _may_chunk(self, plan: Plan) -> bool:
        return self.chunking is not None and any(chunkable(s.node_type, s.config) for s in plan.steps)

    async def _analyses(self, plan: Plan, recipe: Recipe) -> dict[str, AnalysisReply]:
        """Phase 1: ask the analyzer for every ANALYZE step (each answer cached by its analysis id)."""
        replies: dict[str, AnalysisReply] = {}
        for name, request in analysis_requests(plan).items():
            try:
                replies[name] = await self.rpc.call(Analyzer.analyze, request)
            except ArtdagError as exc:
                raise type(exc)(f"step {name!r} (ANALYZE) failed: {exc.message}", field=exc.field) from None
        return replies

    async def media(self, label: str, plan: Plan) -> dict[str, MediaInfo]:
        """What the analyzer knows of each input (missing where it cannot tell: bad media, no analyzer)."""
        media: dict[str, MediaInfo] = {}
        for source in [s for s in plan.steps if s.node_type == "SOURCE"]:
            name, cid = source.name.removeprefix("input:"), source.source_cid or ""
            try:
                media[name] = await self.rpc.call(Analyzer.probe, CidRequest(cid=cid))
            except ArtdagError as exc:
                # Not fatal: the step renders in one piece, and reports bad media itself.
                log.info("%s: no media info for input %r (%s)", label, name, exc)
        return media

    async def known_results(self, keys: list[str]) -> dict[str, str]:
        """The results known for `keys`: read many keys a request, then whether their bytes are still there."""
        values = await kv_get_many(self.nc, streams.KV_RESULTS.bucket, keys, timeout_s=self.settings.rpc_timeout_s)
        recorded = {key: value.decode() for key, value in values.items() if value}
        slots = asyncio.Semaphore(LOOKUPS_IN_FLIGHT)

        async def stored(cid: str) -> bool:
            async with slots:
                return await self.store.exists(cid)

        # A result whose bytes are gone is no result: render it again.
        present = await asyncio.gather(*(stored(cid) for cid in recorded.values()))
        return {key: cid for (key, cid), here in zip(recorded.items(), present, strict=True) if here}

    async def store_plan(self, plan: Plan) -> str:
        """Keep the final plan as content (by CID, like everything else; pinned to IPFS in IPFS-primary mode)."""
        label = plan.plan_id[:12]

        async def register(record: ContentRecord) -> ContentRecord:
            return await outlasting(lambda: self.rpc.call(Cache.register, record), f"registering plan {label}")

        body = canonical_json(plan.model_dump(mode="json"))
        stored = await store_document(self.store, body, register, name=f"plan-{label}.json", origin=ContentOrigin.PLAN)
        return stored.cid
