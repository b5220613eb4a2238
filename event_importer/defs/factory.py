"""The asset-graph factory: `build_integration_defs(integration)` for every discovered integration.

Each integration gets `<svc>/selected_events` -> `<svc>/payloads` -> `<svc>/submission_results` in a
group named after it, a job `<svc>_submit_job` running them in one process, asset checks on the
results, a schedule and a sensor (both stopped until a user starts them). The assets only call the
submitter's three steps (`select`, `transform`, `submit`), the same code path as outside Dagster;
`submit` writes every `Submission` row through the ledger, claiming each event before it is sent
and recording each outcome as it arrives. The run configuration sits on the first asset and travels
downstream inside the values, so `dry_run` reaches `submission_results`.
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg
from dagster._core.events import EngineEventData

from event_importer.db.engine import Database
from event_importer.defs.checks import check_specs, evaluate_checks
from event_importer.defs.config import (
    TAG_DRY_RUN,
    TAG_INTEGRATION,
    TAG_LANE,
    TAG_OWNER,
    TAG_SELECTOR,
    TAG_TRIGGER,
    SubmitConfig,
    build_config_class,
    job_name,
    lane,
)
from event_importer.defs.resources import IntegrationClientResource, client_resource, client_resource_key
from event_importer.defs.schedules import build_schedule
from event_importer.defs.sensors import build_new_events_sensor
from event_importer.defs.values import Selection, Submitted, Transformed
from event_importer.errors import ConfigurationError
from event_importer.integrations.base import BaseSubmitter
from event_importer.integrations.discovery import Integration
from event_importer.integrations.packed import Packed
from event_importer.integrations.records import (
    EventRef,
    Outcome,
    SubmissionReport,
    SubmissionResult,
    failures_first,
)
from event_importer.ledger import current_owner

# `[[event id, reason], ...]` of the events another run held, on `submission_results` when there are any.
SKIPPED_METADATA = "skipped_events"
# Rows of the Markdown tables in materialization metadata.
PREVIEW_ROWS = 20
CELL_LIMIT = 200


# Per-event progress lines for runs up to this size; bigger runs log every 1 %.
EVERY_EVENT_UP_TO = 100


# Marks the engine events that carry per-event progress lines.
PROGRESS_METADATA = "event-importer/progress"


def progress_line(result: SubmissionResult, done: int, total: int) -> str | None:
    """The run's progress line for its `done`-th result, or None when this one is not reported.

    These lines, like the steps' info messages, are what the CLI prints as the run goes: it follows
    the run's event log. They name events, so they go to the event log alone (an engine event), not
    through the run's loggers: the console logger would put event data in the compute logs on disk.
    """
    if total <= EVERY_EVENT_UP_TO or done % max(1, total // 100) == 0 or done == total:
        what = result.title or result.source_url
        error = f": {result.error}" if result.error else ""
        return f"[{done}/{total}] {result.outcome.value} {what}{error}"
    return None


def escape_cell(value: Any, limit: int = CELL_LIMIT) -> str:
    """A Markdown table cell: one line, `|` escaped, cut at `limit` characters."""
    text = " ".join(str("" if value is None else value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, total: int | None = None) -> str:
    """A Markdown table of the first `PREVIEW_ROWS` rows, saying how many were left out."""
    total = len(rows) if total is None else total
    if not total:
        return "_none_"
    lines = ["| " + " | ".join(escape_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(escape_cell(v) for v in row) + " |" for row in rows[:PREVIEW_ROWS]]
    shown = min(len(rows), PREVIEW_ROWS)
    if total > shown:
        lines.append(f"\n_first {shown} of {total} rows_")
    return "\n".join(lines)


def results_table(results: Sequence[SubmissionResult]) -> str:
    """Failures first (they are what a reader looks for), then the rest in event order."""
    shown = failures_first(results, PREVIEW_ROWS)
    rows = [[r.event_id, r.outcome.value, r.http_status, r.title, r.source_url, r.error] for r in shown]
    return markdown_table(["event", "outcome", "HTTP", "title", "source_url", "error"], rows, total=len(results))


def count_metadata(counts: dict[str, int]) -> dict[str, dg.MetadataValue]:
    return {name: dg.MetadataValue.int(value) for name, value in counts.items()}


def build_integration_defs(integration: Integration) -> dg.Definitions:
    """Assets, checks, job, schedule, sensor and client resource of one integration.

    The `database` resource and the `io_manager` are shared by all integrations and bound once by
    `event_importer.defs.build_defs`.
    """
    svc = integration.name
    # Selector names and the schedule are needed to define the graph; settings are read here, secrets are not bound.
    submitter = integration.create_submitter()
    config_class = build_config_class(svc, list(submitter.selectors))
    client_key = client_resource_key(svc)
    keys = {"database", client_key}

    def _submitter(context: dg.AssetExecutionContext) -> BaseSubmitter:
        resource: IntegrationClientResource = getattr(context.resources, client_key)
        return resource.submitter

    def _database(context: dg.AssetExecutionContext) -> Database:
        return context.resources.database.get_database()  # type: ignore[no-any-return]

    def _say(context: dg.AssetExecutionContext, text: str) -> None:
        context.log.info(text)

    @dg.asset(
        key=[svc, "selected_events"],
        group_name=svc,
        kinds={"python", "sql"},
        required_resource_keys=keys,
        tags={TAG_INTEGRATION: svc},
    )
    def selected_events(
        context: dg.AssetExecutionContext,
        config: config_class,  # type: ignore[valid-type]
    ) -> dg.Output[Selection]:
        """Events the run's selector picks from the event cache (id, source URL, data and its hash).

        Takes the run configuration (selector, url, dry_run, limit) and hands it on with the events.
        """
        cfg: SubmitConfig = config
        _tag_run(context, cfg)
        sub = _submitter(context)
        if not cfg.dry_run and (missing := sub.missing_settings()):
            raise ConfigurationError(
                f"{svc}: {', '.join(missing)} not set; set it (environment or .env) or make this a dry run"
            )
        _say(context, f"selecting events (selector {cfg.selector})")
        with _database(context).session() as session:
            shard = (cfg.shard.index, cfg.shard.count) if cfg.shard else None
            events = Packed.of(EventRef, sub.select(session, cfg.selector, url=cfg.url, limit=cfg.limit, shard=shard))
        _say(context, f"selected {len(events)} events")
        rows = [[e.id, e.title, e.source_url, "yes" if e.submitted_before else ""] for e in events.head(PREVIEW_ROWS)]
        metadata: dict[str, Any] = {
            "selected": dg.MetadataValue.int(len(events)),
            "selector": cfg.selector,
            "mode": _mode(cfg.dry_run),
            "events": dg.MetadataValue.md(
                markdown_table(["event", "title", "source_url", "accepted before"], rows, total=len(events))
            ),
        }
        if cfg.url:
            metadata["url"] = cfg.url
        if cfg.limit is not None:
            metadata["limit"] = dg.MetadataValue.int(cfg.limit)
        if cfg.shard is not None:
            metadata["shard"] = f"{cfg.shard.index} of {cfg.shard.count}"
        value = Selection(cfg.selector, cfg.url, cfg.dry_run, cfg.limit, events)
        return dg.Output(value, metadata=metadata)

    @dg.asset(
        key=[svc, "payloads"],
        group_name=svc,
        kinds={"python"},
        ins={"selected_events": dg.AssetIn(key=[svc, "selected_events"])},
        required_resource_keys={client_key},
        tags={TAG_INTEGRATION: svc},
    )
    def payloads(context: dg.AssetExecutionContext, selected_events: Selection) -> dg.Output[Transformed]:
        """One destination-shaped payload per selected event, or why the event cannot be sent."""
        transformed = _submitter(context).transform_packed(selected_events.events)
        invalid = [p for p in transformed if not p.valid]
        valid = len(transformed) - len(invalid)
        _say(context, f"transformed {valid} events, {len(invalid)} invalid")
        rows = [[p.event.id, p.event.title, p.event.source_url, p.error] for p in invalid[:PREVIEW_ROWS]]
        metadata: dict[str, Any] = {
            "selector": selected_events.selector,
            "mode": _mode(selected_events.dry_run),
            **count_metadata({"selected": len(selected_events.events), "transformed": valid, "invalid": len(invalid)}),
            "invalid_events": dg.MetadataValue.md(
                markdown_table(["event", "title", "source_url", "error"], rows, total=len(invalid))
            ),
        }
        return dg.Output(Transformed(selected_events, transformed, len(invalid)), metadata=metadata)

    @dg.asset(
        key=[svc, "submission_results"],
        group_name=svc,
        kinds={"python", "api"},
        ins={"payloads": dg.AssetIn(key=[svc, "payloads"])},
        required_resource_keys=keys,
        tags={TAG_INTEGRATION: svc},
        check_specs=check_specs(dg.AssetKey([svc, "submission_results"])),
    )
    # No return annotation: with check specs Dagster would read one as the output types (and reject it).
    def submission_results(context: dg.AssetExecutionContext, payloads: Transformed):  # type: ignore[no-untyped-def]
        """What happened to each selected event in this run: sent, failed (with why), dry run or skipped.

        Every outcome is written to the submission ledger: each event is claimed (a pending row
        with the run id) before it is sent, and its outcome recorded as soon as it is known. The
        asset checks (outcomes recorded, failure rate, no duplicates) are evaluated right after.
        """
        selection = payloads.selection
        resource: IntegrationClientResource = getattr(context.resources, client_key)
        sub = resource.submitter
        run_id = context.run.run_id
        total = len(payloads.payloads)
        done = 0

        def progress(result: SubmissionResult) -> None:
            nonlocal done
            done += 1
            if (line := progress_line(result, done, total)) is not None:
                context.instance.report_engine_event(
                    line, context.run, EngineEventData(metadata={PROGRESS_METADATA: dg.MetadataValue.bool(True)})
                )

        verb = "recording dry runs for" if selection.dry_run else "sending"
        _say(context, f"{verb} {total - payloads.invalid} payloads")
        database = _database(context)
        results = sub.submit(
            payloads.payloads,
            database=database,
            run_id=run_id,
            dry_run=selection.dry_run,
            client=None if selection.dry_run else resource.create_client(),
            progress=progress,
        )
        report = SubmissionReport(svc, selection.selector, run_id, selection.dry_run, total, payloads.invalid, results)
        counts = report.counts
        _say(context, "done: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
        metadata: dict[str, Any] = {
            **count_metadata(counts),
            "selector": selection.selector,
            "mode": _mode(selection.dry_run),
            "results": dg.MetadataValue.md(results_table(results)),
        }
        if skipped := [[r.event_id, r.error] for r in results if r.outcome is Outcome.SKIPPED]:
            # The ledger has no row of this run for them: whoever follows the run learns of them here.
            metadata[SKIPPED_METADATA] = dg.MetadataValue.json(skipped)
        value = Submitted(report, tuple(p.event.id for p in payloads.payloads))
        checks = evaluate_checks(
            svc,
            value,
            database,
            idempotent_writes=sub.settings.idempotent_writes,
            failure_rate_threshold=sub.app_settings.failure_rate_threshold,
        )
        return dg.MaterializeResult(value=value, metadata=metadata, check_results=checks)

    about = f"{integration.description} " if integration.description else ""
    job = dg.define_asset_job(
        job_name(svc),
        selection=dg.AssetSelection.groups(svc),
        description=f"{about}Select, transform and submit events to {svc}.",
        executor_def=dg.in_process_executor,
        # Runs started from the UI keep `ui`; the CLI, API, schedule and sensor set their own.
        tags={TAG_INTEGRATION: svc, TAG_LANE: lane(svc), TAG_TRIGGER: "ui"},
    )
    return dg.Definitions(
        assets=[selected_events, payloads, submission_results],
        jobs=[job],
        schedules=[build_schedule(svc, job, submitter.settings.schedule, config_class)],
        sensors=[build_new_events_sensor(svc, job, submitter, config_class)],
        resources={client_key: client_resource(integration)},
    )


def _tag_run(context: dg.AssetExecutionContext, config: SubmitConfig) -> None:
    """Add the selector and dry-run tags to runs whose launcher did not (e.g. the UI's launchpad), and
    the `host:pid` of the process running it, so that a dispatcher can tell when it died."""
    tags = context.run.tags
    wanted = {
        TAG_SELECTOR: config.selector,
        TAG_DRY_RUN: str(config.dry_run).lower(),
        TAG_OWNER: current_owner(),
    }
    missing = {k: v for k, v in wanted.items() if tags.get(k) != v}
    if missing:
        context.instance.add_run_tags(context.run.run_id, missing)


def _mode(dry_run: bool) -> str:
    return "dry run (nothing sent)" if dry_run else "send"
