"""The database layer on SQLite and on the PostgreSQL at 127.0.0.1:5432 (database `test`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from artdag_common.db import dispose_engine, make_engine, migrate, session_factory, transact
from artdag_common.db.tables import Content
from artdag_common.errors import InvalidCidError, NotFoundError
from artdag_common.recipe import parse_recipe
from artdag_common.schemas import ContentOrigin, ContentRecord, RunStatus, StepEvent, StepStatus
from services.cache.service import ContentCatalog
from services.planner.planning import build_plan
from services.planner.runs import RunBook, apply_step_event, new_run_state

POSTGRES_URL = os.environ.get("ARTDAG_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
CID = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


async def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            for table in (
                "runs",
                "content_refs",
                "storage_providers",
                "content",
                "recipes",
                "plans",
                "tokens",
                "recipe_holders",
                "content_holders",
                "publications",
                "content_locations",
                "assets",
                "alembic_version",
            ):
                await conn.execute(text(f"DROP TABLE IF EXISTS {table} CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'artdag.db'}"
    else:
        url = POSTGRES_URL
        await _reset_postgres(url)
    await migrate(url)
    await migrate(url)  # idempotent: a second start-up changes nothing
    db = make_engine(url)
    try:
        yield db
    finally:
        await dispose_engine(db)


async def test_migrations_create_the_tables(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        assert version == "0007"
        for table in (
            "content",
            "runs",
            "recipes",
            "plans",
            "content_refs",
            "storage_providers",
            "tokens",
            "recipe_holders",
            "content_holders",
            "publications",
            "content_locations",
            "assets",
        ):
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0


async def test_content_catalog_registers_once_and_finds(engine: AsyncEngine) -> None:
    catalog = ContentCatalog(session_factory(engine))
    record = ContentRecord(cid=CID, size=12, media_type="text/plain", name=None, origin=ContentOrigin.UPLOAD)
    await catalog.register(record)
    again = await catalog.register(record.model_copy(update={"name": "hello.txt", "size": 12}))
    assert again.name == "hello.txt"
    found = await catalog.get(CID)
    assert (found.cid, found.size, found.media_type, found.origin) == (CID, 12, "text/plain", ContentOrigin.UPLOAD)
    with pytest.raises(NotFoundError):
        await catalog.get("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")
    with pytest.raises(InvalidCidError):
        await catalog.get("'; DROP TABLE content; --")
    # What a run used, and who holds it: recorded once however often the run's event comes.
    refs = [(CID, "input"), (CID, "output"), ("", "intermediate")]
    assert await catalog.record_refs("run-1", refs) == 2
    assert await catalog.record_refs("run-1", refs) == 0
    assert await catalog.refs(CID) == [("run-1", "input"), ("run-1", "output")]
    unknown = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    assert await catalog.hold([CID, unknown], "alice") == 1  # only content that is there
    assert await catalog.hold([CID], "alice") == 0


async def test_run_book_keeps_state_and_lists_newest_first(engine: AsyncEngine) -> None:
    book = RunBook(session_factory(engine))
    recipe_text = (
        "inputs: [video]\nsteps:\n  - {id: s, type: RESIZE, inputs: [video], config: {width: 8, height: 8}}\n"
        "output: s\n"
    )
    plan = build_plan(parse_recipe(recipe_text), {"video": CID})
    first = new_run_state("run-" + "1" * 32, plan)
    second = new_run_state("run-" + "2" * 32, plan)
    second.created_at = first.created_at + 1
    await book.create(first, recipe_text, plan)
    await book.create(second, recipe_text, plan)
    apply_step_event(
        first, StepEvent(run_id=first.run_id, step_id=plan.output_step, status=StepStatus.COMPLETED, output_cid=CID)
    )
    await book.save_record(first.run_id, RunBook.record(first))
    stored = await book.get(first.run_id)
    assert stored.status == RunStatus.COMPLETED
    assert stored.output_cid == CID
    assert (await book.plan(first.run_id)) == plan
    runs, total = await book.list(limit=10, offset=0)
    assert total == 2
    assert [r.run_id for r in runs] == [second.run_id, first.run_id]
    runs, _ = await book.list(limit=1, offset=1)
    assert [r.run_id for r in runs] == [first.run_id]
    with pytest.raises(NotFoundError):
        await book.get("run-" + "3" * 32)


async def test_migration_0004_keeps_who_owned_content(tmp_path: Path) -> None:
    import asyncio

    from alembic import command

    from artdag_common.db import alembic_config

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0003")
    db = make_engine(url)
    try:
        async with db.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO content (cid, size, media_type, origin, created_at, tags, owner, pinned, published) "
                    "VALUES (:cid, 1, 'video/mp4', 'upload', 1.0, '[]', 'alice', false, false)"
                ),
                {"cid": CID},
            )
        await migrate(url)
        async with db.connect() as conn:
            holders = (await conn.execute(text("SELECT cid, username FROM content_holders"))).all()
        assert [tuple(h) for h in holders] == [(CID, "alice")]
    finally:
        await db.dispose()


async def test_a_unit_of_work_that_raises_leaves_nothing(engine: AsyncEngine) -> None:
    # `transact` runs SQLite work on a connection of its own (one thread hop): all or nothing still.
    sessions = session_factory(engine)
    row = {"cid": CID, "size": 1, "media_type": "text/plain", "origin": "upload", "created_at": 1.0, "tags": []}

    def insert_then_fail(session: Session) -> None:
        session.execute(insert(Content), [row])
        raise RuntimeError("half way")

    with pytest.raises(RuntimeError, match="half way"):
        await transact(sessions, insert_then_fail)
    with pytest.raises(NotFoundError):
        await ContentCatalog(sessions).get(CID)
    # What it commits, the async sessions see at once.
    await transact(sessions, lambda session: session.execute(insert(Content), [row]))
    assert (await ContentCatalog(sessions).get(CID)).size == 1
    with pytest.raises(NotFoundError):
        plan = build_plan(parse_recipe("steps:\n  - {id: a, type: NOOP}\noutput: a\n"), {})
        missing = new_run_state("run-" + "4" * 32, plan)
        await RunBook(sessions).save_record(missing.run_id, RunBook.record(missing))


async def test_a_unit_of_work_waits_out_another_process_holding_sqlite(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite+aiosqlite:///{tmp_path / 'artdag.db'}"
    await migrate(url)
    engine = make_engine(url)
    try:
        sessions = session_factory(engine)
        other = sqlite3.connect(tmp_path / "artdag.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another service mid-write
        row = {"cid": CID, "size": 1, "media_type": "text/plain", "origin": "upload", "created_at": 1.0, "tags": []}
        writing = asyncio.create_task(transact(sessions, lambda session: session.execute(insert(Content), [row])))
        await asyncio.sleep(0.1)
        assert not writing.done(), "it waits for the lock, it does not fail"
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(writing, 5)
        assert (await ContentCatalog(sessions).get(CID)).size == 1
    finally:
        await dispose_engine(engine)
