"""The root `event-importer` command: events, integrations, one group per integration, ui and api."""

import sys
from pathlib import Path
from typing import Any

import click
from dotenv import load_dotenv

from event_importer.cli.output import fail, print_json, table
from event_importer.db.engine import Database, get_database
from event_importer.errors import ConfigurationError, EventImporterError
from event_importer.events.loader import LoadReport, load_files, load_samples
from event_importer.integrations.discovery import discover
from event_importer.settings import get_settings


def open_database() -> Database:
    return get_database(get_settings().resolved_database_url)


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

    Exits 1 when any record was invalid; the valid ones are loaded all the same.
    """
    from event_importer.cli.removal import print_load_report, run_mirror_load

    if source is not None and not mirror:
        fail("--source names the source of a --mirror load")
    if mirror:
        if sample:
            fail("--mirror loads one file; --sample cannot be mirrored")
        run_mirror_load(open_database(), paths, source, as_json)
    if not paths and not sample:
        fail("give one or more files, or --sample")
    database = open_database()
    report = LoadReport()
    if sample:
        _merge(report, load_samples(database))
    if paths:
        _merge(report, load_files(database, paths))
    print_load_report(report, as_json)
    sys.exit(1 if report.invalid else 0)


def _merge(into: LoadReport, other: LoadReport) -> None:
    into.new += other.new
    into.updated += other.updated
    into.unchanged += other.unchanged
    into.invalid += other.invalid
    into.restored += other.restored


@events.command("remove")
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def events_remove(url: str, as_json: bool) -> None:
    """Mark the event with this source URL as removed from its source (nothing is deleted).

    Each destination then gets its removal, as its lifecycle rule says; loading the event again
    restores it. Exits 1 when no cached event has that URL.
    """
    from event_importer.cli.removal import events_remove_command

    events_remove_command(open_database(), url, as_json)


@events.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N events.")
def events_list(as_json: bool, limit: int | None) -> None:
    """List cached events."""
    from sqlalchemy import select

    from event_importer.db.models import EventCache

    with open_database().session() as session:
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
    load_dotenv(".env", override=False)
    try:
        build_cli()(standalone_mode=True)
    except ConfigurationError as exc:
        fail(str(exc))
