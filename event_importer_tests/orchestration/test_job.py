"""The TicketFairy submission job, executed in process on a temporary instance against a real loopback
HTTP server: rows in the ledger, dry runs without a key, metadata a person reads, asset checks, and no
secret anywhere Dagster keeps things."""

import threading
import time

import dagster as dg
import pytest
from sqlalchemy import select

from event_importer.db.models import EventCache, Submission
from event_importer.framework.discovery import discover
from event_importer.framework.lifecycle import DEFAULT_LIFECYCLE
from event_importer.integrations.ticketfairy.submitter import TicketFairySubmitter
from event_importer.orchestration import integration_defs
from event_importer_tests.factories import add_events, event_data
from event_importer_tests.orchestration.conftest import SERVICE, files_containing
from event_importer_tests.standin import Fault

JOB = f"{SERVICE}_submit_job"
FIRST_OP = f"{SERVICE}__selected_events"
RESULTS_OP = f"{SERVICE}__submission_results"


def execute(instance, raise_on_error=False, tags=None, **config):
    """Build the definitions now (secrets bind to what is set now) and run the job."""
    job = integration_defs(discover().get(SERVICE)).resolve_job_def(JOB)
    return job.execute_in_process(
        run_config={"ops": {FIRST_OP: {"config": config}}},
        instance=instance,
        raise_on_error=raise_on_error,
        tags=tags,
    )


def rows(database, run_id=None):
    with database.session() as session:
        statement = select(Submission).order_by(Submission.id)
        if run_id:
            statement = statement.where(Submission.run_id == run_id)
        return list(session.scalars(statement))


def metadata(result, op=RESULTS_OP):
    [materialization] = result.asset_materializations_for_node(op)
    return {key: value.value for key, value in materialization.metadata.items()}


def checks(result):
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_success_path_records_every_event_through_the_ledger(instance, event_db, ticketfairy_env):
    cache_db = event_db
    ids = add_events(cache_db, event_data(), event_data(), event_data())
    result = execute(instance)
    assert result.success
    assert len(ticketfairy_env.accepted) == 3
    recorded = rows(cache_db, result.run_id)
    assert [(r.event_cache_id, r.status, r.attempt) for r in recorded] == [(i, "success", 1) for i in ids]
    assert all(r.finished_at is not None and r.claimed_by for r in recorded)
    assert checks(result) == {"outcomes_recorded": True, "failure_rate": True, "no_duplicate_submissions": True}
    value = result.asset_value(dg.AssetKey([SERVICE, "submission_results"]))
    assert value.report.counts["submitted"] == 3 and value.selected_ids == tuple(ids)

    again = execute(instance)
    assert again.success and metadata(again)["selected"] == 0
    assert len(ticketfairy_env.accepted) == 3


def test_a_dry_run_needs_no_api_key_and_sends_nothing(instance, cache_db, ticketfairy_no_key):
    add_events(cache_db, event_data(), event_data())
    result = execute(instance, dry_run=True)
    assert result.success
    assert ticketfairy_no_key.requests_seen == 0
    assert [r.status for r in rows(cache_db, result.run_id)] == ["dry_run", "dry_run"]
    assert metadata(result)["dry_run"] == 2


def test_a_real_run_without_api_key_fails_before_selecting(instance, cache_db, ticketfairy_no_key):
    add_events(cache_db, event_data())
    result = execute(instance)
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert failure.step_key == FIRST_OP
    assert "TICKETFAIRY_API_KEY not set" in str(failure.step_failure_data.error.to_string())
    assert rows(cache_db) == []
    assert ticketfairy_no_key.requests_seen == 0


def test_materializations_carry_counts_selector_and_a_results_table(instance, cache_db, ticketfairy_no_key):
    add_events(cache_db, event_data(title="Rock | Roll\nNight"), event_data(date=None))
    result = execute(instance, dry_run=True, selector="unsubmitted")
    assert result.success
    selected = metadata(result, FIRST_OP)
    assert (selected["selected"], selected["selector"]) == (2, "unsubmitted")
    assert selected["mode"].startswith("dry run")
    assert "Rock | Roll Night" in [record.data["title"] for record in selected["events"].records]
    payloads = metadata(result, f"{SERVICE}__payloads")
    assert (payloads["transformed"], payloads["invalid"]) == (1, 1)
    [invalid] = payloads["invalid_events"].records
    assert "date is required" in invalid.data["error"]

    results = metadata(result)
    assert {k: results[k] for k in ("selected", "transformed", "invalid", "submitted", "failed", "dry_run")} == {
        "selected": 2,
        "transformed": 1,
        "invalid": 1,
        "submitted": 0,
        "failed": 1,
        "dry_run": 1,
    }
    assert results["selector"] == "unsubmitted"
    table = results["results"]
    # A table the UI renders as one, with typed columns.
    assert isinstance(table, dg.TableMetadataValue)
    columns = [(c.name, c.type) for c in table.schema.columns]
    assert columns[:4] == [("event", "int"), ("operation", "string"), ("outcome", "string"), ("http_status", "int")]
    first, second = (record.data for record in table.records)
    # The failure (with its reason) comes first; a newline in a cell is gone, a `|` stays as it is.
    assert first["outcome"] == "failed" and "date is required" in first["error"]
    assert second["title"] == "Rock | Roll Night" and second["outcome"] == "dry_run"
    # Each failed event is named by id and source URL, and the metadata says how to see its history.
    [failed] = [r for r in rows(cache_db, result.run_id) if r.error]
    with cache_db.session() as session:
        source_url = session.get(EventCache, failed.event_cache_id).source_url
    assert (first["event"], first["operation"], first["source_url"]) == (failed.event_cache_id, "create", source_url)
    assert results["history"].startswith(f"event-importer {SERVICE} history <event id or source_url>")


def test_a_run_where_most_events_fail_fails_its_check(instance, cache_db, ticketfairy_env):
    ticketfairy_env.add_fault(Fault.reject(422, "venue unknown"), times=None)
    add_events(cache_db, event_data(), event_data())
    result = execute(instance)
    assert not result.success
    assert checks(result) == {"outcomes_recorded": True, "failure_rate": False, "no_duplicate_submissions": True}
    assert [r.status for r in rows(cache_db, result.run_id)] == ["failed", "failed"]
    assert all("venue unknown" in r.error for r in rows(cache_db, result.run_id))
    # The results asset is still materialised with what happened.
    assert metadata(result)["failed"] == 2


def test_two_successful_submissions_of_the_same_data_fail_the_duplicate_check(
    instance, cache_db, ticketfairy_env, monkeypatch
):
    # A destination that takes updates by a plain resend (TicketFairy itself skips updates).
    monkeypatch.setattr(TicketFairySubmitter, "lifecycle", DEFAULT_LIFECYCLE)
    add_events(cache_db, event_data())
    assert execute(instance).success
    resent = execute(instance, selector="all")
    # Not blocking: the event is at the destination already, so the run itself succeeds.
    assert resent.success
    assert checks(resent)["no_duplicate_submissions"] is False

    monkeypatch.setenv("TICKETFAIRY_IDEMPOTENT_WRITES", "true")
    assert checks(execute(instance, selector="all"))["no_duplicate_submissions"] is True


def test_each_event_is_claimed_before_sending_and_its_outcome_recorded_as_it_arrives(
    instance, cache_db, ticketfairy_env
):
    fast, slow = event_data(), event_data()
    fast_id, slow_id = add_events(cache_db, fast, slow)
    ticketfairy_env.add_fault(Fault.hang(2.0), match=slow["source_url"])
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(result=execute(instance)))
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            states = {r.event_cache_id: (r.status, r.run_id) for r in rows(cache_db)}
            if states.get(fast_id, ("",))[0] == "success" and slow_id in states:
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.05)
        # While the slow request is in flight: its claim is pending with the run id, the fast one is done.
        status, run_id = states[slow_id]
        assert status == "pending" and run_id and run_id == states[fast_id][1]
    finally:
        runner.join(30)
    assert outcome["result"].success
    assert {r.event_cache_id: r.status for r in rows(cache_db)} == {fast_id: "success", slow_id: "success"}


def test_no_secret_in_run_config_event_log_metadata_files_or_output_after_a_failing_run(
    instance, dagster_home, isolated_settings, cache_db, ticketfairy_env, monkeypatch, capfd
):
    secret = "tf-wrong-key-5e6f7a8b9c0d1e2f"  # not the stand-in's key: every request gets a 401
    monkeypatch.setenv("TICKETFAIRY_API_KEY", secret)
    add_events(cache_db, event_data(), event_data())
    result = execute(instance)
    assert not result.success
    assert all("401" in r.error for r in rows(cache_db, result.run_id))

    run = instance.get_run_by_id(result.run_id)
    assert secret not in dg.serialize_value(run.run_config)
    assert secret not in dg.serialize_value(run.tags)
    assert secret not in dg.serialize_value(instance.get_job_snapshot(run.job_snapshot_id))
    records = instance.all_logs(result.run_id)
    assert records and all(secret not in dg.serialize_value(record) for record in records)
    for event in result.all_events:
        assert secret not in dg.serialize_value(event)
    assert files_containing(dagster_home, secret) == []
    assert files_containing(isolated_settings, secret) == []
    out, err = capfd.readouterr()
    assert secret not in out and secret not in err


def test_runs_keep_no_event_data_on_disk(instance, dagster_home, cache_db, ticketfairy_no_key):
    add_events(cache_db, event_data(title="Quiet Night"))
    assert execute(instance, dry_run=True).success
    assert not (dagster_home / "storage" / SERVICE).exists()
    assert files_containing(dagster_home / "storage", "Quiet Night") == []


def test_a_downstream_asset_alone_fails_with_a_clear_message(instance, cache_db, ticketfairy_no_key):
    job = integration_defs(discover().get(SERVICE)).resolve_job_def(JOB)
    result = job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey([SERVICE, "payloads"])], raise_on_error=False
    )
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "materialize the integration's whole group" in failure.step_failure_data.error.to_string()


def test_runs_launched_without_tags_are_tagged_as_ui_with_their_config(instance, cache_db, ticketfairy_no_key):
    result = execute(instance, dry_run=True, selector="failed")
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags["event-importer/integration"] == SERVICE
    assert tags["event-importer/trigger"] == "ui"
    assert tags["event-importer/selector"] == "failed"
    assert tags["event-importer/dry_run"] == "true"


def test_an_unknown_selector_fails_at_launch_naming_the_valid_ones(instance):
    with pytest.raises(dg.DagsterInvalidConfigError) as raised:
        execute(instance, selector="bogus")
    assert "'unsubmitted'" in str(raised.value) and "'upcoming'" in str(raised.value)
    assert instance.get_runs_count() == 0
