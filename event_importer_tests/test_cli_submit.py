"""`event-importer <service> submit | status | retry-failed` end to end: each submission is a Dagster run on
the project's instance (DAGSTER_HOME defaulting under EVENT_IMPORTER_HOME), tagged with who started it,
and the exit status tells success (0), failed events (1) and usage or configuration errors (2)."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from event_importer.cli.integration import integration_group
from event_importer.framework.discovery import discover
from event_importer.orchestration import integration_defs
from event_importer.orchestration.config import (
    TAG_INTEGRATION,
    TAG_LANE,
    TAG_OWNER,
    TAG_SHARD,
    TAG_SUBMISSION,
    TAG_TRIGGER,
)
from event_importer.orchestration.config import lane as lane_of
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
    # Executed by the instance's run launcher (through the code server), in a process other than the CLI's.
    assert run.remote_job_origin is not None and run.remote_job_origin.location_name == "event_importer"
    assert ".dagster/grpc_info" in run.tags
    host, _, pid = run.tags[TAG_OWNER].rpartition(":")
    assert host == socket.gethostname() and int(pid) != os.getpid()


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
        (["submit", "--limit", "9223372036854775808"], "limit: Input should be less than or equal to 1000000"),
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

    # Without --json: the reason once, not the engine's lines about the steps it then skipped.
    result = invoke("submit")
    assert result.exit_code == 2
    assert "error: ticketfairy: TICKETFAIRY_API_KEY not set" in result.output
    assert "Not executing" not in result.output
    assert stand_in.requests_seen == 0


def runs_tagged(**tags: str) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.get() as instance:
        return list(instance.get_runs(filters=dg.RunsFilter(tags=tags)))


def test_a_run_waits_in_the_queue_while_its_lane_is_held_and_a_dead_holder_is_failed(cache_db, configured):
    """The queue's limit applies to CLI runs: one run per integration and shard. A holder whose worker
    process is gone (SIGKILLed) is marked failed instead of blocking the lane for ever."""
    from event_importer.instance import prepare_environment

    add_events(cache_db, event_data(), event_data())
    prepare_environment()
    job = integration_defs(discover().get(SERVICE)).resolve_job_def(f"{SERVICE}_submit_job")
    lane = {TAG_INTEGRATION: SERVICE, TAG_LANE: lane_of(SERVICE)}
    with dg.DagsterInstance.get() as instance:
        holder = instance.create_run_for_job(
            job, status=dg.DagsterRunStatus.STARTED, tags={**lane, TAG_OWNER: f"{socket.gethostname()}:{os.getpid()}"}
        )
    done: list[object] = []
    waiting = threading.Thread(target=lambda: done.append(submit_through_dagster(SERVICE, trigger="api")))
    waiting.start()
    try:
        deadline = time.monotonic() + 120
        while not runs_tagged(**{TAG_TRIGGER: "api"}):
            assert time.monotonic() < deadline and waiting.is_alive()
            time.sleep(0.2)
        time.sleep(3)
        (queued,) = runs_tagged(**{TAG_TRIGGER: "api"})
        assert queued.status is dg.DagsterRunStatus.QUEUED and configured.requests_seen == 0
    finally:
        with dg.DagsterInstance.get() as instance:
            instance.report_run_canceled(instance.get_run_by_id(holder.run_id))
        waiting.join(120)
    assert done and done[0].success and done[0].counts["submitted"] == 2
    assert len(configured.accepted) == 2

    with dg.DagsterInstance.get() as instance:
        # A holder whose process was killed: its owner pid no longer exists.
        dead = instance.create_run_for_job(
            job, status=dg.DagsterRunStatus.STARTED, tags={**lane, TAG_OWNER: f"{socket.gethostname()}:999999999"}
        )
    summary = submit_through_dagster(SERVICE, dry_run=True, selector="all")
    # TicketFairy has both already and cannot update a draft: each is skipped, saying so.
    assert summary.success and summary.counts["skipped"] == 2
    assert recorded_run(dead.run_id).status is dg.DagsterRunStatus.FAILURE


def test_runs_of_different_integrations_from_several_threads_all_succeed(cache_db, configured):
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
        thread.join(180)
    assert not errors
    assert [s.success for s in summaries] == [True, True]
    assert {s.service for s in summaries} == {SERVICE, "webhook"}


def test_submit_with_shards_sends_every_event_once_from_runs_side_by_side(cache_db, configured, monkeypatch):
    """`--shards 4`: four runs of one submission, each a quarter of the events (by id), in one run
    history; the queue lets them run together (each holds its own lane)."""
    events = [event_data() for _ in range(20)]
    add_events(cache_db, *events)
    # One request at a time, each slow: every shard run lasts seconds, long enough to overlap others.
    monkeypatch.setenv("EVENT_IMPORTER_MAX_CONCURRENCY", "1")
    configured.latency = 0.6
    result = invoke("submit", "--shards", "4", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["counts"]["selected"] == 20 and report["counts"]["submitted"] == 20
    assert sorted(r["source_url"] for r in report["results"]) == sorted(e["source_url"] for e in events)
    accepted = [a["body"]["data"]["attributes"]["url"] for a in configured.accepted]
    assert sorted(accepted) == sorted(e["source_url"] for e in events), "every event sent exactly once"

    assert len(report["run_ids"]) == 4 and report["run_id"] == report["run_ids"][0]
    first = recorded_run(report["run_id"])
    shard_runs = runs_tagged(**{TAG_SUBMISSION: first.tags[TAG_SUBMISSION]})
    assert sorted(r.run_id for r in shard_runs) == sorted(report["run_ids"])
    assert sorted(r.tags[TAG_SHARD] for r in shard_runs) == ["0/4", "1/4", "2/4", "3/4"]
    assert all(r.status is dg.DagsterRunStatus.SUCCESS and r.tags[TAG_TRIGGER] == "cli" for r in shard_runs)
    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records(filters=dg.RunsFilter(run_ids=report["run_ids"]))
    spans = sorted((r.start_time, r.end_time) for r in records)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)), (
        f"no two shard runs overlapped: {spans}"
    )
    assert "shard 4/4: " in result.stderr


def test_two_cli_submits_started_at_once_on_a_fresh_data_folder_both_succeed(tmp_path, cache_db, configured):
    """Both create the Dagster instance at the same moment (one waits for the other under a lock); the
    second run waits for the first in the queue, then finds nothing left to send."""
    events = [event_data() for _ in range(6)]
    add_events(cache_db, *events)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_HOME")}
    assert not (Path(env["EVENT_IMPORTER_HOME"]) / "dagster").exists()
    command = [str(Path(sys.executable).parent / "event-importer"), SERVICE, "submit", "--json"]
    processes = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    reports = [json.loads(out) for out, _ in outputs]
    assert sorted(r["counts"]["submitted"] for r in reports) == [0, 6]
    accepted = [a["body"]["data"]["attributes"]["url"] for a in configured.accepted]
    assert sorted(accepted) == sorted(e["source_url"] for e in events), "no event sent twice"


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
