"""Shapes one event as the webhook's JSON body: `{"event", "id", "data", "data_hash", "timezone"}`.

`timezone` is the event's IANA zone as TicketFairy and CalDAV get it: the source's own, else the one
resolved offline from its location (coordinates, city, state or country); null when neither says.

`event` is `updated` when the webhook has accepted this event before (which is what the `changed`
selector resends) and `created` otherwise. `id` is derived from the source URL alone, so a receiver
can upsert by it across versions; `data_hash` identifies the version.
"""

import hashlib
from typing import Any

from event_importer.events.loader import data_hash
from event_importer.integrations.base import BaseTransformer
from event_importer.integrations.records import EventRef
from event_importer.timezones import resolve_event_timezone


def event_id(source_url: str) -> str:
    """The event's stable id: the SHA-1 of its source URL, hex (the CalDAV integration's UID uses the same)."""
    return hashlib.sha1(source_url.encode()).hexdigest()


class WebhookTransformer(BaseTransformer):
    def transform(self, event_data: dict[str, Any]) -> dict[str, Any]:
        """The body for an event seen without its history: always `created`."""
        return self._body(event_data, data_hash(event_data), updated=False)

    def transform_event(self, event: EventRef) -> dict[str, Any]:
        # The cache's own hash, so the receiver sees the same version id the `changed` selector compares.
        return self._body(event.data, event.data_hash, updated=event.submitted_before)

    def _body(self, event_data: dict[str, Any], digest: str, *, updated: bool) -> dict[str, Any]:
        event = self.parse(event_data)
        return {
            "event": "updated" if updated else "created",
            "id": event_id(event.source_url),
            "data": event.to_json(),
            "data_hash": digest,
            "timezone": resolve_event_timezone(event),
        }
