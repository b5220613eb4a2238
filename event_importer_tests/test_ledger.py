"""The ledger's claims: one pending attempt per (event, service), held by a live owner, taken over
from a dead one with the reason recorded; attempt numbers count real attempts only."""

import subprocess
import sys
import time

from sqlalchemy import select

from event_importer.db.models import Submission, SubmissionStatus
from event_importer.ledger import (
    ClaimRequest,
    FinalRecord,
    ImportedAttempt,
    Outcome,
    SubmissionLedger,
    current_owner,
    import_attempts,
    owner_alive,
)
from event_importer_tests.factories import SVC, add_events, current_hash, event_data


def rows(database, event_id):
    with database.session() as session:
        return list(
            session.scalars(select(Submission).where(Submission.event_cache_id == event_id).order_by(Submission.id))
        )


def test_a_second_run_cannot_claim_an_event_a_live_run_holds(database):
    [event_id] = add_events(database, event_data())
    request = ClaimRequest(event_id, current_hash(database, event_id), 0)
    [first] = SubmissionLedger(database, SVC, "run-a").claim([request])
    [second] = SubmissionLedger(database, SVC, "run-b").claim([request])
    assert first is not None and first.attempt == 1
    assert second is None
    [row] = rows(database, event_id)
    assert (row.status, row.run_id, row.claimed_by) == ("pending", "run-a", current_owner())


def test_claims_are_per_service(database):
    [event_id] = add_events(database, event_data())
    request = ClaimRequest(event_id, current_hash(database, event_id), 0)
    assert SubmissionLedger(database, SVC, "a").claim([request])[0] is not None
    assert SubmissionLedger(database, "other", "b").claim([request])[0] is not None


def test_a_dead_runs_claim_is_taken_over_and_closed_with_a_reason(database):
    [event_id] = add_events(database, event_data())
    request = ClaimRequest(event_id, current_hash(database, event_id), 0)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = SubmissionLedger(database, SVC, "killed-run")
    killed.owner = f"{current_owner().rpartition(':')[0]}:{dead.stdout.strip()}"
    assert killed.claim([request])[0] is not None

    [claim] = SubmissionLedger(database, SVC, "next-run").claim([ClaimRequest(event_id, request.data_hash, 1)])
    assert claim is not None and claim.attempt == 2
    old, new = rows(database, event_id)
    assert old.status == "failed" and "killed-run" in old.error and "may or may not" in old.error
    assert old.failure_kind == "transient"  # nothing wrong with the event: sending it again may work
    assert (new.status, new.run_id) == ("pending", "next-run")


def test_finish_records_outcomes_and_attempts_count_real_tries_only(database):
    [event_id] = add_events(database, event_data())
    digest = current_hash(database, event_id)
    ledger = SubmissionLedger(database, SVC, "r1")
    ledger.record([FinalRecord(event_id, digest, 0, SubmissionStatus.DRY_RUN)])
    [claim] = ledger.claim([ClaimRequest(event_id, digest, 0)])
    assert claim is not None and claim.attempt == 1
    ledger.finish([Outcome(claim.submission_id, SubmissionStatus.FAILED, http_status=503, error="HTTP 503")])
    [stale] = SubmissionLedger(database, SVC, "r2").claim([ClaimRequest(event_id, digest, 0)])
    assert stale is None  # attempt 1 is taken: a run that saw no attempts is too late
    [retry] = SubmissionLedger(database, SVC, "r2").claim([ClaimRequest(event_id, digest, 1)])
    assert retry is not None and retry.attempt == 2
    ledger.finish(
        [Outcome(retry.submission_id, SubmissionStatus.SUCCESS, 201, response={"data": {"id": "7"}}, payload={"n": 1})]
    )
    statuses = [(r.status, r.attempt, r.http_status, r.finished_at is not None) for r in rows(database, event_id)]
    assert statuses == [("dry_run", 1, None, True), ("failed", 1, 503, True), ("success", 2, 201, True)]
    # The column holds what was sent and the answer; the run's trigger when the ledger knows it.
    assert rows(database, event_id)[-1].response == {"payload": {"n": 1}, "answer": {"data": {"id": "7"}}}


def imported(source_id, event_id, status=SubmissionStatus.SUCCESS, service=SVC):
    import datetime as dt

    return ImportedAttempt(source_id, event_id, service, status, dt.datetime(2026, 5, 1, tzinfo=dt.UTC))


def test_imported_attempts_are_numbered_like_real_ones_and_imported_once(database):
    [event_id, other_id] = add_events(database, event_data(), event_data())
    digest = current_hash(database, event_id)
    SubmissionLedger(database, SVC, "r1").record([FinalRecord(event_id, digest, 0, SubmissionStatus.DRY_RUN)])
    first = import_attempts(database, [imported(1, event_id, SubmissionStatus.FAILED), imported(2, event_id)])
    assert len(first.imported) == 2
    again = import_attempts(database, [imported(1, event_id, SubmissionStatus.FAILED), imported(2, event_id)])
    assert (again.imported, again.already_imported) == ([], 2)
    real = [(r.status, r.attempt, r.imported_id, r.data_hash) for r in rows(database, event_id)]
    assert real[1:] == [("failed", 1, 1, digest), ("success", 2, 2, digest)]

    # The next claim of this project's own is attempt 3, as for any event with two attempts.
    assert SubmissionLedger(database, SVC, "r2").claim([ClaimRequest(event_id, digest, 1)]) == [None]
    [claim] = SubmissionLedger(database, SVC, "r2").claim([ClaimRequest(event_id, digest, 2)])
    assert claim is not None and claim.attempt == 3

    # An (event, service) with attempts of this project's own keeps them as its latest: a later import
    # adds nothing there; other events and services are imported.
    later = import_attempts(
        database, [imported(3, event_id), imported(4, other_id), imported(5, event_id, service="other")]
    )
    assert [a.source_id for a in later.kept_own] == [3]
    assert [a.source_id for a in later.imported] == [4, 5]


def test_owner_liveness():
    assert owner_alive(current_owner(), None, stale_after=1)
    assert not owner_alive(f"{current_owner().rpartition(':')[0]}:999999999", None, stale_after=1e9)
    import datetime as dt

    recent = dt.datetime.now(dt.UTC)
    old = recent - dt.timedelta(hours=2)
    assert owner_alive("elsewhere:1", recent, stale_after=3600)
    assert not owner_alive("elsewhere:1", old, stale_after=3600)
    # This process started after a claim made two hours ago: its pid was reused, the owner is gone.
    assert owner_alive(current_owner(), recent, stale_after=1e9)
    assert not owner_alive(current_owner(), old, stale_after=1e9)


def test_a_zombie_owns_nothing():

    child = subprocess.Popen(["true"])
    owner = f"{current_owner().rpartition(':')[0]}:{child.pid}"
    for _ in range(200):  # until it has exited, unreaped
        if not owner_alive(owner, None, stale_after=1e9):
            break
        time.sleep(0.01)
    assert not owner_alive(owner, None, stale_after=1e9)
    child.wait()
