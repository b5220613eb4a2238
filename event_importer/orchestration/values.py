"""The values the submission assets hand to one another within a run (no ORM rows).

Events and payloads travel packed (compressed JSON chunks, see `event_importer.framework.packed`),
so a run's memory stays nearly flat however many events it selects.
"""

from dataclasses import dataclass

from event_importer.framework.packed import Packed
from event_importer.framework.records import EventRef, Payload, SubmissionReport


@dataclass(frozen=True, slots=True)
class Selection:
    """The value of `<svc>/selected_events`: the run's parameters and the events they selected."""

    selector: str
    url: str | None
    dry_run: bool
    limit: int | None
    events: Packed[EventRef]


@dataclass(frozen=True, slots=True)
class Transformed:
    """The value of `<svc>/payloads`: one payload (or the reason there is none) per selected event."""

    selection: Selection
    payloads: Packed[Payload]
    invalid: int


@dataclass(frozen=True, slots=True)
class Submitted:
    """The value of `<svc>/submission_results`: the run's report and the ids of the events it selected."""

    report: SubmissionReport
    selected_ids: tuple[int, ...]
