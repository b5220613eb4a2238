"""The submitter's steps end to end against a real loopback server: every selected event gets
exactly one recorded outcome, a bad event fails alone with its reason, dry runs send nothing."""

from sqlalchemy import select

from event_importer.db.models import Submission
from event_importer.framework.records import Outcome
from event_importer_tests.factories import PlainSubmitter, add_events, event_data
from event_importer_tests.standin import Fault


def submitter_for(server) -> PlainSubmitter:
    submitter = PlainSubmitter()
    submitter.url = server.url
    return submitter


def statuses(database) -> dict[int, list[str]]:
    with database.session() as session:
        found: dict[int, list[str]] = {}
        for row in session.scalars(select(Submission).order_by(Submission.id)):
            found.setdefault(row.event_cache_id, []).append(row.status)
        return found


def test_every_event_sent_once_and_recorded(stand_in, database):
    events = [event_data() for _ in range(40)]
    ids = add_events(database, *events)
    report = submitter_for(stand_in).submit_events(database, "unsubmitted")
    assert report.counts["submitted"] == 40 and report.ok
    assert stand_in.duplicates() == {}
    assert {r["body"]["source_url"] for r in stand_in.accepted} == {e["source_url"] for e in events}
    assert statuses(database) == {i: ["success"] for i in ids}
    again = submitter_for(stand_in).submit_events(database, "unsubmitted")
    assert again.selected == 0 and len(stand_in.accepted) == 40


def test_one_rejected_or_broken_event_fails_alone_with_its_reason(stand_in, database):
    rejected = event_data(title="Rejected show")
    undated = event_data(date="not-a-date")
    ids = add_events(database, event_data(), rejected, event_data())
    # Bypass the loader's validation, as a row written by another tool could.
    with database.session() as session:
        from event_importer.db.models import EventCache

        session.add(EventCache(source_url="https://events.example.org/raw", data=undated, data_hash="x"))
    stand_in.add_fault(Fault.reject(422, "Venue is not allowed"), match="Rejected show", times=None)
    report = submitter_for(stand_in).submit_events(database, "all")
    by_url = {r.source_url: r for r in report.results}
    assert by_url[rejected["source_url"]].outcome is Outcome.FAILED
    assert by_url[rejected["source_url"]].error == "HTTP 422 from plain: Venue is not allowed"
    assert by_url[rejected["source_url"]].http_status == 422
    broken = by_url["https://events.example.org/raw"]
    assert broken.outcome is Outcome.FAILED and broken.error.startswith("invalid event data: date:")
    assert report.counts == {
        "selected": 4, "transformed": 3, "invalid": 1, "submitted": 2, "failed": 2, "dry_run": 0, "skipped": 0
    }
    assert statuses(database)[ids[1]] == ["failed"]


def test_dry_run_sends_nothing_and_keeps_events_unsubmitted(stand_in, database):
    ids = add_events(database, event_data(), event_data())
    report = submitter_for(stand_in).submit_events(database, "unsubmitted", dry_run=True)
    assert report.counts["dry_run"] == 2 and stand_in.requests_seen == 0
    assert statuses(database) == {i: ["dry_run"] for i in ids}
    with database.session() as session:
        row = session.scalars(select(Submission)).first()
        assert row.response["payload"]["title"].startswith("Night")
    real = submitter_for(stand_in).submit_events(database, "unsubmitted")
    assert real.counts["submitted"] == 2


def test_dry_run_reports_an_untransformable_event_as_failed_without_changing_its_state(stand_in, database):
    from event_importer.db.models import EventCache

    with database.session() as session:
        session.add(EventCache(source_url="https://events.example.org/raw", data={"date": "x"}, data_hash="x"))
    report = submitter_for(stand_in).submit_events(database, "unsubmitted", dry_run=True)
    [result] = report.results
    assert result.outcome is Outcome.FAILED and result.error.startswith("invalid event data: ")
    assert list(statuses(database).values()) == [["dry_run"]]
    assert submitter_for(stand_in).submit_events(database, "unsubmitted", dry_run=True).selected == 1


def test_outcomes_are_written_while_the_run_goes_on(stand_in, database):
    """The first outcome is in the database before the last request is answered."""
    ids = add_events(database, *(event_data() for _ in range(3)))
    stand_in.add_fault(Fault.latency(0.5), times=None)
    seen_during_run: list[dict[int, list[str]]] = []
    submitter = submitter_for(stand_in)

    def progress(result):
        seen_during_run.append(statuses(database))

    submitter.settings.max_concurrency = 1
    with database.session() as session:
        events = list(submitter.select(session, "all"))
    submitter.submit(submitter.transform(events), database=database, run_id="r", progress=progress)
    # While the second and third requests were in flight, the first event was already final.
    assert any(s.get(ids[0]) == ["success"] and s.get(ids[2]) != ["success"] for s in seen_during_run)
