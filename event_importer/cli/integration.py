"""The commands every integration gets (`submit`, `status`, `retry-failed`, `history`) and `event-importer ui`.

`integration_group(integration)` builds a fresh click group for one integration. An integration's
own `cli.py` can start from it and add commands:

    from event_importer.cli.integration import integration_group

    cli = integration_group("myservice")

    @cli.command()
    def ping() -> None: ...

Every submission goes through `event_importer.runs.submit_through_dagster`: Dagster runs on the
project's instance (one per shard), queued and launched like the UI's and listed in the UI with the
tag `event-importer/trigger=cli`; the command follows them and prints their progress and results.

Exit status of `submit` and `retry-failed`: 0 when every selected event succeeded or was a dry run,
1 when any failed (or the run failed), 2 for usage or configuration errors (nothing was sent).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from event_importer.cli.output import USAGE_ERROR, print_json, table
from event_importer.errors import EventImporterError
from event_importer.framework.discovery import Integration, discover
from event_importer.framework.records import SubmissionResult, failures_first
from event_importer.settings import MAX_SHARDS

EXIT_OK = 0
EXIT_FAILED = 1
# Shown in the results table; `--json` has them all.
TABLE_ROWS = 200
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# How often `ui` checks that its services still run.
SERVICE_POLL_S = 0.5


def integration_group(integration: Integration | str) -> click.Group:
    """A click group named after the integration with `submit`, `status` and `retry-failed`."""
    if isinstance(integration, str):
        integration = discover().get(integration)
    name, description = integration.name, integration.description
    group = click.Group(name=name, help=description or f"Submit events to {name}.")

    @group.command("submit")
    @click.option(
        "--selector",
        default="unsubmitted",
        show_default=True,
        help="Which events: unsubmitted, failed, pending, changed, removed, all, url, or one of the integration's own.",
    )
    @click.option("--url", default=None, help="Source URL of one event (for --selector url).")
    @click.option("--dry-run", is_flag=True, help="Select, transform and record, but send nothing.")
    @click.option("--limit", type=click.IntRange(min=1), default=None, help="Submit at most N events (per shard).")
    @click.option(
        "--shards",
        type=click.IntRange(min=1, max=MAX_SHARDS),
        default=1,
        show_default=True,
        help="Split the events into N runs (by event id) that run side by side.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the run id, counts and outcomes as JSON.")
    def submit(
        selector: str, url: str | None, dry_run: bool, limit: int | None, shards: int, as_json: bool
    ) -> None:
        """Submit events through the integration's Dagster job and print the results."""
        run_submission(
            name, selector=selector, url=url, dry_run=dry_run, limit=limit, shards=shards, as_json=as_json
        )

    @group.command("retry-failed")
    @click.option("--dry-run", is_flag=True, help="Select, transform and record, but send nothing.")
    @click.option("--json", "as_json", is_flag=True, help="Print the run id, counts and outcomes as JSON.")
    def retry_failed(dry_run: bool, as_json: bool) -> None:
        """Submit again the events whose latest attempt failed."""
        run_submission(name, selector="failed", url=None, dry_run=dry_run, limit=None, as_json=as_json)

    @group.command("status")
    @click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
    def status(as_json: bool) -> None:
        """Count the events by their latest submission state."""
        from event_importer.states import integration_status

        try:
            counts = integration_status(integration)
        except EventImporterError as exc:
            _usage_error(str(exc), as_json)
        if as_json:
            print_json(counts)
            return
        rows = [[key.replace("_", " "), value] for key, value in counts.items() if key != "service"]
        click.echo(table(["state", "events"], rows))

    @group.command("history")
    @click.argument("event")
    @click.option("--json", "as_json", is_flag=True, help="Print every attempt, with payload and answer, as JSON.")
    def history(event: str, as_json: bool) -> None:
        """Every attempt to send one event (its id or source URL), dry runs included, oldest first."""
        from event_importer.db.engine import configured_database
        from event_importer.history import integration_history

        try:
            found = integration_history(configured_database(), integration, event)
        except EventImporterError as exc:
            _usage_error(str(exc), as_json)
        if as_json:
            print_json(found)
            return
        print_history(found)

    return group


def print_history(history: dict[str, Any]) -> None:
    """One block per attempt: what happened, then the payload sent and the answer, as compact JSON."""
    event = history["event"]
    state = history["state"] + (", changed since its latest settled attempt" if history.get("changed") else "")
    state += ", removed from its source: its removal is due" if history.get("removed") else ""
    count = len(history["attempts"])
    click.echo(f"event {event['id']} {event['title']!r} ({event['source_url']})")
    click.echo(f"{history['service']}: {state}; {count} attempt{'' if count == 1 else 's'} (dry runs included)")
    for a in history["attempts"]:
        label = "dry run" if a["status"] == "dry_run" else f"attempt {a['attempt']} {a['status']}"
        label += f" ({a['operation']})"
        http = f" HTTP {a['http_status']}" if a["http_status"] is not None else ""
        run = f"run {a['run_id']}" + (f" ({a['trigger']})" if a["trigger"] else "") if a["run_id"] else "no run"
        click.echo(f"\n{a['created_at']}  {label}{http}  {run}")
        for key in ("error", "payload", "answer"):
            if a[key] is not None:
                value = a[key] if isinstance(a[key], str) else json.dumps(a[key], ensure_ascii=False)
                click.echo(f"  {key}: {value}")


def run_submission(
    service: str,
    *,
    selector: str,
    url: str | None,
    dry_run: bool,
    limit: int | None,
    as_json: bool,
    shards: int = 1,
) -> NoReturn:
    """Run one submission, print its results and exit with the status described in the module docstring."""
    from event_importer.runs import submit_through_dagster

    try:
        summary = submit_through_dagster(
            service,
            selector=selector,
            url=url,
            dry_run=dry_run,
            limit=limit,
            shards=shards,
            trigger="cli",
            on_progress=lambda line: click.echo(line, err=True),
        )
    except EventImporterError as exc:
        _usage_error(str(exc), as_json)
    if as_json:
        print_json(
            {
                "run_id": summary.run_id,
                "run_ids": summary.run_ids,
                "service": summary.service,
                "selector": summary.selector,
                "dry_run": summary.dry_run,
                "success": summary.success,
                "error": summary.error,
                "counts": summary.counts,
                "results": [r.to_json() for r in summary.results],
            }
        )
    elif summary.configuration_error:
        click.echo(f"error: {summary.error} (run {summary.run_id}; nothing was sent)", err=True)
    else:
        print_results(summary.results)
        counts = ", ".join(f"{value} {key.replace('_', ' ')}" for key, value in summary.counts.items())
        runs = ", ".join(summary.run_ids)
        click.echo(f"{'dry run' if summary.dry_run else 'run'} {runs}: {counts}")
        if summary.error:
            click.echo(f"error: {summary.error}", err=True)
        click.echo("see it in the Dagster UI: event-importer ui", err=True)
        click.echo(f"each event's attempts and payloads: event-importer {service} history <event id>", err=True)
    if summary.configuration_error:
        sys.exit(USAGE_ERROR)
    sys.exit(EXIT_OK if summary.ok else EXIT_FAILED)


def print_results(results: list[SubmissionResult]) -> None:
    if not results:
        click.echo("no events selected")
        return
    shown = failures_first(results, TABLE_ROWS)
    rows = [
        [r.event_id, r.operation.value, r.outcome.value, r.http_status or "", r.title, r.error or ""] for r in shown
    ]
    click.echo(table(["event", "operation", "outcome", "http", "title", "error"], rows))
    if len(results) > TABLE_ROWS:
        click.echo(f"... {len(results) - TABLE_ROWS} more (use --json for all)")


def _usage_error(message: str, as_json: bool) -> NoReturn:
    if as_json:
        print_json({"error": message})
    click.echo(f"error: {message}", err=True)
    sys.exit(USAGE_ERROR)


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; loopback by default.")
@click.option("--port", default=3000, show_default=True, type=click.IntRange(1, 65535))
def ui_command(host: str, port: int) -> None:
    """Start the Dagster UI and daemon (schedules, sensors, queued runs) on the project's instance.

    The two services `dagster dev` would start, started directly: `dagster dev` itself is
    superseded (it warns so on every start) and meant for local development only.
    """
    from event_importer.instance import prepare_environment
    from event_importer.settings import get_settings

    home = prepare_environment()
    # The code server may run in another folder (the workspace's): give it the same absolute data folder.
    os.environ["EVENT_IMPORTER_HOME"] = str(get_settings().home.resolve())
    location = code_location_args()
    commands = [
        [*dagster_tool("dagster-webserver", "dagster_webserver"), *location, "-h", host, "-p", str(port)],
        [*dagster_tool("dagster-daemon", "dagster._daemon"), "run", *location],
    ]
    click.echo(f"Dagster UI: http://{host}:{port} (instance {home}); Ctrl-C stops it", err=True)
    sys.exit(run_services(commands))


def dagster_tool(script: str, module: str) -> list[str]:
    """A Dagster command of this interpreter's environment: its script, else `python -m <module>`."""
    found = shutil.which(script, path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", module]


def code_location_args() -> list[str]:
    """`-w workspace.yaml` from a source checkout, else the module (an installed package has no workspace file).

    The same code location the CLI and the API create their runs from (`run_queue.load_target`).
    """
    from event_importer.run_queue import DEFINITIONS_MODULE, WORKSPACE_FILE

    if WORKSPACE_FILE.is_file():
        return ["-w", str(WORKSPACE_FILE)]
    return ["-m", DEFINITIONS_MODULE, "-a", "defs"]


def run_services(commands: list[list[str]]) -> int:
    """Run the commands side by side until one exits or this process is told to stop; then stop them all.

    SIGTERM is passed on to each; Ctrl-C reaches them through the terminal. Dagster maps SIGTERM to
    its SIGINT handler, so the children must not inherit an ignored SIGINT (as a process started
    with `&` from a script would): it is reset to the default before exec.

    Returns:
        0 when they were stopped and stopped cleanly, else the exit status of the first that failed.
    """
    processes = [
        subprocess.Popen(command, preexec_fn=_default_sigint)  # noqa: PLW1509 - needed, see docstring
        for command in commands
    ]

    def stop_all(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop_all)
    try:
        try:
            while all(process.poll() is None for process in processes):
                time.sleep(SERVICE_POLL_S)
        except KeyboardInterrupt:
            pass  # the children got the same SIGINT from the terminal and are shutting down
        stop_all()
        codes = [_wait(process) for process in processes]
    finally:
        signal.signal(signal.SIGTERM, previous)
    # A service stopped by a signal (ours or the terminal's) reports it; that is a clean stop.
    return next((code for code in codes if code not in (0, -signal.SIGTERM, -signal.SIGINT)), 0)


def _wait(process: subprocess.Popen[bytes]) -> int:
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
