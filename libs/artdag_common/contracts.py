"""Every request/reply verb on the bus, as a typed constant: service, verb, request, reply, timeout.

`rpc.serve(nc, Planner.get_run, handler)` answers one, `rpc.call(nc, Planner.get_run, request)`
asks one, and the AsyncAPI document lists them all (`ALL`). The verb carries both model
types, so mypy checks that a handler returns what callers read and that a caller sends
the request the verb takes.

A verb's `min_timeout_s` is the least a caller waits for it: an analysis of a long track
takes minutes where a metadata lookup takes milliseconds (the standard wait is
ARTDAG_RPC_TIMEOUT_S, and a caller may pass its own for one call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from pydantic import BaseModel

from artdag_common import subjects
from artdag_common.schemas import (
    MAX_DERIVE_WAIT_S,
    AnalysisReply,
    AnalyzeRequest,
    AssetInput,
    AssetList,
    AssetListRequest,
    AssetRecord,
    AssetRequest,
    AssetResolved,
    AssetResolveRequest,
    CidRequest,
    CidsRequest,
    ContentDeleted,
    ContentFound,
    ContentList,
    ContentLocations,
    ContentMetaUpdate,
    ContentRecord,
    ContentRecords,
    CopyRequest,
    DerivedReply,
    DeriveRequest,
    ExecuteRequest,
    HealthReply,
    HealthRequest,
    HoldReply,
    HoldRequest,
    IssuedToken,
    IssueTokenRequest,
    L1Keys,
    L1KeysRequest,
    ListRunsRequest,
    MediaInfo,
    MediaListRequest,
    Plan,
    PlanReply,
    PlanRequest,
    Principal,
    ProbeManyReply,
    Publication,
    PublishRequest,
    RecipeList,
    RecipeRecord,
    RecipeRequest,
    RecipeUpload,
    RegisterManyReply,
    RevokeReply,
    RevokeTokenRequest,
    RevokeUserRequest,
    RunAnalysis,
    RunList,
    RunRecipeRequest,
    RunRequest,
    RunState,
    StorageListRequest,
    StorageProviderInput,
    StorageProviderList,
    StorageProviderRecord,
    StorageProviderRequest,
    StorageProviderUpdate,
    StorageTestReply,
    StorageTypeRequest,
    StorageTypeSchema,
    SubmitRunReply,
    SubmitRunRequest,
    UsageReply,
    UsageRequest,
    VerifyTokenRequest,
)

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)

# An analysis decodes and analyses a whole input (an hour of audio takes tens of seconds,
# a long video minutes); a probe opens a file that may first be read back from a provider.
ANALYZE_TIMEOUT_S = 600.0
PROBE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Verb(Generic[Req, Rep]):
    """One request/reply verb: `artdag.rpc.<service>.<name>`, its request and the `data` of its reply."""

    service: str
    name: str
    request: type[Req]
    reply: type[Rep]
    summary: str
    min_timeout_s: float = 0.0

    @property
    def subject(self) -> str:
        return subjects.rpc(self.service, self.name)

    @property
    def queue(self) -> str:
        """The queue group the service's replicas answer in (one replica gets each request)."""
        return subjects.rpc_queue(self.service)

    def timeout_s(self, standard_s: float) -> float:
        """How long a caller whose standard wait is `standard_s` waits for this verb."""
        return max(standard_s, self.min_timeout_s)


def health_of(service: str) -> Verb[HealthRequest, HealthReply]:
    """The liveness verb every service answers (the runtime registers it)."""
    return Verb(service, "health", HealthRequest, HealthReply, "liveness and counters of one replica")


class Planner:
    """Runs, plans and stored recipes."""

    submit: Final = Verb(
        "planner", "submit", SubmitRunRequest, SubmitRunReply, "validate a recipe and its inputs, start a run"
    )
    get_run: Final = Verb("planner", "get_run", RunRequest, RunState, "a run's live state")
    list_runs: Final = Verb("planner", "list_runs", ListRunsRequest, RunList, "runs, newest first")
    get_plan: Final = Verb("planner", "get_plan", RunRequest, Plan, "a run's execution plan")
    get_analysis: Final = Verb("planner", "get_analysis", RunRequest, RunAnalysis, "the analyses a run used")
    get_run_recipe: Final = Verb(
        "planner", "get_run_recipe", RunRequest, RecipeUpload, "the recipe text a run was submitted with"
    )
    cancel: Final = Verb("planner", "cancel", RunRequest, RunState, "cancel a run and delete its record")
    dry_run: Final = Verb(
        "planner", "dry_run", PlanRequest, PlanReply, "the plan a run would follow, cached steps marked"
    )
    execute: Final = Verb("planner", "execute", ExecuteRequest, SubmitRunReply, "run a plan made by dry_run")
    recipe_upload: Final = Verb("planner", "recipe_upload", RecipeUpload, RecipeRecord, "store a recipe")
    recipe_get: Final = Verb("planner", "recipe_get", RecipeRequest, RecipeRecord, "a stored recipe")
    recipe_list: Final = Verb("planner", "recipe_list", ListRunsRequest, RecipeList, "stored recipes")
    recipe_delete: Final = Verb("planner", "recipe_delete", RecipeRequest, RecipeRecord, "delete a stored recipe")
    recipe_run: Final = Verb("planner", "recipe_run", RunRecipeRequest, SubmitRunReply, "run a stored recipe")
    derive: Final = Verb(
        "planner",
        "derive",
        DeriveRequest,
        DerivedReply,
        "media derived from a video (browser MP4, thumbnail): made once per cid, waited for up to `wait_s`",
        min_timeout_s=MAX_DERIVE_WAIT_S + 10.0,
    )


class Analyzer:
    """What media holds: probes and feature analyses."""

    probe: Final = Verb(
        "analyzer",
        "probe",
        CidRequest,
        MediaInfo,
        "what a media file holds (streams, duration, GOPs)",
        min_timeout_s=PROBE_TIMEOUT_S,
    )
    probe_many: Final = Verb(
        "analyzer", "probe_many", CidsRequest, ProbeManyReply, "probe many at once (an input list); an outcome each"
    )
    analyze: Final = Verb(
        "analyzer",
        "analyze",
        AnalyzeRequest,
        AnalysisReply,
        "extract features, cached by analysis id",
        min_timeout_s=ANALYZE_TIMEOUT_S,
    )


class Auth:
    """Tokens: who a token belongs to, new ones, revocation."""

    verify: Final = Verb(
        "auth", "verify", VerifyTokenRequest, Principal, "who a token belongs to (refused: expired, revoked, unknown)"
    )
    issue: Final = Verb("auth", "issue", IssueTokenRequest, IssuedToken, "a new local token (local mode only)")
    revoke: Final = Verb("auth", "revoke", RevokeTokenRequest, RevokeReply, "revoke one token, on every gateway")
    revoke_user: Final = Verb("auth", "revoke_user", RevokeUserRequest, RevokeReply, "revoke every token of a user")


class Cache:
    """Content records, holds, providers, assets, publication."""

    register: Final = Verb("cache", "register", ContentRecord, ContentRecord, "record stored content's metadata")
    register_many: Final = Verb(
        "cache", "register_many", ContentRecords, RegisterManyReply, "record many at once; an outcome each"
    )
    hold: Final = Verb("cache", "hold", HoldRequest, HoldReply, "record that a user holds content")
    keys: Final = Verb("cache", "keys", L1KeysRequest, L1Keys, "the L1's public keys (HTTP Signatures, provenance)")
    publish: Final = Verb("cache", "publish", PublishRequest, Publication, "publish content to L2 (idempotent)")
    stat: Final = Verb("cache", "stat", CidRequest, ContentRecord, "content metadata")
    stat_many: Final = Verb(
        "cache", "stat_many", CidsRequest, ContentFound, "the metadata of many at once: those that exist and show"
    )
    usage: Final = Verb("cache", "usage", UsageRequest, UsageReply, "how many items and bytes a user holds (quotas)")
    access: Final = Verb(
        "cache", "access", CidRequest, ContentRecord, "content metadata, marking it used; read back if not local"
    )
    restore: Final = Verb(
        "cache", "restore", CidRequest, ContentRecord, "read content back from a storage provider into the store"
    )
    locations: Final = Verb(
        "cache", "locations", CidRequest, ContentLocations, "where content is kept: local, and copies at providers"
    )
    copy: Final = Verb("cache", "copy", CopyRequest, ContentLocations, "copy content to one of the viewer's providers")
    asset_add: Final = Verb(
        "cache", "asset_add", AssetInput, AssetRecord, "name content (a user's own name, or a shared one)"
    )
    asset_list: Final = Verb(
        "cache", "asset_list", AssetListRequest, AssetList, "the viewer's asset names and the shared ones"
    )
    asset_delete: Final = Verb("cache", "asset_delete", AssetRequest, AssetRecord, "forget an asset name")
    asset_resolve: Final = Verb(
        "cache", "asset_resolve", AssetResolveRequest, AssetResolved, "the cids a user's asset names stand for"
    )
    update_meta: Final = Verb(
        "cache", "update_meta", ContentMetaUpdate, ContentRecord, "change name, description, tags, pinned"
    )
    list: Final = Verb("cache", "list", MediaListRequest, ContentList, "content newest first")
    delete: Final = Verb("cache", "delete", CidRequest, ContentDeleted, "delete content (refused while it is in use)")
    storage_list: Final = Verb("cache", "storage_list", StorageListRequest, StorageProviderList, "storage providers")
    storage_add: Final = Verb(
        "cache", "storage_add", StorageProviderInput, StorageProviderRecord, "add a storage provider"
    )
    storage_get: Final = Verb(
        "cache", "storage_get", StorageProviderRequest, StorageProviderRecord, "one storage provider"
    )
    storage_update: Final = Verb(
        "cache", "storage_update", StorageProviderUpdate, StorageProviderRecord, "change a storage provider"
    )
    storage_delete: Final = Verb(
        "cache", "storage_delete", StorageProviderRequest, StorageProviderRecord, "delete a storage provider"
    )
    storage_test: Final = Verb(
        "cache", "storage_test", StorageProviderRequest, StorageTestReply, "round-trip a small object"
    )
    storage_type: Final = Verb(
        "cache", "storage_type", StorageTypeRequest, StorageTypeSchema, "the fields a provider type takes"
    )


def _declared(namespace: type) -> list[Verb[Any, Any]]:
    return [value for value in vars(namespace).values() if isinstance(value, Verb)]


# Every verb a service serves, `health` of each service first.
ALL: tuple[Verb[Any, Any], ...] = (
    *(health_of(service) for service in subjects.SERVICES),
    *(verb for namespace in (Planner, Analyzer, Auth, Cache) for verb in _declared(namespace)),
)
