"""Where bytes live, addressed by CID. One interface, several backends.

Every backend computes the CID while the bytes stream in, writes under a temporary
name and publishes the object only when it is whole, so a reader never sees a
partial file and two writers of the same bytes cannot corrupt each other.
"""

from __future__ import annotations

from artdag_common.content_store.base import ContentStore, ContentWriter
from artdag_common.content_store.local import LocalContentStore
from artdag_common.settings import CommonSettings

__all__ = ["ContentStore", "ContentWriter", "LocalContentStore", "open_store"]


def open_store(settings: CommonSettings) -> ContentStore:
    """The content store the settings name (the local directory for now)."""
    return LocalContentStore(settings.store_dir, cid_version=settings.cid_version)
