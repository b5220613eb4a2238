"""A stand-in server that also remembers, per request, which event it was for and which fault it got.

The reliability suite needs to explain every duplicate the destination accepted: was it a request
the client gave up on (an injected hang) or one that was in flight when a run was killed? The plain
`StandInServer` counts faults and accepted drafts; this subclass ties the two together:

- `requests`: every request that reached the server, in arrival order, as `Seen(key, fault, at)`;
- `accepted_via`: for each accepted draft's id, the fault it went through (`hang`, `latency`) or None.

The key of a request is the draft's `data.attributes.url`, the event's source URL.
"""

import contextvars
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from event_importer_tests.standin import Fault, StandInServer

# The fault of the request being handled: set when the fault is taken, read when the draft is recorded,
# both in the request's own task.
_fault_of_request: contextvars.ContextVar[str | None] = contextvars.ContextVar("fault_of_request", default=None)


@dataclass(frozen=True, slots=True)
class Seen:
    key: str | None
    fault: str | None
    at: float


def request_key(raw: str) -> str | None:
    try:
        body = json.loads(raw)
        url = body["data"]["attributes"]["url"]
    except (ValueError, KeyError, TypeError):
        return None
    return url if isinstance(url, str) else None


class TracingStandIn(StandInServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seen: list[Seen] = []
        self._via: dict[str, str | None] = {}

    def _take_fault(self, raw: str) -> Fault | None:
        fault = super()._take_fault(raw)
        kind = fault.kind if fault is not None else None
        _fault_of_request.set(kind)
        with self._lock:
            self._seen.append(Seen(request_key(raw), kind, time.time()))
        return fault

    def _record(self, request: web.Request, body: Any, received_at: float) -> str:
        record_id = super()._record(request, body, received_at)
        with self._lock:
            self._via[record_id] = _fault_of_request.get()
        return record_id

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    @property
    def accepted_via(self) -> dict[str, str | None]:
        with self._lock:
            return dict(self._via)
