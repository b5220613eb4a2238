"""How sending records outcomes: in batches, never more than twice the concurrency unrecorded, and a
database that fails mid-run stops the run with its error instead of hanging it."""

import threading

import pytest
from sqlalchemy.exc import OperationalError

from event_importer.framework.records import Outcome
from event_importer.ledger import SubmissionLedger
from event_importer_tests.factories import PlainClient, add_events, event_data
from event_importer_tests.framework.test_submitter import statuses, submitter_for
from event_importer_tests.standin import Fault


class CountingLedger:
    """Wraps `SubmissionLedger.finish` to count commits and outcomes (the real method still writes)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, before=None) -> None:
        self.commits: list[int] = []
        self.lock = threading.Lock()
        real = SubmissionLedger.finish
        counter = self

        def finish(ledger, outcomes):
            outcomes = list(outcomes)
            if before is not None:
                before(len(counter.commits))
            real(ledger, outcomes)
            with counter.lock:
                counter.commits.append(len(outcomes))

        monkeypatch.setattr(SubmissionLedger, "finish", finish)

    @property
    def recorded(self) -> int:
        with self.lock:
            return sum(self.commits)


def test_outcomes_are_committed_in_batches_and_every_one_is_recorded(stand_in, database, monkeypatch):
    ids = add_events(database, *(event_data() for _ in range(300)))
    stand_in.add_fault(Fault.latency(0.02), times=None)
    ledger = CountingLedger(monkeypatch)
    submitter = submitter_for(stand_in)
    submitter.settings.max_concurrency = 32

    report = submitter.submit_events(database, "unsubmitted")

    assert report.counts["submitted"] == 300 and stand_in.duplicates() == {}
    assert statuses(database) == {i: ["success"] for i in ids}
    assert sum(ledger.commits) == 300
    # One transaction per outcome would be 300; the writer gathers what arrives within its window.
    assert len(ledger.commits) <= 300 / 4, ledger.commits


def test_no_more_than_twice_the_concurrency_is_ever_sent_without_a_committed_outcome(
    stand_in, database, monkeypatch
):
    add_events(database, *(event_data() for _ in range(120)))
    concurrency = 4
    # Slow commits, so answered outcomes pile up waiting for the writer.
    ledger = CountingLedger(monkeypatch, before=lambda _: threading.Event().wait(0.05))
    sent = 0
    worst = 0
    real_send = PlainClient.send

    async def send(client, payload):
        nonlocal sent, worst
        sent += 1
        worst = max(worst, sent - ledger.recorded)
        return await real_send(client, payload)

    monkeypatch.setattr(PlainClient, "send", send)
    submitter = submitter_for(stand_in)
    submitter.settings.max_concurrency = concurrency

    report = submitter.submit_events(database, "unsubmitted")

    assert report.counts["submitted"] == 120
    # Answers come back in ~1 ms while a commit takes 50 ms, so the bound is reached, never passed.
    assert concurrency < worst <= 2 * concurrency


def test_a_database_failing_mid_run_stops_the_run_with_its_error(stand_in, database, monkeypatch):
    add_events(database, *(event_data() for _ in range(200)))

    def fail_after_first(commits_so_far: int) -> None:
        if commits_so_far >= 1:
            raise OperationalError("UPDATE submissions", {}, Exception("server closed the connection"))

    CountingLedger(monkeypatch, before=fail_after_first)
    submitter = submitter_for(stand_in)
    submitter.settings.max_concurrency = 8
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(submitter.submit_events(database, "unsubmitted"))
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the run hung after the database failed"
    [error] = outcome
    assert isinstance(error, OperationalError) and "server closed the connection" in str(error)
    # It stopped rather than sending everything into a ledger that cannot record it.
    assert len(stand_in.accepted) < 200


def test_an_untransformable_event_is_recorded_failed_while_the_rest_are_sent(stand_in, database):
    from event_importer.db.models import EventCache

    ids = add_events(database, *(event_data() for _ in range(3)))
    with database.session() as session:
        session.add(EventCache(source_url="https://events.example.org/raw", data={"date": "x"}, data_hash="x"))
    report = submitter_for(stand_in).submit_events(database, "all")
    by_outcome = {r.outcome for r in report.results}
    assert by_outcome == {Outcome.SUCCESS, Outcome.FAILED}
    assert all(statuses(database)[i] == ["success"] for i in ids)
    # Its data is what fails: later runs wait for new data rather than retrying it on their own.
    from sqlalchemy import select

    from event_importer.db.models import Submission

    with database.session() as session:
        kinds = session.execute(select(Submission.status, Submission.failure_kind).distinct()).all()
    assert sorted(kinds, key=str) == [("failed", "permanent"), ("success", None)]


def test_a_payload_that_is_not_json_fails_alone_with_the_reason(stand_in, database, monkeypatch):
    from event_importer_tests.factories import PlainTransformer

    ids = add_events(database, event_data(title="Odd"), event_data(title="Fine"))
    real = PlainTransformer.transform

    def transform(self, data):
        body = real(self, data)
        return {**body, "tags": {"a", "b"}} if data["title"] == "Odd" else body

    monkeypatch.setattr(PlainTransformer, "transform", transform)
    report = submitter_for(stand_in).submit_events(database, "unsubmitted")
    odd = next(r for r in report.results if r.event_id == ids[0])
    assert odd.outcome is Outcome.FAILED
    assert odd.error.startswith("transformer failed: its payload is not JSON:") and "set" in odd.error
    assert report.counts["submitted"] == 1 and len(stand_in.accepted) == 1
