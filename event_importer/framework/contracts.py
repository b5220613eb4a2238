"""The contracts of an integration: a selector picks events, a transformer maps one event to the
destination's format, a client sends one payload. `BaseSubmitter` (in `submitter`) ties them together.

Integration authors import these from `event_importer.sdk`.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

from pydantic import SecretStr
from sqlalchemy import Select
from sqlalchemy.orm import Session

from event_importer.db.models import EventCache
from event_importer.events.model import EventData
from event_importer.framework.records import EventRef, Payload, SubmissionResult

ProgressCallback = Callable[[SubmissionResult], None]


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How a client sends, the same knobs for every integration (from its settings)."""

    timeout: float = 30.0
    max_attempts: int = 4
    # Requests per second across the run, retries included; None: limited by concurrency alone.
    rate_limit: float | None = None
    max_concurrency: int = 32
    # Redis holding `rate_limit` and `max_concurrency` for every process sending to this destination;
    # None: they hold per process.
    limit_store: SecretStr | None = None


DEFAULT_OPTIONS = ClientOptions()

# The HTTP status of the answer `BaseClient.send` returned, reported by the client in the task that
# sent it: a context variable, so the concurrent sends of one run each see their own, and the
# clients' answers (whatever shape each destination's has) need not carry it.
_answer_status: ContextVar[int | None] = ContextVar("event_importer_answer_status", default=None)


def report_http_status(status: int | None) -> None:
    """Tell the ledger the HTTP status of the answer being returned (`HttpClient` does it for every 2xx)."""
    _answer_status.set(status)


def reported_http_status() -> int | None:
    """The status last reported in this task by `report_http_status`."""
    return _answer_status.get()


class BaseSelector(ABC):
    """Chooses which cached events an integration should process."""

    #: Whether the selector needs a `url` argument.
    needs_url: ClassVar[bool] = False

    @abstractmethod
    def statement(self, service_name: str, *, url: str | None = None) -> Select[EventCache]:
        """The query selecting the events, so the caller can stream, order and limit it."""

    def select_events(self, db: Session, service_name: str, *, url: str | None = None) -> list[EventCache]:
        """The selected events as a list (fine for small caches; the submitter streams instead)."""
        return list(db.scalars(self.statement(service_name, url=url).order_by(EventCache.id)))


class BaseTransformer(ABC):
    """Maps one `EventData` dict into the destination's format."""

    @abstractmethod
    def transform(self, event_data: dict[str, Any]) -> dict[str, Any]:
        """The destination's payload for one event.

        Raises:
            TransformError: the event lacks something the destination needs.
        """

    def transform_event(self, event: EventRef) -> dict[str, Any]:
        """Override when the payload depends on more than the event data (e.g. created vs updated)."""
        return self.transform(event.data)

    @staticmethod
    def parse(event_data: dict[str, Any]) -> EventData:
        """The event data validated as `EventData`."""
        return EventData.model_validate(event_data)


class BaseClient(ABC):
    """Sends payloads to one destination. Used as `async with client:` around a run's requests."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release connections; called once at the end of a run."""

    @abstractmethod
    async def submit(self, data: dict[str, Any]) -> dict[str, Any]:
        """Send one payload and return the destination's answer.

        Raises:
            SubmissionError: the destination did not accept it (with its status and message).
        """

    async def send(self, payload: Payload) -> dict[str, Any]:
        """Override when sending needs more than the body (e.g. an idempotency key from the event)."""
        assert payload.body is not None
        return await self.submit(payload.body)
