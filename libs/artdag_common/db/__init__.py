"""The database layer: SQLAlchemy 2 async engines, sessions and Alembic migrations.

SQLite through aiosqlite when embedded, PostgreSQL through asyncpg in a cluster.
Each table has one owning service that writes it (see `tables`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from artdag_common.sqlite_busy import retry_while_busy

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

T = TypeVar("T")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # With WAL, NORMAL still never corrupts the database; a power cut may lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_file(url: str) -> str | None:
    path = url.split("///", 1)[-1] if "///" in url else ""
    return path if path and path != ":memory:" else None


def make_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL and a busy timeout so several processes can share it."""
    if url.startswith("sqlite"):
        path = _sqlite_file(url)
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _no_busy_handler(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.close()


class _SqliteWorker:
    """A plain sqlite3 engine on the same file, used from one thread of its own."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine: Engine = create_engine(engine.url.set(drivername="sqlite"), connect_args={"timeout": 0})
        event.listen(self.engine, "connect", _sqlite_pragmas)
        # `run` waits out other writers itself, sooner than SQLite would (see `sqlite_busy`).
        event.listen(self.engine, "connect", _no_busy_handler)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")

    def run(self, work: Callable[[Session], T]) -> T:
        def attempt() -> T:
            # A busy error rolls the unit of work back whole: it is tried again from its start.
            with self.sessions.begin() as session:
                return work(session)

        return retry_while_busy(attempt, OperationalError)

    def close(self) -> None:
        self.thread.shutdown(wait=True)
        self.engine.dispose()


_workers: weakref.WeakKeyDictionary[Engine, _SqliteWorker] = weakref.WeakKeyDictionary()


async def transact(sessions: async_sessionmaker[AsyncSession], work: Callable[[Session], T]) -> T:
    """`work(session)` in one transaction, committed when it returns (rolled back if it raises).

    For the hot paths (a batch of step outputs, a run's record): through aiosqlite, every
    statement, fetch and commit goes to its thread and back, ~16 hops for one registration
    and 3–8 ms on a busy machine. With SQLite the whole of `work` runs in one worker thread on
    a plain sqlite3 connection to the same file: one hop. With PostgreSQL it runs on the async
    session (`run_sync`: asyncpg, no thread).
    """
    engine = sessions.kw.get("bind")
    if isinstance(engine, AsyncEngine) and engine.dialect.name == "sqlite" and _sqlite_file(str(engine.url)):
        worker = _workers.get(engine.sync_engine)
        if worker is None:
            worker = _workers[engine.sync_engine] = _SqliteWorker(engine)
        return await asyncio.get_running_loop().run_in_executor(worker.thread, worker.run, work)
    async with sessions.begin() as session:
        return await session.run_sync(work)


async def dispose_engine(engine: AsyncEngine) -> None:
    """Close the engine's connections (and those `transact` opened for it)."""
    worker = _workers.pop(engine.sync_engine, None)
    if worker is not None:
        await asyncio.to_thread(worker.close)
    await engine.dispose()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade_sync(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


async def migrate(url: str) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Alembic's env runs its own event loop for the async engine: keep it off ours.
    await asyncio.to_thread(_upgrade_sync, url)
