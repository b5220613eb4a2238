"""The new-events sensor and the schedule, evaluated with Dagster's test contexts: the sensor asks for a
run when there are unsubmitted or changed events and never twice for the same ones."""

import datetime as dt
import json

import dagster as dg
import pytest

from event_importer.db.models import SubmissionStatus
from event_importer.framework.discovery import discover
from event_importer.orchestration import integration_defs
from event_importer.orchestration.resources import DatabaseResource
from event_importer_tests.conftest import reset_process_state
from event_importer_tests.factories import add_events, attempt, event_data
from event_importer_tests.orchestration.conftest import SERVICE


@pytest.fixture
def defs(event_db) -> dg.Definitions:
    return integration_defs(discover().get(SERVICE))


def tick(defs, cursor=None):
    sensor = defs.resolve_sensor_def(f"{SERVICE}_new_events_sensor")
    # Unset: the URL the settings resolve (EVENT_IMPORTER_DATABASE_URL, set by `event_db`).
    context = dg.build_sensor_context(cursor=cursor, resources={"database": DatabaseResource()})
    return sensor.evaluate_tick(context)


def selectors(requests):
    return [r.run_config["ops"][f"{SERVICE}__selected_events"]["config"]["selector"] for r in requests]


def test_the_sensor_requests_a_run_for_new_events_once(defs, event_db):
    cache_db = event_db
    assert tick(defs).skip_message and not tick(defs).run_requests

    add_events(cache_db, event_data(), event_data())
    first = tick(defs)
    [request] = first.run_requests
    assert selectors([request]) == ["unsubmitted"]
    assert request.tags["event-importer/trigger"] == "sensor"
    assert request.tags["event-importer/selector"] == "unsubmitted"
    assert request.tags["event-importer/dry_run"] == "false"
    assert request.tags["event-importer/lane"] == f"{SERVICE}/0"
    dg.validate_run_config(defs.resolve_job_def(f"{SERVICE}_submit_job"), request.run_config)
    assert json.loads(first.cursor)["max_id"] == 2

    # Same events, cursor carried over: nothing new, no second request.
    second = tick(defs, first.cursor)
    assert not second.run_requests and "no unsubmitted or changed events" in second.skip_message
    assert second.cursor in (None, first.cursor)

    add_events(cache_db, event_data())
    third = tick(defs, first.cursor)
    [request] = third.run_requests
    assert request.run_key != first.run_requests[0].run_key
    assert json.loads(third.cursor)["max_id"] == 3


def test_the_sensor_requests_a_run_for_changed_events(defs, event_db):
    cache_db = event_db
    original = event_data()
    [event_id] = add_events(cache_db, original)
    attempt(cache_db, SERVICE, event_id, SubmissionStatus.SUCCESS)
    quiet = tick(defs)
    assert not quiet.run_requests

    add_events(cache_db, {**original, "title": original["title"] + " (moved)"})
    changed = tick(defs, quiet.cursor)
    assert selectors(changed.run_requests) == ["changed"]
    assert not tick(defs, changed.cursor).run_requests


def test_the_schedule_evaluates_to_valid_run_config(defs):
    schedule = defs.resolve_schedule_def(f"{SERVICE}_submit_schedule")
    assert schedule.cron_schedule == "0 * * * *" and schedule.execution_timezone == "UTC"
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2027, 3, 14, 12, tzinfo=dt.UTC), resources={"database": DatabaseResource()}
    )
    [request] = schedule.evaluate_tick(context).run_requests
    dg.validate_run_config(defs.resolve_job_def(f"{SERVICE}_submit_job"), request.run_config)
    assert selectors([request]) == ["unsubmitted"]
    assert request.tags["event-importer/trigger"] == "schedule"
    assert request.tags["event-importer/integration"] == SERVICE


def run_request(defs, instance, request):
    """Execute what a sensor or schedule asked for, as the daemon would launch it."""
    job = defs.resolve_job_def(f"{SERVICE}_submit_job")
    return job.execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags, raise_on_error=False
    )


def age(database, seconds):
    """Move every recorded attempt `seconds` into the past: time passing, without waiting for it."""
    from sqlalchemy import select

    from event_importer.db.models import Submission

    with database.session() as session:
        for row in session.scalars(select(Submission).where(Submission.finished_at.is_not(None))):
            row.finished_at -= dt.timedelta(seconds=seconds)


def test_transient_failures_are_retried_after_a_growing_delay_up_to_the_limit(
    event_db, instance, ticketfairy_env, monkeypatch
):
    from sqlalchemy import select

    from event_importer.db.models import Submission
    from event_importer.states import integration_status
    from event_importer_tests.standin import Fault

    monkeypatch.setenv("EVENT_IMPORTER_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("EVENT_IMPORTER_RETRY_DELAY", "60")
    reset_process_state()
    defs = integration_defs(discover().get(SERVICE))
    flaky, rejected = add_events(event_db, event_data(title="Flaky gig"), event_data(title="Rejected gig"))
    ticketfairy_env.add_fault(Fault.status(503), match="Flaky gig", times=None)
    ticketfairy_env.add_fault(Fault.reject(422, "bad date"), match="Rejected gig", times=None)

    def attempts(event_id):
        with event_db.session() as session:
            rows = session.execute(
                select(Submission.status, Submission.failure_kind).where(Submission.event_cache_id == event_id)
            ).all()
        return [tuple(row) for row in rows]

    def schedule_selectors():
        schedule = defs.resolve_schedule_def(f"{SERVICE}_submit_schedule")
        context = dg.build_schedule_context(
            scheduled_execution_time=dt.datetime.now(dt.UTC), resources={"database": DatabaseResource()}
        )
        return selectors(schedule.evaluate_tick(context).run_requests)

    first = tick(defs)
    [request] = first.run_requests
    run_request(defs, instance, request)
    assert attempts(flaky) == [("failed", "transient")]
    assert attempts(rejected) == [("failed", "permanent")]

    keys = set()
    for attempt_number, wait in ((2, 60), (3, 120)):
        # Not before the delay (60 s after the first failure, 120 s after the second) has passed.
        assert not tick(defs, first.cursor).run_requests
        age(event_db, wait - 5)
        assert not tick(defs, first.cursor).run_requests
        assert schedule_selectors() == ["unsubmitted"]
        age(event_db, 6)
        [retry] = tick(defs, first.cursor).run_requests
        assert selectors([retry]) == ["retry"] and retry.tags["event-importer/trigger"] == "sensor"
        assert retry.run_key not in keys
        keys.add(retry.run_key)
        assert schedule_selectors() == ["unsubmitted", "retry"]
        result = run_request(defs, instance, retry)
        assert len(attempts(flaky)) == attempt_number
        assert attempts(rejected) == [("failed", "permanent")]  # a 422 is never retried on its own

    # Three attempts used: no more automatic retries; the last run's metadata and `status` say so.
    [materialization] = result.asset_materializations_for_node(f"{SERVICE}__submission_results")
    assert materialization.metadata["retries_exhausted"].value == 1
    age(event_db, 100_000)
    assert not tick(defs, first.cursor).run_requests
    assert schedule_selectors() == ["unsubmitted"]
    status = integration_status(discover().get(SERVICE))
    assert status["failed"] == 2 and status["exhausted"] == 1
    # The queue's per-lane limit (dagster.yaml) holds scheduled runs too: shard 0's lane, as any unsharded run.
    assert request.tags["event-importer/lane"] == f"{SERVICE}/0"
