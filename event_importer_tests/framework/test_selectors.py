"""The standard selectors' meaning, on SQLite and PostgreSQL: each rests on the latest real attempt
per (event, service); dry runs never count as submitted; a retried success is no longer failed."""

import pytest
from sqlalchemy import event, text

from event_importer.db.models import SubmissionStatus as S
from event_importer.errors import EventImporterError, UnknownSelectorError
from event_importer.events.loader import load_events
from event_importer_tests.factories import SVC, PlainSubmitter, add_events, attempt, event_data


@pytest.fixture
def submitter():
    return PlainSubmitter()


def selected(submitter, database, name, **kwargs) -> list[int]:
    with database.session() as session:
        return [e.id for e in submitter.select(session, name, **kwargs)]


def test_unsubmitted_ignores_dry_runs_and_other_services(submitter, database):
    fresh, dry, sent, elsewhere = add_events(database, *(event_data() for _ in range(4)))
    attempt(database, SVC, dry, S.DRY_RUN)
    attempt(database, SVC, sent, S.FAILED)
    attempt(database, "webhook", elsewhere, S.SUCCESS)
    assert selected(submitter, database, "unsubmitted") == [fresh, dry, elsewhere]


def test_failed_is_latest_attempt_failed_and_clears_after_a_successful_retry(submitter, database):
    failed, retried, dry_after_fail = add_events(database, *(event_data() for _ in range(3)))
    attempt(database, SVC, failed, S.FAILED)
    attempt(database, SVC, retried, S.FAILED)
    attempt(database, SVC, retried, S.SUCCESS)
    attempt(database, SVC, dry_after_fail, S.FAILED)
    attempt(database, SVC, dry_after_fail, S.DRY_RUN)
    assert selected(submitter, database, "failed") == [failed, dry_after_fail]


def test_pending_is_latest_attempt_still_pending(submitter, database):
    pending, done = add_events(database, event_data(), event_data())
    attempt(database, SVC, pending, S.PENDING, run_id="killed")
    attempt(database, SVC, done, S.SUCCESS)
    assert selected(submitter, database, "pending") == [pending]


def test_changed_means_latest_success_was_made_from_other_data(submitter, database):
    first, second, untouched = (event_data() for _ in range(3))
    ids = add_events(database, first, second, untouched)
    for event_id in ids:
        attempt(database, SVC, event_id, S.SUCCESS)
    assert selected(submitter, database, "changed") == []

    load_events(database, [("edit", {**first, "title": "New title"}), ("edit", {**second, "venue": "Berghain"})])
    assert selected(submitter, database, "changed") == ids[:2]

    attempt(database, SVC, ids[0], S.SUCCESS)  # resubmitted with the new data
    assert selected(submitter, database, "changed") == [ids[1]]
    attempt(database, SVC, ids[1], S.DRY_RUN)  # a dry run does not count
    assert selected(submitter, database, "changed") == [ids[1]]


def test_changed_and_failed_look_at_the_latest_success_and_the_latest_attempt(submitter, database):
    events = [event_data() for _ in range(4)]
    back, forward, failed_same, failed_edited = ids = add_events(database, *events)

    def edit(index: int, title: str) -> None:
        load_events(database, [("edit", {**events[index], "title": title})])

    for event_id in ids:
        attempt(database, SVC, event_id, S.SUCCESS)
    # Accepted again with new data, then back to the first data: an older success matches, the latest does not.
    edit(0, "Second version")
    attempt(database, SVC, back, S.SUCCESS)
    load_events(database, [("edit", events[0])])
    # Accepted again with new data: an older success differs, the latest matches.
    edit(1, "Second version")
    attempt(database, SVC, forward, S.SUCCESS)
    # A failure after the success, with the same data and with new data.
    attempt(database, SVC, failed_same, S.FAILED)
    edit(3, "Second version")
    attempt(database, SVC, failed_edited, S.FAILED)
    attempt(database, "webhook", failed_edited, S.SUCCESS)  # another service's success does not count

    assert selected(submitter, database, "changed") == [back, failed_edited]
    assert selected(submitter, database, "failed") == [failed_same, failed_edited]
    with database.session() as session:
        refs = list(submitter.select(session, "failed"))
    assert [(r.attempts, r.submitted_before) for r in refs] == [(2, True), (2, True)]


def test_sqlite_streams_every_large_selection_without_sorting_it_first(submitter, sqlite_database):
    """Without statistics SQLite starts `failed` and `changed` from the attempts' index; the
    selectors order by the attempt's event id so it streams rows in that order instead of sorting
    all matches before the first (what the 1,000,000-event benchmark would show as a stall)."""
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "event_cache" in statement:
            sent.append((statement, parameters))

    event.listen(sqlite_database.engine, "before_cursor_execute", capture)
    for name in ("unsubmitted", "failed", "changed", "all"):
        sent.clear()
        assert selected(submitter, sqlite_database, name) == []
        [(statement, parameters)] = sent
        with sqlite_database.engine.connect() as connection:
            plan = [row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
        assert not [line for line in plan if "TEMP B-TREE FOR ORDER BY" in line], (name, plan)
        assert not [line for line in plan if line.startswith("SCAN submissions")], (name, plan)


def test_select_leaves_the_callers_jit_setting_as_it_was(submitter, database):
    if database.dialect != "postgresql":
        pytest.skip("JIT is a PostgreSQL setting")
    add_events(database, event_data())
    with database.session() as session:
        session.execute(text("SET LOCAL jit = on"))
        assert len(list(submitter.select(session, "all"))) == 1
        assert session.execute(text("SHOW jit")).scalar_one() == "on"


def test_reimport_of_identical_data_is_not_a_change(submitter, database):
    data = event_data()
    [event_id] = add_events(database, data)
    attempt(database, SVC, event_id, S.SUCCESS)
    report = load_events(database, [("again", {**data, "imported_at": "2030-01-01T00:00:00Z"})])
    assert report.unchanged == 1
    assert selected(submitter, database, "changed") == []


def test_all_url_and_limit(submitter, database):
    events = [event_data() for _ in range(5)]
    ids = add_events(database, *events)
    assert selected(submitter, database, "all") == ids
    assert selected(submitter, database, "all", limit=2) == ids[:2]
    assert selected(submitter, database, "url", url=events[3]["source_url"]) == [ids[3]]
    with pytest.raises(EventImporterError, match="needs a url"):
        selected(submitter, database, "url")


def test_streaming_crosses_chunk_boundaries(submitter, database, monkeypatch):
    monkeypatch.setattr("event_importer.framework.submitter.CHUNK_SIZE", 3)
    ids = add_events(database, *(event_data() for _ in range(8)))
    attempt(database, SVC, ids[4], S.SUCCESS)
    with database.session() as session:
        refs = list(submitter.select(session, "all"))
    assert [r.id for r in refs] == ids
    assert [r.submitted_before for r in refs] == [i == ids[4] for i in ids]


def test_unknown_selector_lists_the_valid_ones(submitter):
    with pytest.raises(UnknownSelectorError) as info:
        submitter.get_selector("bogus")
    assert "bogus" in str(info.value)
    for name in ("unsubmitted", "failed", "pending", "changed", "all", "url"):
        assert name in info.value.valid


@pytest.mark.parametrize("count", [1, 3, 4])
def test_shards_split_a_selection_so_every_event_is_in_exactly_one(submitter, database, count):
    ids = add_events(database, *(event_data() for _ in range(10)))
    attempt(database, SVC, ids[0], S.SUCCESS)
    whole = selected(submitter, database, "unsubmitted")
    shards = [selected(submitter, database, "unsubmitted", shard=(index, count)) for index in range(count)]
    assert sorted(i for shard in shards for i in shard) == whole
    assert all(shard for shard in shards), "10 consecutive ids leave no shard empty"
    # Stable: the same event falls in the same shard on every run.
    assert shards == [selected(submitter, database, "unsubmitted", shard=(index, count)) for index in range(count)]
