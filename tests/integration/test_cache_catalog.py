"""The cache service's logic on SQLite: metadata, deletion rules, eviction, provenance, provider secrets."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from artdag_common.cid import cid_of_bytes
from artdag_common.completion import unsettled
from artdag_common.content_store import LocalContentStore
from artdag_common.db import make_engine, migrate, session_factory
from artdag_common.db.tables import ContentLocation, StorageProvider
from artdag_common.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    PermanentError,
    RetryableError,
)
from artdag_common.ids import canonical_json
from artdag_common.media_types import EFFECT_MEDIA_TYPE
from artdag_common.nats_server import EmbeddedNatsServer
from artdag_common.schemas import (
    ContentMetaPatch,
    ContentMetaUpdate,
    ContentOrigin,
    ContentRecord,
    InfrastructureRef,
    MediaListRequest,
    Plan,
    PlanStep,
    RunState,
    RunStatus,
    StepState,
    StepStatus,
    StorageProviderInput,
    StorageProviderPatch,
    StorageProviderUpdate,
    Viewer,
)
from services.cache.handlers import RunFollower
from services.cache.provenance import infrastructure_documents, provenance_json, provenance_record, run_refs
from services.cache.providers import MASK, UNUSABLE_DIRECTORY, ProviderBook, ProviderPolicy, SecretBox, type_schema
from services.cache.service import ContentCatalog

ADMIN = Viewer(user="root", admin=True)
ALICE = Viewer(user="alice")


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'artdag.db'}"
    await migrate(url)
    engine = make_engine(url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def store(tmp_path: Path) -> LocalContentStore:
    return LocalContentStore(tmp_path / "cache")


async def put(
    catalog: ContentCatalog, store: LocalContentStore, data: bytes, origin: ContentOrigin, **extra: object
) -> ContentRecord:
    writer = store.writer()
    await writer.write(data)
    cid = await writer.commit()
    fields: dict[str, object] = {"media_type": "video/mp4", **extra}
    record = ContentRecord(cid=cid, size=len(data), origin=origin, **fields)
    return await catalog.register(record)


async def test_metadata_patch_and_listing(sessions: async_sessionmaker[AsyncSession], store: LocalContentStore) -> None:
    catalog = ContentCatalog(sessions, store)
    first = await put(catalog, store, b"one", ContentOrigin.UPLOAD, created_at=100.0)
    await put(catalog, store, b"two", ContentOrigin.UPLOAD, created_at=200.0, media_type="audio/wav")
    third = await put(catalog, store, b"three", ContentOrigin.STEP_OUTPUT, created_at=300.0)
    assert first.last_access is not None and first.tags == [] and not first.pinned

    patched = await catalog.update_meta(
        ContentMetaUpdate(
            cid=first.cid, patch=ContentMetaPatch(name="clip", description="a\nclip", tags=["beach", "2024", "beach"])
        )
    )
    assert (patched.name, patched.description, patched.tags) == ("clip", "a\nclip", ["beach", "2024"])
    cleared = await catalog.update_meta(ContentMetaUpdate(cid=first.cid, patch=ContentMetaPatch(description="")))
    assert cleared.description is None and cleared.name == "clip"

    videos = await catalog.list_media(MediaListRequest(media_type="video"))
    assert [r.cid for r in videos.items] == [third.cid, first.cid] and videos.total == 2
    page = await catalog.list_media(MediaListRequest(limit=1, offset=1))
    assert page.total == 3 and len(page.items) == 1
    assert (await catalog.list_media(MediaListRequest(media_type="audio/wav"))).total == 1


async def test_text_checked_as_an_effect_becomes_one_and_stays_one(
    sessions: async_sessionmaker[AsyncSession], store: LocalContentStore
) -> None:
    catalog = ContentCatalog(sessions, store)
    source = b"(define-effect invert-it (- 255 frame))"
    plain = await put(catalog, store, source, ContentOrigin.UPLOAD, media_type="text/plain", owner="alice")
    assert plain.media_type == "text/plain"
    effect = await put(catalog, store, source, ContentOrigin.UPLOAD, media_type=EFFECT_MEDIA_TYPE, owner="alice")
    assert effect.media_type == EFFECT_MEDIA_TYPE
    assert (await catalog.get(plain.cid, ALICE)).media_type == EFFECT_MEDIA_TYPE
    # Registered again as a plain file (uploaded again), it is still an effect's source.
    again = await put(catalog, store, source, ContentOrigin.UPLOAD, media_type="text/plain", owner="alice")
    assert again.media_type == EFFECT_MEDIA_TYPE
    listed = await catalog.list_media(MediaListRequest(media_type=EFFECT_MEDIA_TYPE, viewer=ALICE))
    assert [r.cid for r in listed.items] == [plain.cid]


@pytest.mark.parametrize(
    "patch",
    [
        {"tags": ["no/slash"]},
        {"tags": [""]},
        {"tags": ["x" * 65]},
        {"tags": [f"t{i}" for i in range(33)]},
        {"name": "x" * 513},
        {"name": "bell\x07"},
        {"description": "y" * 4001},
        {"owner": "someone"},
    ],
)
def test_metadata_patch_is_validated(patch: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ContentMetaPatch.model_validate(patch)


async def test_delete_refuses_what_runs_pins_and_publications_keep(
    sessions: async_sessionmaker[AsyncSession], store: LocalContentStore
) -> None:
    catalog = ContentCatalog(sessions, store)
    source = await put(catalog, store, b"input", ContentOrigin.UPLOAD)
    middle = await put(catalog, store, b"middle", ContentOrigin.STEP_OUTPUT)
    output = await put(catalog, store, b"output", ContentOrigin.STEP_OUTPUT)
    pinned = await put(catalog, store, b"pinned", ContentOrigin.UPLOAD)
    orphan = await put(catalog, store, b"orphan", ContentOrigin.UPLOAD)
    state = RunState(
        run_id="run-1",
        status=RunStatus.COMPLETED,
        recipe_id="r",
        recipe_name="demo",
        inputs={"video": source.cid},
        steps={
            "a": StepState(name="a", node_type="RESIZE", status=StepStatus.COMPLETED, output_cid=middle.cid),
            "b": StepState(name="b", node_type="INVERT", status=StepStatus.COMPLETED, output_cid=output.cid),
        },
        output_cid=output.cid,
    )
    assert await catalog.record_refs("run-1", run_refs(state)) == 3
    assert await catalog.record_refs("run-1", run_refs(state)) == 0  # idempotent (redelivered events)
    await catalog.update_meta(ContentMetaUpdate(cid=pinned.cid, patch=ContentMetaPatch(pinned=True)))

    with pytest.raises(ConflictError, match="an input of run run-1"):
        await catalog.delete(source.cid)
    with pytest.raises(ConflictError, match="the output of run run-1"):
        await catalog.delete(output.cid)
    with pytest.raises(ConflictError, match="pinned"):
        await catalog.delete(pinned.cid)

    for gone in (middle, orphan):
        deleted = await catalog.delete(gone.cid)
        assert deleted.blob_deleted and not await store.exists(gone.cid)
        with pytest.raises(NotFoundError):
            await catalog.get(gone.cid)
    assert await store.exists(source.cid) and await store.exists(output.cid)
    with pytest.raises(NotFoundError):
        await catalog.delete(orphan.cid)


async def test_eviction_drops_least_recently_used_intermediates_only(
    sessions: async_sessionmaker[AsyncSession], store: LocalContentStore
) -> None:
    catalog = ContentCatalog(sessions, store, max_bytes=None, evict_min_age_s=0, touch_every_s=0)
    source = await put(catalog, store, b"i" * 100, ContentOrigin.UPLOAD)
    old = await put(catalog, store, b"o" * 100, ContentOrigin.STEP_OUTPUT)
    pinned = await put(catalog, store, b"p" * 100, ContentOrigin.STEP_OUTPUT)
    output = await put(catalog, store, b"f" * 100, ContentOrigin.STEP_OUTPUT)
    newer = await put(catalog, store, b"n" * 100, ContentOrigin.STEP_OUTPUT)
    await catalog.update_meta(ContentMetaUpdate(cid=pinned.cid, patch=ContentMetaPatch(pinned=True)))
    await catalog.record_refs("run-1", [(source.cid, "input"), (output.cid, "output"), (old.cid, "intermediate")])
    # Reading `old` again makes `newer` the least recently used.
    await asyncio.sleep(0.01)
    await catalog.access(old.cid)
    catalog.max_bytes = 450  # 500 bytes stored: one intermediate must go, the least recently used
    assert await catalog.evict() == [newer.cid]
    catalog.max_bytes = 350
    assert await catalog.evict() == [old.cid]
    assert await catalog.total_bytes() <= 350
    for kept in (source, pinned, output):
        assert await store.exists(kept.cid)
        await catalog.get(kept.cid)

    catalog.max_bytes = 1  # nothing else may go: inputs, outputs and pinned content stay
    assert await catalog.evict() == []
    assert {r.cid for r in (await catalog.list_media(MediaListRequest())).items} == {
        source.cid,
        pinned.cid,
        output.cid,
    }


async def test_copied_content_leaves_the_disk_but_not_the_catalog(
    sessions: async_sessionmaker[AsyncSession], store: LocalContentStore
) -> None:
    catalog = ContentCatalog(sessions, store, max_bytes=None, evict_min_age_s=0, touch_every_s=0)
    upload = await put(catalog, store, b"u" * 100, ContentOrigin.UPLOAD)
    kept_by_hand = await put(catalog, store, b"k" * 100, ContentOrigin.STEP_OUTPUT)
    plain = await put(catalog, store, b"s" * 100, ContentOrigin.STEP_OUTPUT)
    async with sessions.begin() as session:
        for cid in (upload.cid, kept_by_hand.cid):
            session.add(ContentLocation(cid=cid, provider_id="a" * 32, state="stored", attempts=1, updated_at=0.0))
    catalog.max_bytes = 150
    # Without a replicator nothing copied leaves; an intermediate copied by hand is no intermediate to drop.
    assert await catalog.evict() == [plain.cid]
    assert await catalog.total_bytes() == 200
    catalog.offload_copied = True
    assert await catalog.evict() == [upload.cid]  # the least recently used copied content
    assert not await store.exists(upload.cid)
    assert (await catalog.get(upload.cid)).cid == upload.cid, "the record stays: a reader has it read back"
    assert await catalog.total_bytes() == 100
    assert await store.exists(kept_by_hand.cid)
    # Stored again (uploaded anew), it is local again, and the least recently used copied content goes instead.
    await put(catalog, store, b"u" * 100, ContentOrigin.UPLOAD)
    assert await store.exists(upload.cid) and not await store.exists(kept_by_hand.cid)
    assert await catalog.total_bytes() == 100


async def test_eviction_spares_recent_content(
    sessions: async_sessionmaker[AsyncSession], store: LocalContentStore
) -> None:
    catalog = ContentCatalog(sessions, store, max_bytes=10, evict_min_age_s=3600)
    fresh = await put(catalog, store, b"x" * 100, ContentOrigin.STEP_OUTPUT)
    assert await store.exists(fresh.cid)  # over the limit, but a running run may still need it


def _plan() -> Plan:
    fused_resize = {"type": "RESIZE", "config": {"width": 64, "height": 48}}
    fused_invert = {"type": "EFFECT", "config": {"effect": "invert"}}
    return Plan(
        plan_id="p" * 64,
        recipe_id="QmRecipe",
        recipe_name="demo",
        input_cids={"video": "QmIn"},
        output_step="s4",
        steps=[
            PlanStep(step_id="s0", name="video", node_type="SOURCE", op_version="1", source_cid="QmIn"),
            # small → fx fused into one pass, rendered in two chunks and joined: two recipe nodes.
            *[
                PlanStep(
                    step_id=step_id,
                    name=f"fx[{first}:{first + 10}]",
                    node_type="CHAIN",
                    config={"stages": [fused_resize, fused_invert], "frames": [first, first + 10]},
                    op_version="2",
                    covers=["small", "fx"],
                )
                for step_id, first in (("s1", 0), ("s2", 10))
            ],
            PlanStep(step_id="s3", name="fx", node_type="JOIN", op_version="1", covers=["small", "fx"]),
            PlanStep(step_id="s4", name="blur", node_type="EFFECT", config={"effect": "blur"}, op_version="3"),
        ],
    )


def test_provenance_record_has_the_original_shape_and_is_deterministic() -> None:
    state = RunState(
        run_id="run-9",
        status=RunStatus.COMPLETED,
        recipe_id="QmRecipe",
        recipe_name="demo",
        plan_id="p" * 64,
        plan_cid="QmPlan",
        inputs={"video": "QmIn"},
        output_cid="QmOut",
        updated_at=1_700_000_000.0,
    )
    infrastructure = {
        role: InfrastructureRef(name=name, cid=cid_of_bytes(body))
        for role, (name, body) in infrastructure_documents("box").items()
    }
    record = provenance_record(
        state, _plan(), output_name="out.mp4", rendered_by="@alice@l2.example", infrastructure=infrastructure
    )
    body = json.loads(provenance_json(record))
    assert body == {
        "v": 1,
        "run_id": "run-9",
        "rendered_at": "2023-11-14T22:13:20Z",
        "rendered_by": "@alice@l2.example",
        "output": {"name": "out.mp4", "cid": "QmOut"},
        "inputs": [{"name": "video", "cid": "QmIn"}],
        "effects": [{"name": "invert", "version": "2"}, {"name": "blur", "version": "3"}],
        "recipe_cid": "QmRecipe",
        "plan_id": "p" * 64,
        "plan_cid": "QmPlan",
        # The seed README's shape: each an `infra:` name and the CID of the document that describes it.
        "infrastructure": {
            "software": {"name": "infra:artdag", "cid": infrastructure["software"].cid},
            "hardware": {"name": "infra:box", "cid": infrastructure["hardware"].cid},
        },
        "steps": [
            {"name": "small", "node_type": "RESIZE", "step_id": "s1"},
            {"name": "fx", "node_type": "EFFECT", "step_id": "s1"},
            {"name": "blur", "node_type": "EFFECT", "step_id": "s4"},
        ],
    }
    again = provenance_record(
        state, _plan(), output_name="out.mp4", rendered_by="@alice@l2.example", infrastructure=infrastructure
    )
    assert provenance_json(again) == provenance_json(record)
    # The same machine and version describe themselves the same way: the same CIDs run after run.
    assert infrastructure_documents("box") == infrastructure_documents("box")
    software = json.loads(infrastructure_documents("box")["software"][1])
    assert software == {"type": "software", "name": "artdag", "version": "0.1.0"}


def test_secret_box_binds_values_to_their_field(tmp_path: Path) -> None:
    box = SecretBox.from_settings(None, tmp_path)
    assert (tmp_path / "secrets.key").stat().st_mode & 0o777 == 0o600
    assert SecretBox.from_settings(None, tmp_path).open(box.seal("s3cret", "a/x"), "a/x") == "s3cret"
    sealed = box.seal("s3cret", "id1/secret_access_key")
    assert "s3cret" not in sealed
    with pytest.raises(InvalidInputError, match="cannot be decrypted"):
        box.open(sealed, "id2/secret_access_key")
    other = SecretBox.from_settings(SecretStr(base64.b64encode(b"k" * 32).decode()), tmp_path / "elsewhere")
    with pytest.raises(InvalidInputError):
        other.open(sealed, "id1/secret_access_key")


async def test_provider_secrets_are_encrypted_masked_and_kept_on_patch(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    book = ProviderBook(sessions, SecretBox.from_settings(None, tmp_path))
    added = await book.add(
        StorageProviderInput(
            name="archive",
            type="s3",
            config={"bucket": "my-bucket", "access_key_id": "AKIA", "secret_access_key": "top-secret"},
        )
    )
    assert added.config["secret_access_key"] == MASK and added.config["bucket"] == "my-bucket"
    async with sessions() as session:
        row = (await session.scalars(select(StorageProvider))).one()
        assert "top-secret" not in json.dumps(row.config)
    renamed = await book.update(
        StorageProviderUpdate(
            id=added.id, patch=StorageProviderPatch(name="cold", config={"secret_access_key": MASK, "prefix": "a/"})
        )
    )
    assert renamed.name == "cold" and renamed.config["prefix"] == "a/"
    async with sessions() as session:
        row = (await session.scalars(select(StorageProvider))).one()
        assert book.opened(row).secret_access_key.get_secret_value() == "top-secret"  # type: ignore[attr-defined]
    with pytest.raises(InvalidInputError, match=r"config\.bucket"):
        await book.add(StorageProviderInput(name="bad", type="s3", config={"bucket": "Bad_Bucket"}))
    with pytest.raises(InvalidInputError, match=r"config\.colour"):
        await book.add(StorageProviderInput(name="bad", type="local", config={"path": "/tmp", "colour": "red"}))
    assert [f.name for f in type_schema("s3").fields if f.secret] == ["secret_access_key"]
    assert [f.name for f in type_schema("local").fields if f.required] == ["path"]


async def test_provider_test_really_round_trips(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, nats: EmbeddedNatsServer
) -> None:
    roots = tmp_path / "providers"
    (roots / "disk").mkdir(parents=True)
    # Private addresses allowed (every endpoint here is on loopback); the stack's own bus is `nats`.
    policy = ProviderPolicy(local_roots=(roots,), allow_private=True, bus_urls=(nats.url,))
    book = ProviderBook(sessions, SecretBox.from_settings(None, tmp_path), policy)
    local = await book.add(
        StorageProviderInput(name="disk", type="local", config={"path": str(roots / "disk")}, viewer=ADMIN)
    )
    assert (await book.test(local.id, scratch=tmp_path / "spool", viewer=ADMIN)).ok
    # Another cluster's bus (an open one): a plain user may use it; the stack's own only an admin.
    with EmbeddedNatsServer(tmp_path / "other-bus") as other:
        config = {"url": other.url, "bucket": "storage_test_bucket"}
        bus = await book.add(StorageProviderInput(name="bus", type="nats", config=config, viewer=ALICE))
        result = await book.test(bus.id, scratch=tmp_path / "spool", viewer=ALICE)
        assert result.ok, result.error
    with pytest.raises(ForbiddenError, match="own message bus") as refused:
        await book.add(StorageProviderInput(name="ours", type="nats", config={"url": nats.url}, viewer=ALICE))
    assert refused.value.field == "config.url"
    missing = await book.add(
        StorageProviderInput(name="gone", type="local", config={"path": str(roots / "missing")}, viewer=ADMIN)
    )
    failed = await book.test(missing.id, scratch=tmp_path / "spool", viewer=ADMIN)
    assert not failed.ok and failed.error == UNUSABLE_DIRECTORY
    await book.delete(local.id)
    with pytest.raises(NotFoundError):
        await book.get(local.id)


async def test_a_finished_run_is_recorded_from_its_message_alone(
    sessions: async_sessionmaker[AsyncSession], store: LocalContentStore
) -> None:
    """The RunFinished message holds the final state; the plan is read from the store by its cid.
    Nothing is asked of a planner (none runs here)."""
    catalog = ContentCatalog(sessions, store)
    source = await put(catalog, store, b"source", ContentOrigin.UPLOAD)
    middle = await put(catalog, store, b"middle", ContentOrigin.STEP_OUTPUT)
    output = await put(catalog, store, b"output", ContentOrigin.STEP_OUTPUT)
    plan_body = canonical_json(_plan().model_dump(mode="json"))
    plan = await put(catalog, store, plan_body, ContentOrigin.PLAN, media_type="application/json")
    state = RunState(
        run_id="run-finished",
        status=RunStatus.COMPLETED,
        recipe_id="QmRecipe",
        recipe_name="demo",
        plan_id="p" * 64,
        plan_cid=plan.cid,
        owner="alice",
        inputs={"video": source.cid},
        output_step="s3",
        output_cid=output.cid,
        steps={
            "s0": StepState(name="video", node_type="SOURCE", status=StepStatus.COMPLETED, output_cid=source.cid),
            "s1": StepState(
                name="fx[0:10]", node_type="EFFECT", inputs=["s0"], status=StepStatus.COMPLETED, output_cid=middle.cid
            ),
            "s3": StepState(
                name="blur", node_type="EFFECT", inputs=["s1"], status=StepStatus.COMPLETED, output_cid=output.cid
            ),
        },
    )
    follower = RunFollower(catalog, store, rendered_by="local", max_deliver=3)
    provenance = await follower.completed(state)
    assert provenance is not None
    record = json.loads(b"".join([chunk async for chunk in store.read(provenance)]))
    assert record["plan_cid"] == plan.cid
    assert record["output"]["cid"] == output.cid
    assert ("run-finished", "intermediate") in await catalog.refs(middle.cid)
    alice = Viewer(user="alice")
    assert (await catalog.get(output.cid, alice)).cid == output.cid  # the owner holds what the run made

    # The same message again (a redelivery): the same record, nothing twice.
    assert await follower.completed(state) == provenance

    # A state without a stored plan cannot make a provenance record: a permanent error, not a retry.
    with pytest.raises(PermanentError, match="without a stored plan"):
        await follower.completed(state.model_copy(update={"plan_cid": None}))
    # A plan another planner replica has not stored yet: the message comes back later, not dropped.
    unstored = cid_of_bytes(b"a plan still being stored")
    with pytest.raises(RetryableError, match="not stored yet"):
        await follower.completed(state.model_copy(update={"run_id": "run-early", "plan_cid": unstored}))


def test_a_completed_state_is_settled_only_when_every_step_of_its_making_is_done() -> None:
    """What the planner waits for before it publishes RunFinished (another replica may hold steps)."""
    state = RunState(
        run_id="run-settle",
        status=RunStatus.COMPLETED,
        recipe_id="QmRecipe",
        recipe_name="demo",
        inputs={},
        output_step="s3",
        steps={
            "s0": StepState(name="video", node_type="SOURCE", status=StepStatus.COMPLETED),
            "s1": StepState(name="fx[0:10]", node_type="EFFECT", inputs=["s0"], status=StepStatus.QUEUED),
            "s3": StepState(name="blur", node_type="EFFECT", inputs=["s1"], status=StepStatus.COMPLETED),
        },
    )
    assert unsettled(state) == ["plan_cid", "fx[0:10]"]
    state.plan_cid = "QmPlan"
    assert unsettled(state) == ["fx[0:10]"]
    state.steps["s1"].status = StepStatus.COMPLETED
    assert unsettled(state) == []
    # An output found cached needed nothing before it: its inputs may never have run.
    state.steps["s1"].status = StepStatus.QUEUED
    state.steps["s3"].status = StepStatus.CACHED
    assert unsettled(state) == []


async def test_quota_counts_what_a_user_brings_in_and_holds_at_once(
    sessions: async_sessionmaker[AsyncSession], store: LocalContentStore
) -> None:
    catalog = ContentCatalog(sessions, store, quota_bytes=10)
    kept = await put(catalog, store, b"sixsix", ContentOrigin.UPLOAD, owner="alice")
    assert await catalog.usage("alice") == (1, 6)
    # The same bytes again hold nothing new; what a run made is kept whatever the quota.
    await put(catalog, store, b"sixsix", ContentOrigin.UPLOAD, owner="alice")
    await put(catalog, store, b"made by a run", ContentOrigin.STEP_OUTPUT, owner="alice")
    assert await catalog.usage("alice") == (2, 19)
    # Two uploads at once, each within the quota alone: registered together, one is refused.
    outcomes = await asyncio.gather(
        put(catalog, store, b"abc", ContentOrigin.IMPORT, owner="bob"),
        put(catalog, store, b"defghij!", ContentOrigin.UPLOAD, owner="bob"),
        return_exceptions=True,
    )
    taken = [o for o in outcomes if isinstance(o, ContentRecord)]
    refused = [o for o in outcomes if isinstance(o, PayloadTooLargeError)]
    assert len(taken) == len(refused) == 1 and "ARTDAG_QUOTA_BYTES" in refused[0].message
    assert await catalog.usage("bob") == (1, taken[0].size)
    with pytest.raises(PayloadTooLargeError, match=r"bob holds \d bytes; 8 more would pass the quota of 10"):
        await put(catalog, store, b"klmnopq!", ContentOrigin.UPLOAD, owner="bob")

    # Looked up together: what exists and the viewer may see, in the order asked.
    bobs = taken[0].cid
    found = await catalog.get_many([bobs, "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", kept.cid], ALICE)
    assert [r.cid for r in found] == [kept.cid]
    assert [r.cid for r in await catalog.get_many([bobs, kept.cid], ADMIN)] == [bobs, kept.cid]
