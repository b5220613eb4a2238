"""The root `event-importer` command: events, integrations, one group per integration, ui and api."""

import json
import sys
from pathlib import Path
from typing import Any

import click

from event_importer.cli.output import fail, print_json, table
from event_importer.db.engine import configured_database
from event_importer.environment import conflict_warning, load_env_file
from event_importer.errors import ConfigurationError, EventImporterError
from event_importer.events.loader import LoadReport, load_files, load_samples
from event_importer.framework.discovery import discover


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="event-importer")
def cli() -> None:
    """Publish imported events to external services, orchestrated by Dagster."""


@cli.group()
def events() -> None:
    """Load and inspect the event cache."""


@events.command("load")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sample", is_flag=True, help="Load the bundled sample events.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--mirror",
    is_flag=True,
    help="The file is the whole catalogue of one source: its events missing from the file are marked removed.",
)
@click.option("--source", default=None, help="With --mirror: the source's name (default: the URLs' one host).")
def events_load(paths: tuple[Path, ...], sample: bool, as_json: bool, mirror: bool, source: str | None) -> None:
    """Load events from JSON, JSON array or JSON Lines files (upsert by source_url).

    Exits 1 when any record was invalid; the valid ones are loaded all the same. A source_url given
    twice is reported as a duplicate (the later record is kept) without changing the exit code.
    """
    from event_importer.cli.removal import print_load_report, run_mirror_load

    if source is not None and not mirror:
        fail("--source names the source of a --mirror load")
    if mirror:
        if sample:
            fail("--mirror loads one file; --sample cannot be mirrored")
        run_mirror_load(configured_database(), paths, source, as_json)
    if not paths and not sample:
        fail("give one or more files, or --sample")
    database = configured_database()
    report = LoadReport()
    if sample:
        report.merge(load_samples(database))
    if paths:
        report.merge(load_files(database, paths))
    print_load_report(report, as_json)
    sys.exit(1 if report.invalid else 0)


@events.command("remove")
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def events_remove(url: str, as_json: bool) -> None:
    """Mark the event with this source URL as removed from its source (nothing is deleted).

    Each destination then gets its removal, as its lifecycle rule says; loading the event again
    restores it. Exits 1 when no cached event has that URL.
    """
    from event_importer.cli.removal import events_remove_command

    events_remove_command(configured_database(), url, as_json)


@events.command("import-db")
@click.argument("database_url")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def events_import_db(database_url: str, as_json: bool) -> None:
    """Import an Event Importer database (SQLite or PostgreSQL URL): its events and its submission history.

    Events are loaded as `events load` loads them; each submission becomes an imported attempt, so
    what was sent there is not sent again. Importing again changes nothing. Exits 1 when any event
    or submission could not be imported; the rest are imported all the same.
    """
    from event_importer.cli.removal import echo_load_report
    from event_importer.events.import_db import import_database

    try:
        imported = import_database(configured_database(), database_url)
    except ConfigurationError as exc:
        fail(str(exc))
    except EventImporterError as exc:
        fail(str(exc), code=1)
    report, history = imported.events, imported.history
    if as_json:
        print_json({**report.as_json(), "history": history.as_json()})
    else:
        echo_load_report(report)
        for issue in history.skipped:
            click.echo(f"invalid: {issue}", err=True)
        per_service = "; ".join(
            f"{name}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            for name, counts in sorted(history.imported.items())
        )
        click.echo(
            f"history: {history.imported_total} attempts imported{f' ({per_service})' if per_service else ''}, "
            f"{history.already_imported} already imported, {history.kept_own} left out (attempted here since), "
            f"{len(history.skipped)} invalid"
        )
    sys.exit(1 if report.invalid or history.skipped else 0)


@events.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N events.")
def events_list(as_json: bool, limit: int | None) -> None:
    """List cached events."""
    from sqlalchemy import select

    from event_importer.db.models import EventCache

    with configured_database().session() as session:
        statement = select(EventCache).order_by(EventCache.id).limit(limit)
        rows = [
            {
                "id": e.id,
                "source_url": e.source_url,
                "title": e.data.get("title"),
                "date": e.data.get("date"),
                "city": (e.data.get("location") or {}).get("city"),
                "data_hash": e.data_hash,
                "updated_at": e.updated_at.isoformat(),
                "status": e.data.get("status", "scheduled"),
                "removed_at": e.removed_at.isoformat() if e.removed_at else None,
                **({"data": e.data} if as_json else {}),
            }
            for e in session.scalars(statement)
        ]
    if as_json:
        print_json(rows)
        return
    click.echo(table(["id", "date", "title", "city", "source_url"], [
        [r["id"], r["date"], r["title"], r["city"], r["source_url"]] for r in rows
    ]))
    click.echo(f"{len(rows)} events")


@events.command("show")
@click.argument("event")
@click.option("--json", "as_json", is_flag=True, help="Print the event and its state per destination as JSON.")
def events_show(event: str, as_json: bool) -> None:
    """One event (its id or source URL): its data and its state at each destination."""
    from event_importer.history import event_overview

    try:
        integrations = [found for _, found in sorted(discover().integrations.items())]
        overview = event_overview(configured_database(), integrations, event)
    except EventImporterError as exc:
        if as_json:
            print_json({"error": str(exc)})
        fail(str(exc))
    if as_json:
        print_json(overview)
        return
    found = overview["event"]
    click.echo(f"event {found['id']}: {found['source_url']} (updated {found['updated_at']})")
    if found["removed_at"]:
        click.echo(f"removed from its source at {found['removed_at']}")
    click.echo(json.dumps(found["data"], indent=2, ensure_ascii=False))
    rows = []
    for name, at in overview["destinations"].items():
        latest = at["latest_attempt"] or {}
        due = "changed" if at["changed"] else "removal" if at["removed"] else ""
        rows.append([
            name, at["state"], due, at["attempts"], at["dry_runs"], latest.get("operation") or "",
            latest.get("created_at") or "", latest.get("http_status") or "", latest.get("error") or "",
        ])
    headers = ["destination", "state", "due", "attempts", "dry runs", "operation", "latest", "http", "error"]
    click.echo(table(headers, rows))
    click.echo(f"each attempt, with payload and answer: event-importer <destination> history {found['id']}")


@cli.group()
def integrations() -> None:
    """Discovered integrations."""


@integrations.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def integrations_list(as_json: bool) -> None:
    """Each discovered integration, whether it is configured and what it still needs."""
    found = discover()
    rows: list[dict[str, Any]] = []
    for name, integration in sorted(found.integrations.items()):
        lifecycle: dict[str, Any] = {}
        try:
            submitter = integration.create_submitter()
            missing = submitter.missing_settings()
            lifecycle = submitter.lifecycle_rules().describe()
            problem = None
        except EventImporterError as exc:
            missing, problem = [], str(exc)
        rows.append(
            {
                "name": name,
                "source": integration.source,
                "configured": not missing and problem is None,
                "missing": missing,
                "error": problem,
                "description": integration.description,
                "lifecycle": lifecycle,
            }
        )
    broken = [{"name": f.name, "source": f.source, "error": f.error} for f in found.failures]
    if as_json:
        print_json({"integrations": rows, "failed": broken})
        return
    click.echo(table(["name", "configured", "needs", "source", "description"], [
        [r["name"], "yes" if r["configured"] else "no", r["error"] or ", ".join(r["missing"]) or "-",
         r["source"], r["description"]]
        for r in rows
    ], max_width=80))
    click.echo("\nWhat each destination does when an event changes, is cancelled or is removed from its source:")
    click.echo(table(["name", "update", "cancel", "remove"], [
        [r["name"], *(r["lifecycle"].get(op, {}).get("does", "-") for op in ("update", "cancel", "remove"))]
        for r in rows
    ], max_width=70))
    for failure in broken:
        click.echo(f"failed to load {failure['name']} ({failure['source']}): {failure['error']}", err=True)


def _add_integration_commands(group: click.Group) -> None:
    from event_importer.cli.integration import integration_group

    for name, integration in sorted(discover().integrations.items()):
        command = integration.load_cli() or integration_group(integration)
        group.add_command(command, name)


def _add_servers(group: click.Group) -> None:
    from event_importer.cli.integration import ui_command
    from event_importer.cli.serve import api_command

    group.add_command(ui_command, "ui")
    group.add_command(api_command, "api")


def build_cli() -> click.Group:
    _add_integration_commands(cli)
    _add_servers(cli)
    return cli


def main() -> None:
    conflicts = load_env_file()
    if conflicts:
        click.echo(f"warning: {conflict_warning(conflicts)}", err=True)
    try:
        build_cli()(standalone_mode=True)
    except ConfigurationError as exc:
        fail(str(exc))
