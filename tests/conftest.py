from __future__ import annotations

import os
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NatsClient

from artdag_common.bus import connect
from artdag_common.nats_server import EmbeddedNatsServer
from artdag_dev.testing import ipfs_node, ipfs_node_unavailable, nats_server


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    """In CI (CI=true) a test that skips because a real part is missing (Chromium, the IPFS node,
    PostgreSQL, root for a tmpfs) fails instead: a missing part must not pass as a green run."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get("CI", "").lower() == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every real part must be had: {reason}"


@pytest.fixture(scope="session")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNatsServer]:
    """One real nats-server (JetStream on) for the whole test session."""
    with nats_server(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture
async def nc(nats: EmbeddedNatsServer) -> AsyncIterator[NatsClient]:
    client = await connect(nats.url, "pytest", login=nats.admin)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    path = tmp_path / "media"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def ipfs_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real IPFS node (js-ipfs, offline, in its own network namespace) for the session."""
    reason = ipfs_node_unavailable()
    if reason is not None:
        pytest.skip(f"no IPFS node: {reason}")
    with ipfs_node(tmp_path_factory.mktemp("ipfs")) as api:
        yield api
