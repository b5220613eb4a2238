"""The automatic retry policy as the `retry` and `exhausted` selectors apply it, on SQLite and
PostgreSQL: transient failures come back after a delay that doubles with each failure, until their
attempts are used up; permanent ones only once the event's data changed."""

import datetime as dt

import pytest
from sqlalchemy import select

from event_importer.db.models import FailureKind as K
from event_importer.db.models import Submission
from event_importer.db.models import SubmissionStatus as S
from event_importer.events.loader import load_events
from event_importer.framework.selectors import ExhaustedSelector, RetryPolicy, RetrySelector
from event_importer_tests.conftest import reset_process_state
from event_importer_tests.factories import SVC, PlainSubmitter, add_events, attempt, event_data

POLICY = RetryPolicy(attempts=3, delay=60.0, max_delay=3600.0)


@pytest.fixture
def submitter():
    sub = PlainSubmitter()
    sub.selectors["retry"] = RetrySelector(POLICY)
    sub.selectors["exhausted"] = ExhaustedSelector(POLICY)
    return sub


def selected(submitter, database, name) -> list[int]:
    with database.session() as session:
        return [e.id for e in submitter.select(session, name)]


def age(database, event_id, seconds):
    """Make the event's attempts finish `seconds` earlier than they did."""
    with database.session() as session:
        for row in session.scalars(select(Submission).where(Submission.event_cache_id == event_id)):
            if row.finished_at is not None:
                row.finished_at -= dt.timedelta(seconds=seconds)


def test_the_delay_doubles_with_each_transient_failure(submitter, database):
    [event_id] = add_events(database, event_data())
    attempt(database, SVC, event_id, S.FAILED, kind=K.TRANSIENT)
    assert selected(submitter, database, "retry") == []
    age(database, event_id, 61)
    assert selected(submitter, database, "retry") == [event_id]

    attempt(database, SVC, event_id, S.FAILED, kind=K.TRANSIENT)  # the second failure: wait 120 s
    age(database, event_id, 61)
    assert selected(submitter, database, "retry") == []
    age(database, event_id, 60)
    assert selected(submitter, database, "retry") == [event_id]
    assert selected(submitter, database, "exhausted") == []

    attempt(database, SVC, event_id, S.FAILED, kind=K.TRANSIENT)  # the third: no attempts left
    age(database, event_id, 100_000)
    assert selected(submitter, database, "retry") == []
    assert selected(submitter, database, "exhausted") == [event_id]
    assert selected(submitter, database, "failed") == [event_id]


def test_permanent_failures_wait_for_new_data(submitter, database):
    rejected, unknown = (event_data() for _ in range(2))
    ids = add_events(database, rejected, unknown)
    attempt(database, SVC, ids[0], S.FAILED, kind=K.PERMANENT)
    attempt(database, SVC, ids[1], S.FAILED)  # recorded before failure kinds existed
    age(database, ids[0], 100_000)
    age(database, ids[1], 100_000)
    assert selected(submitter, database, "retry") == []
    assert selected(submitter, database, "exhausted") == []

    load_events(database, [("edit", {**rejected, "title": "Fixed title"})])
    assert selected(submitter, database, "retry") == [ids[0]]


def test_new_data_resets_the_count_and_a_success_ends_the_streak(submitter, database):
    data = event_data()
    [event_id] = add_events(database, data)
    for _ in range(3):
        attempt(database, SVC, event_id, S.FAILED, kind=K.TRANSIENT)
    assert selected(submitter, database, "exhausted") == [event_id]

    load_events(database, [("edit", {**data, "venue": "Berghain"})])
    assert selected(submitter, database, "exhausted") == []
    assert selected(submitter, database, "retry") == [event_id]  # changed data: at once
    attempt(database, SVC, event_id, S.FAILED, kind=K.TRANSIENT)  # first failure of the new data
    assert selected(submitter, database, "retry") == []
    age(database, event_id, 61)
    assert selected(submitter, database, "retry") == [event_id]

    attempt(database, SVC, event_id, S.SUCCESS)
    attempt(database, SVC, event_id, S.FAILED, kind=K.TRANSIENT)  # e.g. resent by `all`
    age(database, event_id, 61)
    assert selected(submitter, database, "retry") == [event_id]


def test_the_policy_comes_from_the_settings(monkeypatch):

    monkeypatch.setenv("EVENT_IMPORTER_RETRY_ATTEMPTS", "7")
    monkeypatch.setenv("EVENT_IMPORTER_RETRY_DELAY", "10")
    monkeypatch.setenv("EVENT_IMPORTER_RETRY_MAX_DELAY", "100")
    reset_process_state()
    policy = RetryPolicy.from_settings()
    assert policy == RetryPolicy(7, 10.0, 100.0)
    assert [policy.wait_after(n) for n in range(1, 6)] == [10, 20, 40, 80, 100]
