"""Shapes one event as the webhook's JSON body: `{"type", "event", "id", "data", "data_hash", "timezone"}`.

`timezone` is the event's IANA zone as TicketFairy and CalDAV get it: the source's own, else the one
resolved offline from its location (coordinates, city, state or country); null when neither says.

`type` says what happened, in the `<resource>.<action>` form webhook receivers route on:

- `event.created`: the first delivery of the event (or the first after it came back to its source);
- `event.updated`: the webhook accepted this event before (what the `changed` selector resends);
- `event.cancelled`: its status became cancelled (the data says so too);
- `event.deleted`: it was removed from its source (`events load --mirror`, `events remove`); the
  data is its last version.

`event` is the same without the prefix (`created`, `updated`, ...), as earlier releases sent it.
`id` is derived from the source URL alone, so a receiver can upsert by it across versions;
`data_hash` identifies the version.
"""

from typing import Any

from event_importer.sdk import BaseTransformer, EventRef, Operation, data_hash, resolve_event_timezone, source_url_id

ACTIONS = {
    Operation.CREATE: "created",
    Operation.UPDATE: "updated",
    Operation.CANCEL: "cancelled",
    Operation.REMOVE: "deleted",
}


class WebhookTransformer(BaseTransformer):
    def transform(self, event_data: dict[str, Any]) -> dict[str, Any]:
        """The body for an event seen without its history: always `event.created`."""
        return self._body(event_data, data_hash(event_data), Operation.CREATE)

    def transform_event(self, event: EventRef) -> dict[str, Any]:
        # The cache's own hash, so the receiver sees the same version id the `changed` selector compares.
        return self._body(event.data, event.data_hash, event.operation)

    def _body(self, event_data: dict[str, Any], digest: str, operation: Operation) -> dict[str, Any]:
        event = self.parse(event_data)
        action = ACTIONS[operation]
        return {
            "type": f"event.{action}",
            "event": action,
            "id": source_url_id(event.source_url),
            "data": event.to_json(),
            "data_hash": digest,
            "timezone": resolve_event_timezone(event),
        }
