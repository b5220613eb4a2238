"""`events load --mirror` and `events remove`: telling the cache which events left their source."""

import sys
from pathlib import Path
from typing import NoReturn

import click

from event_importer.cli.output import fail, print_json
from event_importer.db.engine import Database
from event_importer.errors import UsageError
from event_importer.events.loader import LoadReport
from event_importer.events.removal import MirrorReport, mirror_load, remove_event


def run_mirror_load(database: Database, paths: tuple[Path, ...], source: str | None, as_json: bool) -> NoReturn:
    """The mirror branch of `events load`: one file, the whole catalogue of one source."""
    if len(paths) != 1:
        fail("--mirror takes exactly one file: the whole catalogue of one source")
    try:
        report, mirror = mirror_load(database, paths[0], source=source)
    except UsageError as exc:
        fail(str(exc))
    print_load_report(report, as_json, mirror)
    sys.exit(1 if report.invalid else 0)


def print_load_report(report: LoadReport, as_json: bool, mirror: MirrorReport | None = None) -> None:
    """The counts (and each invalid and duplicate record); a mirror load adds its source and removals."""
    if as_json:
        extra = {} if mirror is None else {"source": mirror.source, "not_removing": mirror.not_removing}
        print_json({**report.as_json(), **extra})
        return
    echo_load_report(report, mirror)


def echo_load_report(report: LoadReport, mirror: MirrorReport | None = None) -> None:
    """The load's counts as one line, each invalid and duplicate record on stderr."""
    for issue in report.invalid:
        click.echo(f"invalid: {issue}", err=True)
    for issue in report.duplicates:
        click.echo(f"duplicate: {issue}", err=True)
    c = report.counts
    line = f"{c['new']} new, {c['updated']} updated, {c['unchanged']} unchanged, {c['invalid']} invalid"
    if c["duplicates"]:
        line += f", {c['duplicates']} duplicates"
    if c["restored"]:
        line += f", {c['restored']} restored"
    if mirror is not None:
        line += f", {c['removed']} removed (source {mirror.source})"
    click.echo(line)
    if mirror is not None and mirror.not_removing:
        click.echo(f"warning: {mirror.not_removing}", err=True)


def events_remove_command(database: Database, url: str, as_json: bool) -> None:
    """Mark one event removed from its source; its removal then goes to every destination."""
    try:
        removal = remove_event(database, url)
    except UsageError as exc:
        fail(str(exc), code=1)
    if as_json:
        print_json(
            {
                "event_id": removal.event_id,
                "source_url": removal.source_url,
                "removed_at": removal.removed_at.isoformat(),
                "already_removed": not removal.newly,
            }
        )
        return
    when = removal.removed_at.isoformat(timespec="seconds")
    if removal.newly:
        click.echo(f"removed event {removal.event_id} ({removal.source_url}) at {when}")
    else:
        click.echo(f"event {removal.event_id} ({removal.source_url}) was already removed at {when}")
