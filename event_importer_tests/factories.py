"""Test data builders: events in the cache and attempts in the ledger, through the real code paths."""

import itertools
from typing import Any

from event_importer.db.engine import Database
from event_importer.db.models import FailureKind, SubmissionStatus
from event_importer.events.loader import load_events
from event_importer.framework.contracts import BaseClient, BaseTransformer
from event_importer.framework.http import HttpClient
from event_importer.framework.submitter import BaseSubmitter
from event_importer.ledger import ClaimRequest, FinalRecord, Outcome, SubmissionLedger

_counter = itertools.count(1)
SVC = "plain"


class PlainTransformer(BaseTransformer):
    def transform(self, event_data: dict[str, Any]) -> dict[str, Any]:
        return {"title": self.parse(event_data).title, "source_url": event_data["source_url"]}


class PlainClient(HttpClient):
    """Posts the payload as is to `<url>/events` of a stand-in server."""

    def __init__(self, url: str = "http://127.0.0.1:9", **kwargs: Any) -> None:
        super().__init__(service_name=SVC, base_url=url, **kwargs)

    async def submit(self, data: dict[str, Any]) -> dict[str, Any]:
        return await self.post_json("/events", data)


class PlainSubmitter(BaseSubmitter):
    """The smallest integration: the standard selectors, a pass-through transformer, a JSON POST."""

    service_name = SVC
    url = "http://127.0.0.1:9"

    def _create_client(self) -> BaseClient:
        return PlainClient(self.url, options=self.client_options)

    def _create_transformer(self) -> BaseTransformer:
        return PlainTransformer()


def event_data(**overrides: Any) -> dict[str, Any]:
    n = next(_counter)
    data: dict[str, Any] = {
        "title": f"Night {n}",
        "venue": "Tresor",
        "date": "2027-03-14",
        "time": {"start": "22:00", "end": "04:00", "timezone": "Europe/Berlin"},
        "location": {"address": "Köpenicker Str. 70", "city": "Berlin", "country": "Germany"},
        "lineup": ["DJ One", "DJ Two"],
        "source_url": f"https://events.example.org/e/{n}",
    }
    data.update(overrides)
    return data


def add_events(database: Database, *events: dict[str, Any]) -> list[int]:
    """Load events through the loader and return their cache ids, in order."""
    from sqlalchemy import select

    from event_importer.db.models import EventCache

    report = load_events(database, [(f"test[{i}]", e) for i, e in enumerate(events)])
    assert not report.invalid, report.invalid
    with database.session() as session:
        ids = dict(session.execute(select(EventCache.source_url, EventCache.id)).all())
    return [ids[e["source_url"]] for e in events]


def current_hash(database: Database, event_id: int) -> str:
    from event_importer.db.models import EventCache

    with database.session() as session:
        row = session.get(EventCache, event_id)
        assert row is not None
        return row.data_hash


def attempt(
    database: Database,
    service: str,
    event_id: int,
    status: SubmissionStatus,
    run_id: str = "run",
    kind: FailureKind | None = None,
    operation: str = "create",
) -> None:
    """Record one finished attempt the way a run does: claim, then finish (or a final record for dry
    runs and skips, which send nothing).

    A failure is of `kind` (unset: NULL, as rows recorded before failure kinds existed).
    """
    ledger = SubmissionLedger(database, service, run_id)
    digest = current_hash(database, event_id)
    seen = ledger.attempt_counts([event_id]).get(event_id, 0)
    if status in (SubmissionStatus.DRY_RUN, SubmissionStatus.SKIPPED):
        ledger.record([FinalRecord(event_id, digest, seen, status, operation=operation)])
        return
    [claim] = ledger.claim([ClaimRequest(event_id, digest, seen, operation)])
    assert claim is not None
    if status is not SubmissionStatus.PENDING:
        error = "boom" if status == "failed" else None
        ledger.finish([Outcome(claim.submission_id, status, error=error, failure_kind=kind)])


def submission_rows(database: Database) -> list[tuple[Any, ...]]:
    """Every ledger row as (event id, status, HTTP status, error, response), oldest first."""
    from sqlalchemy import select

    from event_importer.db.models import Submission

    with database.session() as session:
        return [
            (r.event_cache_id, r.status, r.http_status, r.error, r.response)
            for r in session.scalars(select(Submission).order_by(Submission.id))
        ]
