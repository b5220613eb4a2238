"""The new-events sensor and the schedule, evaluated with Dagster's test contexts: the sensor asks for a
run when there are unsubmitted or changed events and never twice for the same ones."""

import datetime as dt
import json

import dagster as dg
import pytest

from event_importer.db.models import SubmissionStatus
from event_importer.defs import integration_defs
from event_importer.defs.resources import DatabaseResource
from event_importer.integrations.discovery import discover
from event_importer_tests.defs.conftest import SERVICE
from event_importer_tests.factories import add_events, attempt, event_data


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
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2027, 3, 14, 12, tzinfo=dt.UTC))
    [request] = schedule.evaluate_tick(context).run_requests
    dg.validate_run_config(defs.resolve_job_def(f"{SERVICE}_submit_job"), request.run_config)
    assert selectors([request]) == ["unsubmitted"]
    assert request.tags["event-importer/trigger"] == "schedule"
    assert request.tags["event-importer/integration"] == SERVICE
    # The queue's per-lane limit (dagster.yaml) holds scheduled runs too: shard 0's lane, as any unsharded run.
    assert request.tags["event-importer/lane"] == f"{SERVICE}/0"
