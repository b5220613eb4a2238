"""`event-importer <service> submit | status | retry-failed` end to end: each submission is a Dagster run on
the project's instance (DAGSTER_HOME defaulting under EVENT_IMPORTER_HOME), tagged with who started it,
and the exit status tells success (0), failed events (1) and usage or configuration errors (2)."""

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from event_importer.cli.integration import integration_group
from event_importer.defs import integration_defs
from event_importer.defs.config import TAG_OWNER
from event_importer.errors import RunInProgressError
from event_importer.integrations.discovery import discover
from event_importer.runs import submit_through_dagster
from event_importer.settings import get_settings
from event_importer_tests.conftest import TEST_API_KEY
from event_importer_tests.factories import add_events, event_data
from event_importer_tests.standin import Fault

SERVICE = "ticketfairy"


@pytest.fixture(autouse=True)
def default_dagster_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """DAGSTER_HOME unset, as for a new user; restored after the test although the code sets it directly."""
    monkeypatch.setenv("DAGSTER_HOME", "unset-by-the-fixture")
    monkeypatch.delenv("DAGSTER_HOME")


@pytest.fixture
def cache_db():
    from event_importer.db.engine import get_database

    return get_database(get_settings().resolved_database_url)


@pytest.fixture
def configured(stand_in, monkeypatch):
    monkeypatch.setenv("TICKETFAIRY_API_URL", stand_in.url)
    monkeypatch.setenv("TICKETFAIRY_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("TICKETFAIRY_MAX_ATTEMPTS", "1")
    return stand_in


def invoke(*args):
    return CliRunner().invoke(integration_group(discover().get(SERVICE)), list(args), catch_exceptions=False)


def recorded_run(run_id):
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        return run


def test_submit_succeeds_and_the_run_is_in_the_instance_history(isolated_settings, cache_db, configured):
    add_events(cache_db, event_data(), event_data(), event_data())
    result = invoke("submit", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["success"] is True and report["error"] is None
    assert report["counts"] == {
        "selected": 3, "transformed": 3, "invalid": 0, "submitted": 3, "failed": 0, "dry_run": 0, "skipped": 0,
    }
    assert [r["outcome"] for r in report["results"]] == ["success"] * 3
    assert "selected 3 events" in result.stderr and "[3/3] recorded: 3 success" in result.stderr
    # Progress counts; the events themselves are listed once, in the results.
    assert "Night" not in result.stderr
    assert len(configured.accepted) == 3

    home = isolated_settings / "dagster"
    assert os.environ["DAGSTER_HOME"] == str(home)
    assert "tag_concurrency_limits" in (home / "dagster.yaml").read_text()
    run = recorded_run(report["run_id"])
    assert run.job_name == f"{SERVICE}_submit_job"
    assert run.status is dg.DagsterRunStatus.SUCCESS
    assert run.tags["event-importer/integration"] == SERVICE
    assert run.tags["event-importer/trigger"] == "cli"
    assert run.tags["event-importer/selector"] == "unsubmitted"
    assert run.tags["event-importer/dry_run"] == "false"


def test_a_failed_event_exits_1_and_retry_failed_sends_it_again(cache_db, configured):
    events = [event_data(), event_data(), event_data()]
    add_events(cache_db, *events)
    configured.add_fault(Fault.reject(422, "start date is in the past"), match=events[1]["source_url"], times=None)

    result = invoke("submit")
    assert result.exit_code == 1, result.output
    assert "failed" in result.stdout and "start date is in the past" in result.stdout
    assert "3 selected" in result.stdout and "1 failed" in result.stdout

    status = json.loads(invoke("status", "--json").stdout)
    assert (status["events"], status["success"], status["failed"], status["unsubmitted"]) == (3, 2, 1, 0)

    configured.reset()
    retried = invoke("retry-failed", "--json")
    assert retried.exit_code == 0, retried.output
    report = json.loads(retried.stdout)
    assert report["selector"] == "failed" and report["counts"]["submitted"] == 1
    assert recorded_run(report["run_id"]).tags["event-importer/selector"] == "failed"
    assert json.loads(invoke("status", "--json").stdout)["success"] == 3

    table = invoke("status")
    assert table.exit_code == 0 and "success" in table.stdout


def test_a_dry_run_without_api_key_exits_0(cache_db, stand_in, monkeypatch):
    monkeypatch.setenv("TICKETFAIRY_API_URL", stand_in.url)
    add_events(cache_db, event_data())
    result = invoke("submit", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dry_run"] is True and report["counts"]["dry_run"] == 1
    assert stand_in.requests_seen == 0
    assert json.loads(invoke("status", "--json").stdout)["dry_run_only"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["submit", "--selector", "bogus"],
            "valid selectors: all, changed, exhausted, failed, pending, removed, retry, unsubmitted, upcoming",
        ),
        (["submit", "--selector", "url"], "needs a url"),
        (["submit", "--limit", "0"], "0 is not in the range"),
    ],
)
def test_usage_errors_exit_2_and_record_no_run(args, message, cache_db):
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
    if "DAGSTER_HOME" in os.environ and Path(os.environ["DAGSTER_HOME"]).exists():
        with dg.DagsterInstance.get() as instance:
            assert instance.get_runs_count() == 0


def test_a_missing_api_key_exits_2_with_a_clear_error(cache_db, stand_in, monkeypatch):
    monkeypatch.setenv("TICKETFAIRY_API_URL", stand_in.url)
    add_events(cache_db, event_data())
    result = invoke("submit", "--json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["success"] is False
    assert report["error"] == (
        "ticketfairy: TICKETFAIRY_API_KEY not set; set it (environment or .env) or make this a dry run"
    )
    # The failed run is in the history too, so the UI shows why nothing was sent.
    assert recorded_run(report["run_id"]).status is dg.DagsterRunStatus.FAILURE
    assert stand_in.requests_seen == 0


def test_a_second_run_is_refused_while_one_is_active_unless_its_process_is_gone(cache_db, configured):
    from event_importer.instance import prepare_environment

    prepare_environment()
    job = integration_defs(discover().get(SERVICE)).resolve_job_def(f"{SERVICE}_submit_job")
    with dg.DagsterInstance.get() as instance:
        live = instance.create_run_for_job(job, tags={TAG_OWNER: f"{socket.gethostname()}:{os.getpid()}"})
    result = invoke("submit")
    assert result.exit_code == 2
    assert f"already has an active run {live.run_id}" in result.stderr

    with pytest.raises(RunInProgressError):
        submit_through_dagster(SERVICE, dry_run=True, trigger="api")

    with dg.DagsterInstance.get() as instance:
        instance.report_run_canceled(instance.get_run_by_id(live.run_id))
        # A run whose process was killed: its owner pid no longer exists.
        dead = instance.create_run_for_job(job, tags={TAG_OWNER: f"{socket.gethostname()}:999999999"})
    summary = submit_through_dagster(SERVICE, dry_run=True, trigger="api")
    assert summary.success
    assert recorded_run(dead.run_id).status is dg.DagsterRunStatus.FAILURE
    assert recorded_run(summary.run_id).tags["event-importer/trigger"] == "api"


def test_runs_of_different_jobs_from_several_threads_take_turns(cache_db, configured):
    add_events(cache_db, event_data(), event_data())
    summaries, errors = [], []

    def run(service: str) -> None:
        try:
            summaries.append(submit_through_dagster(service, dry_run=True, trigger="api"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(service,)) for service in (SERVICE, "webhook")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert [s.success for s in summaries] == [True, True]
    assert {s.service for s in summaries} == {SERVICE, "webhook"}


def test_a_second_run_of_the_same_job_in_this_process_is_refused_not_queued(cache_db, configured, monkeypatch):
    add_events(cache_db, event_data(), event_data())

    started, release = threading.Event(), threading.Event()
    real_execute = dg.JobDefinition.execute_in_process

    def slow_execute(job, *args, **kwargs):
        started.set()
        release.wait(30)
        return real_execute(job, *args, **kwargs)

    monkeypatch.setattr(dg.JobDefinition, "execute_in_process", slow_execute)
    first: list[object] = []
    thread = threading.Thread(target=lambda: first.append(submit_through_dagster(SERVICE, dry_run=True)))
    thread.start()
    try:
        assert started.wait(30)
        with pytest.raises(RunInProgressError, match="already has an active run in this process"):
            submit_through_dagster(SERVICE, dry_run=True, trigger="api")
    finally:
        release.set()
        thread.join(60)
    assert first and first[0].success
    # The job is free again once the first run ends.
    assert submit_through_dagster(SERVICE, dry_run=True).success


def test_the_installed_command_loads_dotenv_and_never_prints_the_key(tmp_path, cache_db, stand_in):
    """The real entry point in a fresh process: `.env` in the working directory holds a wrong key."""
    add_events(cache_db, event_data(), event_data())
    secret = "tf-dotenv-key-0a1b2c3d4e5f6789"
    (tmp_path / ".env").write_text(f"TICKETFAIRY_API_KEY={secret}\nTICKETFAIRY_API_URL={stand_in.url}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETFAIRY_", "DAGSTER_HOME"))}
    env["TICKETFAIRY_MAX_ATTEMPTS"] = "1"
    command = [str(Path(sys.executable).parent / "event-importer"), SERVICE, "submit", "--json"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["counts"]["failed"] == 2 and all("401" in r["error"] for r in report["results"])
    assert secret not in done.stdout and secret not in done.stderr
    os.environ["DAGSTER_HOME"] = str(Path(env["EVENT_IMPORTER_HOME"]) / "dagster")
    run = recorded_run(report["run_id"])
    assert run.tags["event-importer/trigger"] == "cli"
    assert secret not in dg.serialize_value(run.run_config)
