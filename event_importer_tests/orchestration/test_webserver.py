"""The UI path end to end: `event-importer ui` (the Dagster webserver and daemon on workspace.yaml)
serves the code location without a warning, a run launched through its GraphQL API goes through the
queue and the daemon and succeeds, and both services stop cleanly on SIGTERM."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from event_importer.db.models import Submission
from event_importer_tests.factories import add_events, event_data
from event_importer_tests.orchestration.conftest import SERVICE

pytestmark = pytest.mark.slow

STARTUP_TIMEOUT_S = 90
RUN_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, timeout, what, process):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - not up yet; try again until the deadline
            value = None
        if value:
            return value
        assert process.poll() is None, f"event-importer ui exited with {process.returncode} while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


RESULTS_QUERY = """
query Results($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(limit: 1) {
        metadataEntries {
          label
          __typename
          ... on TableMetadataEntry { table { records schema { columns { name type } } } }
        }
      }
    }
  }
}
"""


def results_entry(port: int) -> dict:
    """The `results` metadata entry of the latest `submission_results` materialization, as the UI reads it."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": RESULTS_QUERY, "variables": {"path": [SERVICE, "submission_results"]}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    [materialization] = answer["data"]["assetOrError"]["assetMaterializations"]
    [entry] = [e for e in materialization["metadataEntries"] if e["label"] == "results"]
    return entry


def _default_sigint() -> None:
    # Dagster maps SIGTERM to its SIGINT handler: the child must not inherit an ignored SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_runs_from_the_cli_the_api_and_the_ui_share_one_run_history(tmp_path, dagster_home, cache_db):
    from click.testing import CliRunner
    from dagster_graphql import DagsterGraphQLClient
    from fastapi.testclient import TestClient

    from event_importer.api import create_app
    from event_importer.cli.main import build_cli

    [event_id] = add_events(cache_db, event_data())
    cli_run = CliRunner().invoke(build_cli(), [SERVICE, "submit", "--dry-run", "--json"], catch_exceptions=False)
    assert cli_run.exit_code == 0, cli_run.output
    cli_run_id = json.loads(cli_run.stdout)["run_id"]
    with TestClient(create_app()) as api:
        answer = api.post(f"/integrations/{SERVICE}/submit?wait=true", json={"dry_run": True})
    assert answer.status_code == 200, answer.text
    api_run_id = answer.json()["run_id"]

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFAIRY_")}
    log_path = tmp_path / "ui.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "event-importer"), "ui", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_default_sigint,  # noqa: PLW1509 - set before any thread of ours touches it
        # Its own process group, so the children can be found and stopped if it does not stop them.
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).status == 200,
            STARTUP_TIMEOUT_S, "the webserver", process,
        )
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        run_config = {"ops": {f"{SERVICE}__selected_events": {"config": {"dry_run": True}}}}
        # The code location may still be loading when the webserver answers.
        run_id = wait_for(
            lambda: client.submit_job_execution(f"{SERVICE}_submit_job", run_config=run_config),
            STARTUP_TIMEOUT_S, "the code location", process,
        )
        status = wait_for(
            lambda: (s := client.get_run_status(run_id)).value in ("SUCCESS", "FAILURE", "CANCELED") and s,
            RUN_TIMEOUT_S, "the run to finish", process,
        )
        assert status.value == "SUCCESS", log_path.read_text()[-3000:]
        with cache_db.session() as session:
            rows = session.execute(
                select(Submission.event_cache_id, Submission.status, Submission.run_id).order_by(Submission.id)
            ).all()
        assert rows == [(event_id, "dry_run", r) for r in (cli_run_id, api_run_id, run_id)]
        # The UI gets the run's results as a table with typed columns, not as text.
        results = results_entry(port)
        assert results["__typename"] == "TableMetadataEntry", results
        columns = [(c["name"], c["type"]) for c in results["table"]["schema"]["columns"]]
        assert columns[:3] == [("event", "int"), ("operation", "string"), ("outcome", "string")]
        [record] = [json.loads(r) for r in results["table"]["records"]]
        assert (record["event"], record["outcome"]) == (event_id, "dry_run")

        import dagster as dg

        from event_importer.run_queue import queue_daemon_live

        # With the daemon live the CLI only queues its run: the daemon launches it.
        with dg.DagsterInstance.get() as instance:
            assert queue_daemon_live(instance)
        queued = subprocess.run(
            [str(Path(sys.executable).parent / "event-importer"), SERVICE, "submit", "--dry-run", "--selector", "all",
             "--json"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
        )
        assert queued.returncode == 0, queued.stderr
        daemon_run_id = json.loads(queued.stdout)["run_id"]

        with dg.DagsterInstance.get() as instance:
            tags = instance.get_run_by_id(run_id).tags
            history = {r.run_id: r.tags["event-importer/trigger"] for r in instance.get_runs()}
        assert tags["event-importer/trigger"] == "ui"
        assert tags["event-importer/integration"] == SERVICE
        assert tags["event-importer/dry_run"] == "true"
        assert history == {cli_run_id: "cli", api_run_id: "api", run_id: "ui", daemon_run_id: "cli"}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            returncode = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail("event-importer ui did not stop within 30 s of SIGTERM")
        log.close()
    output = log_path.read_text()
    assert returncode == 0, output[-3000:]
    # No SupersessionWarning, DeprecationWarning or any other on the README's command.
    assert "warning" not in output.lower(), output
