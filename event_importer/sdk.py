"""Everything an integration is written with, in one module: `from event_importer.sdk import ...`.

An integration (a folder under `event_importer/integrations/`, or a package with an entry point in
the group `event_importer.integrations`) imports from here and from its own package only; the
framework's modules behind these names may move. `docs/INTEGRATIONS.md` shows each of them in use.

The names are grouped as an integration meets them:

- the four contracts: `BaseSelector`, `BaseTransformer`, `BaseClient` (most clients are an
  `HttpClient`), `BaseSubmitter`, with `ClientOptions` and `report_http_status`;
- its settings: `IntegrationSettings`, whose subclass declares what must be set (`required`,
  `required_together`) and gets `missing()` and `configured` from that; the submitter's
  `service_name` is never written: it is the integration's folder (or entry point) name;
- an event's life at the destination: `Lifecycle`, `Operation`, `sends`, `cannot`;
- the events: `EventData` and its parts, `EventStatus`, `EventRef`, `Payload`, the `EventCache` table
  and `unsubmitted` (the statement a custom selector usually narrows), `resolve_event_timezone`;
- rules every destination reads an event by: `source_url_id` (its stable id), `overnight_end` (an
  end at or before the start is on the next day), `place_line` (venue and address on one line);
- errors with a meaning to the framework: `TransformError` (this event cannot be sent),
  `ConfigurationError` (nothing can be sent), `SubmissionError` and its two kinds;
- optional commands and routes: `integration_group` (click) and `integration_router` (FastAPI),
  imported on first use so that an integration without them never loads click's or FastAPI's
  command and routing machinery.
"""

from typing import TYPE_CHECKING, Any

from event_importer.db.models import EventCache
from event_importer.errors import (
    ConfigurationError,
    RejectedSubmissionError,
    RetryableSubmissionError,
    SubmissionError,
    TransformError,
)
from event_importer.events.loader import data_hash
from event_importer.events.model import EventData, Images, Location, check_http_url, minimum_age_label
from event_importer.events.status import EventStatus
from event_importer.framework.contracts import (
    DEFAULT_OPTIONS,
    BaseClient,
    BaseSelector,
    BaseTransformer,
    ClientOptions,
    report_http_status,
)
from event_importer.framework.event_fields import overnight_end, place_line, source_url_id
from event_importer.framework.http import HttpClient
from event_importer.framework.lifecycle import Lifecycle, Operation, cannot, sends
from event_importer.framework.records import EventRef, Payload
from event_importer.framework.submitter import BaseSubmitter
from event_importer.settings import IntegrationSettings
from event_importer.states import unsubmitted
from event_importer.timezones import resolve_event_timezone

if TYPE_CHECKING:
    from event_importer.api.routes import integration_router
    from event_importer.cli.integration import integration_group

__all__ = [
    "DEFAULT_OPTIONS",
    "BaseClient",
    "BaseSelector",
    "BaseSubmitter",
    "BaseTransformer",
    "ClientOptions",
    "ConfigurationError",
    "EventCache",
    "EventData",
    "EventRef",
    "EventStatus",
    "HttpClient",
    "Images",
    "IntegrationSettings",
    "Lifecycle",
    "Location",
    "Operation",
    "Payload",
    "RejectedSubmissionError",
    "RetryableSubmissionError",
    "SubmissionError",
    "TransformError",
    "cannot",
    "check_http_url",
    "data_hash",
    "integration_group",
    "integration_router",
    "minimum_age_label",
    "overnight_end",
    "place_line",
    "report_http_status",
    "resolve_event_timezone",
    "sends",
    "source_url_id",
    "unsubmitted",
]

# Imported when first asked for: the CLI and the API import integrations, not the other way round.
_LAZY = {
    "integration_group": "event_importer.cli.integration",
    "integration_router": "event_importer.api.routes",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
