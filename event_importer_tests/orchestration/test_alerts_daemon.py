"""The alerts sensor under the real Dagster daemon: it sees a run the CLI executed in its own process
and a run the daemon itself launched from the queue, and alerts once on failure, once on recovery."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from event_importer_tests.conftest import TEST_API_KEY, reset_process_state
from event_importer_tests.factories import add_events, event_data
from event_importer_tests.orchestration.conftest import SERVICE
from event_importer_tests.standin import Fault, StandInServer

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SENSOR = f"{SERVICE}_alerts_sensor"
TIMEOUT_S = 120


def wait_for(predicate, what, process, log):
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():
        assert process.poll() is None, f"the daemon exited while waiting for {what}: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {log.read_text()[-3000:]}"
        time.sleep(0.5)


def ticks(instance):
    states = [s for s in instance.all_instigator_state() if s.instigator_name == SENSOR]
    return [t for s in states for t in instance.get_ticks(s.instigator_origin_id, s.selector_id)]


def test_the_daemon_alerts_on_cli_and_launched_runs(tmp_path, dagster_home, cache_db, ticketfairy_env, monkeypatch):
    from event_importer.cli.main import build_cli

    with StandInServer() as receiver:
        monkeypatch.setenv("EVENT_IMPORTER_ALERT_WEBHOOK_URL", f"{receiver.url}/hooks/daemon")
        monkeypatch.setenv("EVENT_IMPORTER_ALERT_INTERVAL", "1")
        reset_process_state()
        add_events(cache_db, event_data(title="Daemon gig"))
        ticketfairy_env.add_fault(Fault.status(503), times=None)
        workspace = ["-w", str(PROJECT_ROOT / "workspace.yaml")]
        env = dict(os.environ)
        started = subprocess.run(
            [str(BIN / "dagster"), "sensor", "start", *workspace, SENSOR],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert started.returncode == 0, started.stderr[-2000:]
        log = tmp_path / "daemon.log"
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", *workspace],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            with dg.DagsterInstance.get() as instance:
                wait_for(lambda: ticks(instance), "the sensor's first tick", daemon, log)

                # A run the CLI executes in its own process, failing (the destination answers 503).
                failed = CliRunner().invoke(build_cli(), [SERVICE, "submit", "--json"], catch_exceptions=False)
                assert failed.exit_code == 1, failed.output
                failed_run = json.loads(failed.stdout)["run_id"]
                wait_for(lambda: len(receiver.accepted) == 1, "the failure alert", daemon, log)
                assert failed_run in json.dumps(receiver.accepted[0]["body"])

                # A run launched from the queue by the daemon, healthy now.
                ticketfairy_env.reset()
                config = {"ops": {f"{SERVICE}__selected_events": {"config": {"selector": "failed"}}}}
                launched = subprocess.run(
                    [
                        str(BIN / "dagster"),
                        "job",
                        "launch",
                        *workspace,
                        "-j",
                        f"{SERVICE}_submit_job",
                        "--config-json",
                        json.dumps(config),
                    ],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=TIMEOUT_S,
                )
                assert launched.returncode == 0, launched.stderr[-2000:]
                wait_for(lambda: len(receiver.accepted) == 2, "the recovery notice", daemon, log)
                [healthy] = [r for r in instance.get_runs() if r.run_id != failed_run]
                assert healthy.status is dg.DagsterRunStatus.SUCCESS
                recovery = json.dumps(receiver.accepted[1]["body"])
                assert "recovered" in recovery and healthy.run_id in recovery
                assert len(ticketfairy_env.accepted) == 1
                everything = json.dumps([r["body"] for r in receiver.accepted]) + log.read_text()
                assert TEST_API_KEY not in everything
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait()
