"""What the submission assets record about a run: counts, tables of events, and progress lines.

The tables are `dg.MetadataValue.table` values with a `dg.TableSchema`, so the UI shows them as
tables with typed columns. Each lists at most `PREVIEW_ROWS` rows (a run's results can be a hundred
thousand): the counts beside it give the totals. `PROGRESS_METADATA` and `SKIPPED_METADATA` are read
back by whoever follows a run (`event_importer.runs`), which is why they are public names here.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

import dagster as dg

from event_importer.framework.records import EventRef, Payload, SubmissionResult, failures_first

# Rows of each table in materialization metadata.
PREVIEW_ROWS = 20
# Characters of one cell: an error message or a title can be long, the event log keeps every run's metadata.
CELL_LIMIT = 200
# At most about this many progress lines per run, however big.
PROGRESS_LINES = 10
# Marks the engine events that carry progress lines.
PROGRESS_METADATA = "event-importer/progress"
# `[[event id, reason], ...]` of the events another run held, on `submission_results` when there are any.
SKIPPED_METADATA = "skipped_events"

CellValue = str | int | float | bool | None


def _column(name: str, type_: str, description: str) -> dg.TableColumn:
    return dg.TableColumn(name=name, type=type_, description=description)


_EVENT = _column("event", "int", "The event's id in the event cache.")
_OPERATION = _column("operation", "string", "What the run does with the event (create, update, cancel, remove).")
_TITLE = _column("title", "string", "The event's title.")
_SOURCE_URL = _column("source_url", "string", "Where the event was imported from.")
_ERROR = _column("error", "string", "Why the event was not sent, or what the destination answered.")

SELECTED_SCHEMA = dg.TableSchema(
    columns=[
        _EVENT,
        _OPERATION,
        _TITLE,
        _SOURCE_URL,
        _column("at_destination", "bool", "A version of the event was accepted before."),
    ]
)
INVALID_SCHEMA = dg.TableSchema(columns=[_EVENT, _TITLE, _SOURCE_URL, _ERROR])
RESULTS_SCHEMA = dg.TableSchema(
    columns=[
        _EVENT,
        _OPERATION,
        _column("outcome", "string", "success, failed, dry_run or skipped."),
        _column("http_status", "int", "The destination's HTTP status, when it answered."),
        _TITLE,
        _SOURCE_URL,
        _ERROR,
    ]
)


def cell(value: Any, limit: int = CELL_LIMIT) -> CellValue:
    """A table cell: numbers and booleans as they are, text on one line and cut at `limit` characters."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = " ".join(str(value).split())
    return text[: limit - 1] + "…" if len(text) > limit else text


def table(schema: dg.TableSchema, rows: Iterable[Sequence[Any]]) -> dg.TableMetadataValue:
    """A table of `rows` (at most `PREVIEW_ROWS`), one value per column of `schema`."""
    names = [column.name for column in schema.columns]
    records = [
        dg.TableRecord(dict(zip(names, (cell(value) for value in row), strict=True)))
        for row in islice(rows, PREVIEW_ROWS)
    ]
    return dg.MetadataValue.table(records, schema)


def selected_table(events: Iterable[EventRef]) -> dg.TableMetadataValue:
    return table(
        SELECTED_SCHEMA, ([e.id, e.operation.value, e.title, e.source_url, e.submitted_before] for e in events)
    )


def invalid_table(payloads: Iterable[Payload]) -> dg.TableMetadataValue:
    return table(INVALID_SCHEMA, ([p.event.id, p.event.title, p.event.source_url, p.error] for p in payloads))


def results_table(results: Sequence[SubmissionResult]) -> dg.TableMetadataValue:
    """Failures first (they are what a reader looks for), then the rest in event order."""
    return table(
        RESULTS_SCHEMA,
        (
            [r.event_id, r.operation.value, r.outcome.value, r.http_status, r.title, r.source_url, r.error]
            for r in failures_first(results, PREVIEW_ROWS)
        ),
    )


def count_metadata(counts: dict[str, int]) -> dict[str, dg.MetadataValue]:
    return {name: dg.MetadataValue.int(value) for name, value in counts.items()}


def mode(dry_run: bool) -> str:
    return "dry run (nothing sent)" if dry_run else "send"


def by_operation(results: Sequence[SubmissionResult]) -> dict[str, dict[str, int]]:
    """Counts per operation and outcome, e.g. `{"cancel": {"skipped": 2}}`."""
    counts = Counter((r.operation.value, r.outcome.value) for r in results)
    nested: dict[str, dict[str, int]] = {}
    for (operation, outcome), n in sorted(counts.items()):
        nested.setdefault(operation, {})[outcome] = n
    return nested


def progress_line(outcomes: Counter[str], done: int, total: int) -> str | None:
    """The run's progress line after its `done`-th result, or None when this one is not reported.

    A running count by outcome, not a line per event: whoever follows the run prints the events
    themselves once, in its results table. These lines, like the steps' info messages, are what the
    CLI prints as the run goes: it follows the run's event log (engine events, not the run's loggers,
    which would copy them into the compute logs on disk).
    """
    if done % max(1, total // PROGRESS_LINES) == 0 or done == total:
        tally = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
        return f"[{done}/{total}] recorded: {tally}"
    return None
