"""Publishing to L2: an ActivityPub `Create` for one piece of content, delivered to L2's inbox signed with
the L1's RSA key (HTTP Signatures, rsa-sha256 over `(request-target) host date digest`), then recorded."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import Any
from urllib.parse import quote

import httpx

from artdag_common.db.tables import PublicationRow
from artdag_common.errors import ConflictError, ServiceUnavailableError
from artdag_common.httpsig import sign_request
from artdag_common.keys import L1Keys
from artdag_common.schemas import ContentRecord, Publication, PublishRequest
from services.cache.service import ContentCatalog

log = logging.getLogger(__name__)

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTIVITY_JSON = "application/activity+json"


def object_type(media_type: str) -> str:
    """The ActivityStreams object type for a media type."""
    kind = media_type.split("/", 1)[0]
    return {"video": "Video", "image": "Image", "audio": "Audio"}.get(kind, "Document")


def actor_url(l2_server: str, user: str) -> str:
    """The user's actor on L2 (`{L2_SERVER}/users/{name}`)."""
    return f"{l2_server}/users/{quote(user, safe='')}"


def user_handle(user: str, l2_domain: str | None) -> str:
    """`@user@L2_DOMAIN`, the user's handle on their L2 (as the original writes `rendered_by`); the bare name
    without an L2."""
    return f"@{user}@{l2_domain}" if l2_domain else user


def create_activity(
    record: ContentRecord, *, user: str, l1_url: str, l2_server: str, now: float, l2_domain: str | None = None
) -> dict[str, Any]:
    """The `Create` activity announcing `record` (ids derived from the cid, so a retry is the same activity)."""
    published = dt.datetime.fromtimestamp(now, tz=dt.UTC).isoformat().replace("+00:00", "Z")
    actor = actor_url(l2_server, user)
    obj: dict[str, Any] = {
        "id": f"{l1_url}/cache/{record.cid}",
        "type": object_type(record.media_type),
        "name": record.name or record.cid,
        "mediaType": record.media_type,
        "url": f"{l1_url}/cache/{record.cid}/raw",
        "attributedTo": actor,
        "artdag:owner": user_handle(user, l2_domain),
        "published": published,
        "to": [AS_PUBLIC],
        "cid": record.cid,
        "size": record.size,
        "provenance": record.provenance_cid,
    }
    return {
        "@context": AS_CONTEXT,
        "id": f"{l1_url}/activities/create/{record.cid}",
        "type": "Create",
        "actor": actor,
        "published": published,
        "to": [AS_PUBLIC],
        "object": obj,
    }


def _publication(row: PublicationRow, *, already: bool) -> Publication:
    return Publication(
        cid=row.cid,
        user=row.username,
        activity_id=row.activity_id,
        object_id=row.object_id,
        inbox=row.inbox,
        published_at=row.published_at,
        activity=row.activity,
        already=already,
    )


class Publisher:
    """Publishes content to one L2, once per cid."""

    def __init__(
        self,
        catalog: ContentCatalog,
        keys: L1Keys,
        *,
        l2_server: str | None,
        l1_url: str,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        l2_domain: str | None = None,
    ) -> None:
        self.l2_domain = l2_domain
        self.catalog = catalog
        self.keys = keys
        self.l2_server = l2_server
        self.l1_url = l1_url
        self.timeout_s = timeout_s
        self.transport = transport

    @property
    def key_id(self) -> str:
        """Where L2 finds the key that signs deliveries: the L1 actor's `main-key`."""
        return f"{self.l1_url}/actor#main-key"

    async def publish(self, request: PublishRequest) -> Publication:
        record = await self.catalog.changeable(request.cid, request.viewer)
        earlier = await self.catalog.publication(record.cid)
        if earlier is not None:
            return _publication(earlier, already=True)
        if not self.l2_server:
            raise ConflictError("this L1 has no L2 server to publish to (set L2_SERVER and L2_DOMAIN)", field="cid")
        user = request.viewer.user or "admin"
        now = time.time()
        activity = create_activity(
            record, user=user, l1_url=self.l1_url, l2_server=self.l2_server, now=now, l2_domain=self.l2_domain
        )
        inbox = f"{self.l2_server}/inbox"
        body = json.dumps(activity, separators=(",", ":")).encode()
        headers = sign_request("POST", inbox, body, self.keys.rsa, self.key_id, now=now)
        headers["Content-Type"] = ACTIVITY_JSON
        headers["Accept"] = ACTIVITY_JSON
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, transport=self.transport) as http:
                response = await http.post(inbox, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"L2's inbox did not answer: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise ServiceUnavailableError(f"L2's inbox refused the activity: HTTP {response.status_code}")
        row = PublicationRow(
            cid=record.cid,
            username=user,
            activity_id=str(activity["id"]),
            object_id=str(activity["object"]["id"]),
            inbox=inbox,
            activity=activity,
            published_at=now,
        )
        recorded, fresh = await self.catalog.record_publication(row)
        if fresh:
            log.info("published %s to %s for %s", record.cid, inbox, user)
        return _publication(recorded, already=not fresh)
