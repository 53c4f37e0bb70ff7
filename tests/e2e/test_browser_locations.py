"""Where content is kept, in a real browser against the whole stack: an admin adds a `local` provider that
replicates everything, uploads a file, watches the content page's "Stored at" table reach `stored`, copies
the file to a second provider with the page's form, and deletes both providers, once keeping the copies
and once not. Screenshots land in tests/output/browser/ (git-ignored)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from artdag_common.cid import cid_of_file
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.test_browser import SHOTS, logged_in_tab

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one directory under which the stack lets admins put `local` providers."""
    return tmp_path_factory.mktemp("provider-roots")


@pytest.fixture(scope="module")
def copies_stack(tmp_path_factory: pytest.TempPathFactory, roots: Path) -> Iterator[Stack]:
    """A stack of this module's own: with `replicate: all`, everything its user holds is copied."""
    with running_stack(tmp_path_factory.mktemp("locations-home"), ARTDAG_PROVIDER_LOCAL_ROOTS=str(roots)) as stack:
        yield stack


@pytest.fixture
def page(copies_stack: Stack) -> Iterator[Any]:
    """A tab logged in as the stack's local user (an admin); the Delete button's confirm is accepted."""
    with logged_in_tab(copies_stack, accept_dialogs=True) as tab:
        yield tab


def add_local_provider(page: Any, name: str, path: Path, replicate: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    page.goto("/storage")
    page.fill("#sp-name", name)
    page.select_option("#sp-type", "local")
    page.wait_for_selector("#sp-fields input[name='config.path']")
    page.fill("#sp-fields input[name='config.path']", str(path))
    page.select_option("#rep-new", replicate)
    page.click("#add-provider button[type=submit]")
    page.wait_for_selector(f"[data-provider='{name}']")
    assert page.inner_text(f"[data-provider='{name}'] td.replicate") == replicate


def row(page: Any, provider_id: str) -> str:
    return f"#locations tr[data-provider-id='{provider_id}']"


def reload_until_stored(page: Any, cid: str, provider_id: str, timeout_s: float = 60) -> None:
    """Reload the content page until the provider's row says `stored` (the page runs no script)."""
    deadline = time.monotonic() + timeout_s
    while True:
        page.goto(f"/cache/{cid}")
        found = page.locator(row(page, provider_id))
        if found.count() and found.get_attribute("data-state") == "stored":
            return
        if time.monotonic() > deadline:
            shown = page.inner_text("#locations") if page.locator("#locations").count() else "no #locations section"
            pytest.fail(f"never stored: {shown}")
        time.sleep(0.5)


def files_in(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


def test_content_is_copied_watched_and_copied_again_from_its_page(
    page: Any, copies_stack: Stack, roots: Path, tmp_path: Path
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    add_local_provider(page, "mirror", roots / "mirror", "all")
    add_local_provider(page, "spare", roots / "spare", "none")
    with copies_stack.http() as http:
        ids = {p["name"]: p["id"] for p in http.get("/storage").json()["providers"]}
    page.screenshot(path=SHOTS / "30-storage-policies.png", full_page=True)

    # Upload a small file of its own through the media page.
    upload = tmp_path / "kept-somewhere.bin"
    upload.write_bytes(os.urandom(32 * 1024))
    cid = cid_of_file(upload)
    page.goto("/media")
    page.set_input_files("#media-files", str(upload))
    page.wait_for_selector(f"#upload-list .upload-row.done[data-cid='{cid}']")

    # The content page: the replicating provider's copy reaches `stored`; the other has none.
    reload_until_stored(page, cid, ids["mirror"])
    section = page.inner_text("#locations")
    assert "Stored at" in section and "mirror" in section and "local" in section
    assert page.locator(row(page, ids["spare"])).count() == 0
    assert page.locator("#locations .only-providers").count() == 0, "the local store still holds it"
    assert any(path.read_bytes() == upload.read_bytes() for path in files_in(roots / "mirror"))
    page.screenshot(path=SHOTS / "31-stored-at.png", full_page=True)

    # "Copy to provider": the second provider gets a copy too.
    page.select_option("#copy-provider", ids["spare"])
    with page.expect_navigation():
        page.click("#locations form.copy-form button[type=submit]")
    assert page.url.endswith(f"/cache/{cid}")
    page.wait_for_selector(row(page, ids["spare"]))
    reload_until_stored(page, cid, ids["spare"])
    assert any(path.read_bytes() == upload.read_bytes() for path in files_in(roots / "spare"))
    page.screenshot(path=SHOTS / "32-copied.png", full_page=True)

    # Deleting a provider keeps its copies unless asked to delete them too.
    page.goto("/storage")
    page.check(f"#drop-{ids['spare']}")
    page.click("[data-provider='spare'] button:has-text('Delete')")
    page.wait_for_selector("[data-provider='spare']", state="detached")
    assert "its copies are being removed" in page.inner_text("#providers .flash.ok")
    assert files_in(roots / "spare") == []
    page.click("[data-provider='mirror'] button:has-text('Delete')")
    page.wait_for_selector("[data-provider='mirror']", state="detached")
    assert "its copies stay" in page.inner_text("#providers .flash.ok")
    assert any(path.read_bytes() == upload.read_bytes() for path in files_in(roots / "mirror"))
