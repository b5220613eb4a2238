"""`integration_status`: every event counted once by the state of its latest real attempt, on SQLite
and PostgreSQL, with stale claims (their process is gone) told apart from live ones."""

import socket

from sqlalchemy import update

from event_importer.db.models import FailureKind, Submission, SubmissionStatus
from event_importer.runs import integration_status
from event_importer.settings import get_settings
from event_importer_tests.defs.conftest import SERVICE
from event_importer_tests.factories import add_events, attempt, event_data


def test_status_counts_each_event_by_its_latest_state(event_db, monkeypatch):
    monkeypatch.setenv("EVENT_IMPORTER_RETRY_ATTEMPTS", "2")
    get_settings.cache_clear()
    changed = event_data()
    ids = add_events(event_db, *(event_data() for _ in range(7)), changed)
    success, failed, pending, stale, dry_run, _unsubmitted, exhausted, was_changed = ids
    attempt(event_db, SERVICE, success, SubmissionStatus.SUCCESS)
    attempt(event_db, SERVICE, failed, SubmissionStatus.SUCCESS)
    attempt(event_db, SERVICE, failed, SubmissionStatus.FAILED)
    attempt(event_db, SERVICE, pending, SubmissionStatus.PENDING, run_id="live")
    attempt(event_db, SERVICE, stale, SubmissionStatus.PENDING, run_id="killed")
    attempt(event_db, SERVICE, dry_run, SubmissionStatus.DRY_RUN)
    attempt(event_db, SERVICE, was_changed, SubmissionStatus.SUCCESS)
    for _ in range(2):  # transient failures until the retry policy gives up
        attempt(event_db, SERVICE, exhausted, SubmissionStatus.FAILED, kind=FailureKind.TRANSIENT)
    # Another integration's attempts do not count here.
    attempt(event_db, "elsewhere", _unsubmitted, SubmissionStatus.SUCCESS)
    with event_db.session() as session:
        gone = f"{socket.gethostname()}:999999999"
        session.execute(update(Submission).where(Submission.run_id == "killed").values(claimed_by=gone))
    add_events(event_db, {**changed, "title": "Moved to the big room"})

    assert integration_status(SERVICE) == {
        "service": SERVICE,
        "events": 8,
        "unsubmitted": 1,
        "dry_run_only": 1,
        "success": 2,
        "failed": 2,
        "pending": 1,
        "stale_pending": 1,
        "changed": 1,
        "exhausted": 1,
    }
