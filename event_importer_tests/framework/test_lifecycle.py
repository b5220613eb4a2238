"""An event's life across the framework, on SQLite and PostgreSQL, with a real loopback destination:
the operation each selected event gets, which selectors pick cancellations and removals, what a
destination that cannot carry one out records (a skip, once per version, never a silent drop), and
the ledger's `operation` on every attempt."""

import pytest
from sqlalchemy import select

from event_importer.db.models import EventCache, Submission
from event_importer.db.models import SubmissionStatus as S
from event_importer.events.loader import load_events
from event_importer.events.removal import remove_event
from event_importer.framework.lifecycle import (
    DEFAULT_LIFECYCLE,
    Lifecycle,
    Operation,
    cannot,
    operation_for,
    sends,
)
from event_importer.framework.records import Outcome
from event_importer_tests.factories import SVC, PlainSubmitter, add_events, attempt, event_data


class CannotCancel(PlainSubmitter):
    """A destination that takes updates and removals but has no way to cancel."""

    lifecycle = Lifecycle(update=sends("resent"), cancel=cannot(Operation.CANCEL), remove=sends("deleted"))


class SendsUnsentCancelled(PlainSubmitter):
    lifecycle = Lifecycle(
        update=sends("resent"), cancel=sends("resent"), remove=sends("deleted"), send_unsent_cancelled=True
    )


def for_server(cls, server):
    submitter = cls()
    submitter.url = server.url
    return submitter


def selected(submitter, database, name) -> list[int]:
    with database.session() as session:
        return [e.id for e in submitter.select(session, name)]


def ledger(database) -> list[tuple[int, str, str, str | None]]:
    with database.session() as session:
        rows = session.execute(
            select(Submission.event_cache_id, Submission.operation, Submission.status, Submission.error).order_by(
                Submission.id
            )
        )
        return [tuple(row) for row in rows]


def cancel(database, event):
    load_events(database, [("edit", {**event, "status": "https://schema.org/EventCancelled"})])


def test_operation_follows_removal_then_status_then_whether_the_destination_has_it():
    cancelled = {"status": "cancelled"}
    assert operation_for({}, removed=False, at_destination=False) is Operation.CREATE
    assert operation_for({}, removed=False, at_destination=True) is Operation.UPDATE
    assert operation_for(cancelled, removed=False, at_destination=True) is Operation.CANCEL
    assert operation_for(cancelled, removed=True, at_destination=True) is Operation.REMOVE
    assert operation_for("not a dict", removed=False, at_destination=False) is Operation.CREATE
    assert DEFAULT_LIFECYCLE.skip_reason(Operation.REMOVE, at_destination=True) == (
        "skipped: the destination cannot remove events"
    )
    assert DEFAULT_LIFECYCLE.skip_reason(Operation.CANCEL, at_destination=False) == (
        "skipped: cancelled before it was ever sent to this destination"
    )
    assert SendsUnsentCancelled.lifecycle.skip_reason(Operation.CANCEL, at_destination=False) is None


def test_a_cancellation_is_sent_as_such_by_changed_and_never_sent_when_the_event_was_never_sent(
    stand_in, database
):
    sent, never_sent = event_data(), event_data()
    sent_id, never_id = add_events(database, sent, never_sent)
    submitter = for_server(PlainSubmitter, stand_in)
    assert submitter.submit_events(database).counts["submitted"] == 2

    cancel(database, sent)
    assert selected(submitter, database, "changed") == [sent_id]
    [result] = submitter.submit_events(database, "changed").results
    assert (result.operation, result.outcome) == (Operation.CANCEL, Outcome.SUCCESS)
    assert stand_in.accepted[-1]["body"]["source_url"] == sent["source_url"]
    assert selected(submitter, database, "changed") == []

    # A new event that is cancelled before any run: nothing to tell the destination.
    late = event_data(status="EventCancelled")
    [late_id] = add_events(database, late)
    assert selected(submitter, database, "unsubmitted") == []
    assert selected(for_server(SendsUnsentCancelled, stand_in), database, "unsubmitted") == [late_id]
    assert len(stand_in.accepted) == 3
    assert never_id not in selected(submitter, database, "changed")


def test_a_destination_that_cannot_cancel_records_one_skip_per_version_and_sends_nothing(stand_in, database):
    event = event_data()
    [event_id] = add_events(database, event)
    submitter = for_server(CannotCancel, stand_in)
    submitter.submit_events(database)
    cancel(database, event)

    report = submitter.submit_events(database, "changed")

    [result] = report.results
    assert result.outcome is Outcome.SKIPPED and result.error == "skipped: the destination cannot cancel events"
    assert report.counts["skipped"] == 1 and report.ok
    assert len(stand_in.accepted) == 1  # the creation only
    assert ledger(database) == [
        (event_id, "create", "success", None),
        (event_id, "cancel", "skipped", "skipped: the destination cannot cancel events"),
    ]
    # Settled: the next run does not skip it again.
    assert submitter.submit_events(database, "changed").selected == 0
    # A dry run shows the skip and settles nothing.
    load_events(database, [("edit", {**event, "status": "cancelled", "title": "Cancelled, renamed"})])
    [dry] = submitter.submit_events(database, "changed", dry_run=True).results
    assert dry.outcome is Outcome.SKIPPED and dry.error == "skipped: the destination cannot cancel events"
    assert selected(submitter, database, "changed") == [event_id]


def test_removed_events_go_through_the_removed_selector_only_and_come_back_as_created(stand_in, database):
    sent, unsent = event_data(), event_data()
    sent_id, unsent_id = add_events(database, sent, unsent)
    submitter = for_server(CannotCancel, stand_in)
    attempt(database, SVC, sent_id, S.SUCCESS)

    remove_event(database, sent["source_url"])
    remove_event(database, unsent["source_url"])

    assert selected(submitter, database, "unsubmitted") == []
    assert selected(submitter, database, "changed") == []
    assert selected(submitter, database, "removed") == [sent_id]
    [result] = submitter.submit_events(database, "removed").results
    assert (result.operation, result.outcome) == (Operation.REMOVE, Outcome.SUCCESS)
    assert selected(submitter, database, "removed") == []

    # Loaded again: restored, and created again where its removal was carried out.
    report = load_events(database, [("back", sent), ("back", unsent)])
    assert (report.restored, report.unchanged) == (2, 2)
    with database.session() as session:
        assert session.scalars(select(EventCache.removed_at)).all() == [None, None]
    assert selected(submitter, database, "changed") == [sent_id]
    assert selected(submitter, database, "unsubmitted") == [unsent_id]
    with database.session() as session:
        [again] = list(submitter.select(session, "changed"))
    assert again.operation is Operation.CREATE and not again.submitted_before
    # History stays: the removal is still in the ledger.
    assert [row[1:3] for row in ledger(database) if row[0] == sent_id] == [("create", "success"), ("remove", "success")]


def test_a_removal_the_destination_cannot_carry_out_is_skipped_once(stand_in, database):
    event = event_data()
    [event_id] = add_events(database, event)
    submitter = for_server(PlainSubmitter, stand_in)  # the default lifecycle: no removals
    submitter.submit_events(database)
    remove_event(database, event["source_url"])

    [result] = submitter.submit_events(database, "removed").results

    assert result.outcome is Outcome.SKIPPED and result.error == "skipped: the destination cannot remove events"
    assert submitter.submit_events(database, "removed").selected == 0
    assert len(stand_in.accepted) == 1
    assert ledger(database)[-1] == (event_id, "remove", "skipped", "skipped: the destination cannot remove events")


def test_a_failed_event_removed_before_its_retry_is_not_sent(stand_in, database):
    event = event_data()
    [event_id] = add_events(database, event)
    attempt(database, SVC, event_id, S.FAILED)
    remove_event(database, event["source_url"])
    submitter = for_server(PlainSubmitter, stand_in)

    [result] = submitter.submit_events(database, "failed").results

    assert result.outcome is Outcome.SKIPPED
    assert result.error == "skipped: removed from the source, and this destination does not have it"
    assert stand_in.requests_seen == 0
    assert selected(submitter, database, "failed") == []


@pytest.mark.parametrize("status", ["postponed", "rescheduled", "moved_online"])
def test_other_status_changes_are_updates(stand_in, database, status):
    event = event_data()
    add_events(database, event)
    submitter = for_server(PlainSubmitter, stand_in)
    submitter.submit_events(database)
    load_events(database, [("edit", {**event, "status": status, "previous_start": "2027-03-13T22:00"})])
    [result] = submitter.submit_events(database, "changed").results
    assert (result.operation, result.outcome) == (Operation.UPDATE, Outcome.SUCCESS)
