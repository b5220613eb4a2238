"""The values that flow between the steps of a submission: select -> transform -> submit.

They are frozen dataclasses (never ORM rows) that turn into plain JSON rows and back, so a run can
hold many of them compactly between its steps (see `event_importer.framework.packed`).
"""

import enum
import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Self

from event_importer.framework.lifecycle import Operation


@dataclass(frozen=True, slots=True)
class EventKey:
    """A selected event without its data: what sending and recording need once it is transformed."""

    id: int
    source_url: str
    title: str
    data_hash: str
    # Whether the service has the event: it accepted it, and not a removal since (some destinations
    # send "updated" then).
    submitted_before: bool = False
    # Real attempts recorded when it was selected: this run's claim is attempt number `attempts + 1`.
    attempts: int = 0
    # What this attempt is for the destination (see `event_importer.framework.lifecycle`).
    operation: Operation = Operation.CREATE


@dataclass(frozen=True, slots=True)
class EventRef:
    """A selected event: its cache id, data and data hash at selection time."""

    id: int
    source_url: str
    data: dict[str, Any]
    data_hash: str
    submitted_before: bool = False
    attempts: int = 0
    operation: Operation = Operation.CREATE

    @property
    def title(self) -> str:
        # A row written by another tool may hold anything; the transformer reports what is wrong.
        return str(self.data.get("title") or "") if isinstance(self.data, dict) else ""

    @property
    def key(self) -> EventKey:
        return EventKey(
            self.id, self.source_url, self.title, self.data_hash, self.submitted_before, self.attempts, self.operation
        )

    def to_row(self) -> tuple[Any, ...]:
        return (
            self.id, self.source_url, self.data, self.data_hash, self.submitted_before, self.attempts, self.operation
        )

    @classmethod
    def from_row(cls, row: list[Any]) -> Self:
        event_id, source_url, data, data_hash, submitted_before, attempts, operation = row
        return cls(event_id, source_url, data, data_hash, submitted_before, attempts, Operation(operation))


@dataclass(frozen=True, slots=True)
class Payload:
    """One event in the destination's format, why it could not be put in it, or why it is not sent."""

    event: EventKey
    body: dict[str, Any] | None
    error: str | None = None
    # Set when the destination's lifecycle rule says not to send (e.g. it cannot cancel events).
    skipped: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None

    @property
    def sendable(self) -> bool:
        return self.error is None and self.skipped is None

    def to_row(self) -> tuple[Any, ...]:
        e = self.event
        return (
            e.id, e.source_url, e.title, e.data_hash, e.submitted_before, e.attempts, e.operation,
            self.body, self.error, self.skipped,
        )

    @classmethod
    def from_row(cls, row: list[Any]) -> Self:
        event_id, source_url, title, data_hash, submitted_before, attempts, operation, body, error, skipped = row
        key = EventKey(event_id, source_url, title, data_hash, submitted_before, attempts, Operation(operation))
        return cls(key, body, error, skipped)


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    DRY_RUN = "dry_run"
    # Not sent: another live run holds the claim on this event, or the destination's lifecycle rule
    # says not to (the result's `error` says which).
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class SubmissionResult:
    """What happened to one event in one run.

    The destination's answer is not kept here: it is in the event's `Submission` row, so a run's
    memory does not grow with the answers of every event it sent.
    """

    event_id: int
    source_url: str
    title: str
    outcome: Outcome
    attempt: int | None = None
    submission_id: int | None = None
    http_status: int | None = None
    error: str | None = None
    operation: Operation = Operation.CREATE

    def to_json(self) -> dict[str, Any]:
        """The result as the CLI's `--json` and the API show it."""
        return {
            "event_id": self.event_id,
            "source_url": self.source_url,
            "title": self.title,
            "outcome": self.outcome.value,
            "operation": self.operation.value,
            "attempt": self.attempt,
            "submission_id": self.submission_id,
            "http_status": self.http_status,
            "error": self.error,
        }


@dataclass(frozen=True)
class SubmissionReport:
    """The results of one run of one integration."""

    service_name: str
    selector: str
    run_id: str
    dry_run: bool
    selected: int
    invalid: int
    results: list[SubmissionResult] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        by_outcome = Counter(r.outcome.value for r in self.results)
        return {
            "selected": self.selected,
            "transformed": self.selected - self.invalid,
            "invalid": self.invalid,
            "submitted": by_outcome[Outcome.SUCCESS],
            "failed": by_outcome[Outcome.FAILED],
            "dry_run": by_outcome[Outcome.DRY_RUN],
            "skipped": by_outcome[Outcome.SKIPPED],
        }

    @property
    def ok(self) -> bool:
        return not any(r.outcome is Outcome.FAILED for r in self.results)


def failures_first(results: Iterable[SubmissionResult], n: int) -> list[SubmissionResult]:
    """The first `n` results with failures first (what a reader acts on), then in event order.

    Picks them without sorting or copying the rest: a run's results can be a hundred thousand.
    """
    return heapq.nsmallest(n, results, key=lambda r: (r.outcome is not Outcome.FAILED, r.event_id))
