"""The new-events sensor sees removals and cancellations: a removal bumps `updated_at`, so the next
tick asks for a `removed` run, and a cancellation is a change like any other."""

from event_importer.db.models import SubmissionStatus
from event_importer.events.removal import remove_event
from event_importer_tests.factories import add_events, attempt, event_data
from event_importer_tests.orchestration.conftest import SERVICE
from event_importer_tests.orchestration.test_sensors import defs, selectors, tick  # noqa: F401 - `defs` is a fixture


def test_the_sensor_requests_a_run_for_removed_and_cancelled_events(defs, event_db):  # noqa: F811
    removed, cancelled = event_data(), event_data()
    for event_id in add_events(event_db, removed, cancelled):
        attempt(event_db, SERVICE, event_id, SubmissionStatus.SUCCESS)
    quiet = tick(defs)
    assert not quiet.run_requests

    remove_event(event_db, removed["source_url"])
    add_events(event_db, {**cancelled, "status": "EventCancelled"})
    found = tick(defs, quiet.cursor)

    assert sorted(selectors(found.run_requests)) == ["changed", "removed"]
    assert not tick(defs, found.cursor).run_requests
