"""`integration_status`: each state's count is what that state's selector selects, on SQLite and
PostgreSQL, over a ledger with every kind of history (removals, cancellations never sent and
lifecycle skips included); stale claims (their process is gone) are told apart from live ones within
`pending`; the exclusive states partition the events with either rule for cancelled events never
sent."""

import datetime as dt
import socket

from sqlalchemy import update

from event_importer.db.models import FailureKind, Submission, SubmissionStatus
from event_importer.events.removal import remove_event
from event_importer.framework.discovery import discover
from event_importer.framework.selectors import standard_selectors
from event_importer.ledger import ImportedAttempt, import_attempts
from event_importer.states import STATES, integration_status, status_counts
from event_importer_tests.conftest import reset_process_state
from event_importer_tests.factories import add_events, attempt, event_data
from event_importer_tests.orchestration.conftest import SERVICE

S = SubmissionStatus


def _ledger_with_every_history(event_db) -> dict[str, int]:
    """One event per kind of history; returns the ids by kind."""
    histories: dict[str, list[SubmissionStatus]] = {
        "never": [],
        "dry_runs_only": [S.DRY_RUN, S.DRY_RUN],
        "success": [S.SUCCESS],
        "dry_run_then_success": [S.DRY_RUN, S.SUCCESS],
        "success_then_dry_run": [S.SUCCESS, S.DRY_RUN],
        "failed": [S.FAILED],
        "failed_then_dry_run": [S.FAILED, S.DRY_RUN],
        "retried": [S.FAILED, S.FAILED, S.SUCCESS],
        "success_then_failed": [S.SUCCESS, S.FAILED],
        "pending": [S.PENDING],
        "failed_then_pending": [S.FAILED, S.PENDING],
        "stale": [S.PENDING],
        "changed": [S.SUCCESS],
        "changed_then_failed": [S.SUCCESS, S.FAILED],
        "changed_and_resent": [S.SUCCESS, S.SUCCESS],
        "elsewhere_only": [],
        # Transient failures until the retry policy (2 attempts here) gave up.
        "exhausted": [S.FAILED, S.FAILED],
    }
    originals = {kind: event_data() for kind in histories}
    ids = dict(zip(histories, add_events(event_db, *originals.values()), strict=True))
    for kind, statuses in histories.items():
        for status in statuses:
            run_id = "killed" if kind == "stale" else "live"
            transient = FailureKind.TRANSIENT if kind == "exhausted" else None
            attempt(event_db, SERVICE, ids[kind], status, run_id=run_id, kind=transient)
    # Another integration's attempts do not count here.
    attempt(event_db, "elsewhere", ids["elsewhere_only"], S.SUCCESS)
    with event_db.session() as session:
        gone = f"{socket.gethostname()}:999999999"
        session.execute(update(Submission).where(Submission.run_id == "killed").values(claimed_by=gone))
    add_events(event_db, *({**originals[kind], "title": "moved"} for kind in ("changed", "changed_then_failed")))
    # Changed, then sent again: the latest success carries the new hash.
    add_events(event_db, {**originals["changed_and_resent"], "title": "resent"})
    attempt(event_db, SERVICE, ids["changed_and_resent"], S.SUCCESS)
    return ids | _lifecycle_histories(event_db) | _imported_histories(event_db)


def _imported_histories(event_db) -> dict[str, int]:
    """Attempts imported from an Event Importer database; returns the ids by kind."""
    kinds = ("imported_success", "imported_failed", "imported_then_changed", "imported_then_own_failure")
    originals = {kind: event_data() for kind in kinds}
    ids = dict(zip(kinds, add_events(event_db, *originals.values()), strict=True))
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    import_attempts(
        event_db,
        [
            ImportedAttempt(900 + n, ids[kind], SERVICE, status, at, error="rejected" if status == S.FAILED else None)
            for n, (kind, status) in enumerate(
                [
                    ("imported_success", S.SUCCESS),
                    ("imported_failed", S.FAILED),
                    ("imported_then_changed", S.SUCCESS),
                    ("imported_then_own_failure", S.SUCCESS),
                ]
            )
        ],
    )
    add_events(event_db, {**originals["imported_then_changed"], "title": "changed since the import"})
    attempt(event_db, SERVICE, ids["imported_then_own_failure"], S.FAILED)
    return ids


def _lifecycle_histories(event_db) -> dict[str, int]:
    """Removals, a cancellation never sent and lifecycle skips; returns the ids by kind."""
    kinds = (
        "removed_never_sent",
        "cancelled_never_sent",
        "removal_due",
        "removal_done",
        "skipped",
        "skipped_then_changed",
    )
    originals = {kind: event_data() for kind in kinds}
    originals["cancelled_never_sent"]["status"] = "cancelled"
    ids = dict(zip(kinds, add_events(event_db, *originals.values()), strict=True))
    for kind in ("removal_due", "removal_done", "skipped", "skipped_then_changed"):
        attempt(event_db, SERVICE, ids[kind], S.SUCCESS)
    for kind in ("removed_never_sent", "removal_due", "removal_done"):
        remove_event(event_db, originals[kind]["source_url"])
    attempt(event_db, SERVICE, ids["removal_done"], S.SUCCESS, operation="remove")
    # An update the destination cannot make is recorded as skipped: settled, not to be sent again...
    for kind in ("skipped", "skipped_then_changed"):
        add_events(event_db, {**originals[kind], "title": "renamed"})
        attempt(event_db, SERVICE, ids[kind], S.SKIPPED, operation="update")
    # ... until the data changes once more.
    add_events(event_db, {**originals["skipped_then_changed"], "title": "renamed again"})
    return ids


def test_each_state_count_is_what_its_selector_selects(event_db, monkeypatch):
    monkeypatch.setenv("EVENT_IMPORTER_RETRY_ATTEMPTS", "2")
    reset_process_state()
    ids = _ledger_with_every_history(event_db)
    submitter = discover().get(SERVICE).create_submitter()
    with event_db.session() as session:
        selected = {
            name: {e.id for e in submitter.get_selector(name).select_events(session, SERVICE)}
            for name in ("unsubmitted", "failed", "pending", "changed", "removed", "exhausted")
        }

    status = integration_status(discover().get(SERVICE))

    for name, events in selected.items():
        assert status[name] == len(events), (name, status, events)
    # The four exclusive states cover every event once.
    exclusive = [name for name, state in STATES.items() if state.exclusive]
    assert sum(status[name] for name in exclusive) == status["events"] == len(ids)
    # And each selector picks the kinds it should: dry runs never count as an attempt.
    kinds = {event_id: kind for kind, event_id in ids.items()}
    assert {kinds[i] for i in selected["unsubmitted"]} == {"never", "dry_runs_only", "elsewhere_only"}
    assert {kinds[i] for i in selected["failed"]} == {
        "failed",
        "failed_then_dry_run",
        "success_then_failed",
        "changed_then_failed",
        "exhausted",
        "imported_failed",
        "imported_then_own_failure",
    }
    assert {kinds[i] for i in selected["exhausted"]} == {"exhausted"}
    assert {kinds[i] for i in selected["pending"]} == {"pending", "failed_then_pending", "stale"}
    assert {kinds[i] for i in selected["changed"]} == {
        "changed",
        "changed_then_failed",
        "skipped_then_changed",
        "imported_then_changed",
    }
    assert {kinds[i] for i in selected["removed"]} == {"removal_due"}
    assert status == {
        "service": SERVICE,
        "events": 27,
        "unsubmitted": 3,
        "withheld": 2,
        "success": 10,
        "skipped": 2,
        "failed": 7,
        "pending": 3,
        "changed": 4,
        "removed": 1,
        "exhausted": 1,
        "dry_run_only": 1,
        "stale_pending": 1,
    }


def test_a_destination_that_sends_unsent_cancellations_counts_them_as_its_selector_selects(event_db):
    ids = _ledger_with_every_history(event_db)
    kinds = {event_id: kind for kind, event_id in ids.items()}
    selector = standard_selectors(include_cancelled=True)["unsubmitted"]
    with event_db.session() as session:
        selected = {kinds[e.id] for e in selector.select_events(session, SERVICE)}
    counts = status_counts(event_db, SERVICE, stale_after=3600, include_cancelled=True)

    assert selected == {"never", "dry_runs_only", "elsewhere_only", "cancelled_never_sent"}
    assert counts["unsubmitted"] == len(selected) and counts["withheld"] == 1
    assert sum(counts[name] for name, state in STATES.items() if state.exclusive) == counts["events"]
