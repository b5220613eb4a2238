"""The values the submission assets hand to one another within a run (frozen, picklable, no ORM rows)."""

from dataclasses import dataclass

from event_importer.integrations.records import EventRef, Payload, SubmissionReport


@dataclass(frozen=True, slots=True)
class Selection:
    """The value of `<svc>/selected_events`: the run's parameters and the events they selected."""

    selector: str
    url: str | None
    dry_run: bool
    limit: int | None
    events: list[EventRef]


@dataclass(frozen=True, slots=True)
class Transformed:
    """The value of `<svc>/payloads`: one payload (or the reason there is none) per selected event."""

    selection: Selection
    payloads: list[Payload]


@dataclass(frozen=True, slots=True)
class Submitted:
    """The value of `<svc>/submission_results`: the run's report and the ids of the events it selected."""

    report: SubmissionReport
    selected_ids: tuple[int, ...]
