"""The asset-graph factory: `build_integration_defs(integration)` for every discovered integration.

Each integration gets `<svc>/selected_events` -> `<svc>/payloads` -> `<svc>/submission_results` in a
group named after it, a job `<svc>_submit_job` running them in one process, asset checks on the
results, a schedule, a sensor starting runs and one sending alerts (all stopped until a user
starts them). The assets only call the
submitter's three steps (`select`, `transform`, `submit`), the same code path as outside Dagster;
`submit` writes every `Submission` row through the ledger, claiming each event before it is sent
and recording each outcome as it arrives. The run configuration sits on the first asset and travels
downstream inside the values, so `dry_run` reaches `submission_results`.
"""

from collections import Counter
from collections.abc import Sequence
from typing import Any

import dagster as dg
from dagster._core.events import EngineEventData
from sqlalchemy import func, select

from event_importer.db.engine import Database
from event_importer.defs.alerts import build_alerts_sensor
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
from event_importer.framework.discovery import Integration
from event_importer.framework.packed import Packed
from event_importer.framework.records import (
    EventRef,
    Outcome,
    SubmissionReport,
    SubmissionResult,
    failures_first,
)
from event_importer.framework.submitter import BaseSubmitter
from event_importer.ledger import current_owner
from event_importer.submission_request import check_sendable

# `[[event id, reason], ...]` of the events another run held, on `submission_results` when there are any.
SKIPPED_METADATA = "skipped_events"
# Rows of the Markdown tables in materialization metadata.
PREVIEW_ROWS = 20
CELL_LIMIT = 200


# At most about this many progress lines per run, however big.
PROGRESS_LINES = 10


# Marks the engine events that carry progress lines.
PROGRESS_METADATA = "event-importer/progress"


def progress_line(outcomes: Counter[str], done: int, total: int) -> str | None:
    """The run's progress line after its `done`-th result, or None when this one is not reported.

    A running count by outcome, not a line per event: whoever follows the run prints the events
    themselves once, in its results table. These lines, like the steps' info messages, are what the
    CLI prints as the run goes: it follows the run's event log (engine events, not the run's loggers,
    which would copy them into the compute logs on disk).
    """
    if done % max(1, total // PROGRESS_LINES) == 0 or done == total:
        tally = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
        return f"[{done}/{total}] recorded: {tally}"
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
    rows = [
        [r.event_id, r.operation.value, r.outcome.value, r.http_status, r.title, r.source_url, r.error] for r in shown
    ]
    headers = ["event", "operation", "outcome", "HTTP", "title", "source_url", "error"]
    return markdown_table(headers, rows, total=len(results))


def lifecycle_description(submitter: BaseSubmitter) -> str:
    """What the destination does over an event's life, as Markdown lines for an asset's description."""
    lines = [f"- **{op}**: {rule['does']}" for op, rule in submitter.lifecycle_rules().describe().items()]
    return "When an event changes, is cancelled or is removed from its source:\n\n" + "\n".join(lines)


def count_metadata(counts: dict[str, int]) -> dict[str, dg.MetadataValue]:
    return {name: dg.MetadataValue.int(value) for name, value in counts.items()}


_RESULTS_DESCRIPTION = """What happened to each selected event in this run: sent, failed (with why), dry run or skipped.

Every outcome is written to the submission ledger: each event is claimed (a pending row with the run
id) before it is sent, and its outcome recorded as soon as it is known. The asset checks (outcomes
recorded, failure rate, no duplicates) are evaluated right after."""


# The SQL event cache every integration selects from. Loaded outside Dagster (`events load`,
# `POST /events`, `events import-db`), so it is a spec, not an asset Dagster materializes: the lineage
# in the UI then starts where the data does.
EVENT_CACHE = dg.AssetSpec(
    "event_cache",
    description="The SQL event cache: events loaded with `events load`, `POST /events` or `events import-db`.",
    group_name="event_cache",
    kinds={"sql"},
)


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
        deps=[EVENT_CACHE],
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
        check_sendable(svc, sub, cfg.dry_run)
        # Opened (the schema checked) before saying so: "selecting" then means the query is next.
        database = _database(context)
        _say(context, f"selecting events (selector {cfg.selector})")
        with database.session() as session:
            shard = (cfg.shard.index, cfg.shard.count) if cfg.shard else None
            events = Packed.of(EventRef, sub.select(session, cfg.selector, url=cfg.url, limit=cfg.limit, shard=shard))
        _say(context, f"selected {len(events)} events")
        rows = [
            [e.id, e.operation.value, e.title, e.source_url, "yes" if e.submitted_before else ""]
            for e in events.head(PREVIEW_ROWS)
        ]
        metadata: dict[str, Any] = {
            "selected": dg.MetadataValue.int(len(events)),
            "selector": cfg.selector,
            "mode": _mode(cfg.dry_run),
            "events": dg.MetadataValue.md(
                markdown_table(
                    ["event", "operation", "title", "source_url", "at destination"], rows, total=len(events)
                )
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
        description=_RESULTS_DESCRIPTION + "\n\n" + lifecycle_description(submitter),
    )
    # No return annotation: with check specs Dagster would read one as the output types (and reject it).
    def submission_results(context: dg.AssetExecutionContext, payloads: Transformed):  # type: ignore[no-untyped-def]
        selection = payloads.selection
        resource: IntegrationClientResource = getattr(context.resources, client_key)
        sub = resource.submitter
        run_id = context.run.run_id
        total = len(payloads.payloads)
        done = 0
        outcomes: Counter[str] = Counter()

        def progress(result: SubmissionResult) -> None:
            nonlocal done
            done += 1
            outcomes[result.outcome.value] += 1
            if (line := progress_line(outcomes, done, total)) is not None:
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
            trigger=context.run.tags.get(TAG_TRIGGER),
        )
        report = SubmissionReport(svc, selection.selector, run_id, selection.dry_run, total, payloads.invalid, results)
        counts = report.counts
        _say(context, "done: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
        metadata: dict[str, Any] = {
            **count_metadata(counts),
            "selector": selection.selector,
            "mode": _mode(selection.dry_run),
            # Per operation and outcome, e.g. {"cancel": {"skipped": 2}}: what a lifecycle rule skipped shows here.
            "operations": dg.MetadataValue.json(_by_operation(results)),
            "results": dg.MetadataValue.md(results_table(results)),
            # From a failed event's row (its id or source URL) to every attempt it had.
            "history": dg.MetadataValue.text(
                f"event-importer {svc} history <event id or source_url>; "
                f"API: GET /integrations/{svc}/events/<id>/attempts"
            ),
            # Across the integration, not this run: events later runs no longer retry on their own.
            "retries_exhausted": dg.MetadataValue.int(_count_selected(database, sub, "exhausted")),
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
        schedules=[build_schedule(svc, job, submitter.settings.schedule, config_class, submitter)],
        sensors=[
            build_new_events_sensor(svc, job, submitter, config_class),
            build_alerts_sensor(integration, job.name),
        ],
        resources={client_key: client_resource(integration)},
    )


def _count_selected(database: Database, submitter: BaseSubmitter, selector: str) -> int:
    statement = submitter.get_selector(selector).statement(submitter.service_name).subquery()
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(statement)) or 0


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


def _by_operation(results: Sequence[SubmissionResult]) -> dict[str, dict[str, int]]:
    counts = Counter((r.operation.value, r.outcome.value) for r in results)
    table: dict[str, dict[str, int]] = {}
    for (operation, outcome), n in sorted(counts.items()):
        table.setdefault(operation, {})[outcome] = n
    return table


def _mode(dry_run: bool) -> str:
    return "dry run (nothing sent)" if dry_run else "send"
