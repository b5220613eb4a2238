"""The three assets of an integration: `selected_events` -> `payloads` -> `submission_results`.

Each builder makes one `dg.AssetsDefinition` named by the `IntegrationTranslator`; its body is a
plain function below it, taking what the step needs (config, submitter, database) rather than
reaching into a closure. The assets only call the submitter's three steps (`select`, `transform`,
`submit`), the same code path as outside Dagster; `submit` writes every `Submission` row through the
ledger, claiming each event before it is sent and recording each outcome as it arrives. The run
configuration sits on the first asset and travels downstream inside the values, so `dry_run`
reaches `submission_results`.
"""

from collections import Counter
from typing import Any

import dagster as dg
from dagster._core.events import EngineEventData
from sqlalchemy import func, select

from event_importer.db.engine import Database
from event_importer.framework.packed import Packed
from event_importer.framework.records import EventRef, Outcome, SubmissionReport, SubmissionResult
from event_importer.framework.submitter import BaseSubmitter
from event_importer.ledger import current_owner
from event_importer.orchestration.checks import check_specs, evaluate_checks
from event_importer.orchestration.config import TAG_DRY_RUN, TAG_OWNER, TAG_SELECTOR, TAG_TRIGGER, SubmitConfig
from event_importer.orchestration.metadata import (
    PREVIEW_ROWS,
    PROGRESS_METADATA,
    SKIPPED_METADATA,
    by_operation,
    count_metadata,
    invalid_table,
    mode,
    progress_line,
    results_table,
    selected_table,
)
from event_importer.orchestration.resources import IntegrationClientResource, client_resource_key
from event_importer.orchestration.translator import IntegrationTranslator
from event_importer.orchestration.values import Selection, Submitted, Transformed
from event_importer.submission_request import check_sendable

# The SQL event cache every integration selects from. Loaded outside Dagster (`events load`,
# `POST /events`, `events import-db`), so it is a spec, not an asset Dagster materializes: the lineage
# in the UI then starts where the data does.
EVENT_CACHE = dg.AssetSpec(
    "event_cache",
    description="The SQL event cache: events loaded with `events load`, `POST /events` or `events import-db`.",
    group_name="event_cache",
    kinds={"sql"},
)

_RESULTS_DESCRIPTION = """What happened to each selected event in this run: sent, failed (with why), dry run or skipped.

Every outcome is written to the submission ledger: each event is claimed (a pending row with the run
id) before it is sent, and its outcome recorded as soon as it is known. The asset checks (outcomes
recorded, failure rate, no duplicates) are evaluated right after. The `results` table lists the
first {rows} events, failures first; the counts give the totals."""


def client_resource(context: dg.AssetExecutionContext, service: str) -> IntegrationClientResource:
    resource: IntegrationClientResource = getattr(context.resources, client_resource_key(service))
    return resource


def database(context: dg.AssetExecutionContext) -> Database:
    return context.resources.database.get_database()  # type: ignore[no-any-return]


def selected_events_asset(translator: IntegrationTranslator, config_class: type[SubmitConfig]) -> dg.AssetsDefinition:
    """The first asset: it takes the run configuration (a `config_class`, the integration's selectors)."""
    service = translator.service

    @dg.asset(
        key=translator.asset_key("selected_events"),
        deps=[EVENT_CACHE],
        group_name=translator.group_name,
        kinds={"python", "sql"},
        required_resource_keys={"database", client_resource_key(service)},
        tags=translator.tags,
    )
    def selected_events(
        context: dg.AssetExecutionContext,
        config: config_class,  # type: ignore[valid-type]
    ) -> dg.Output[Selection]:
        """Events the run's selector picks from the event cache (id, source URL, data and its hash).

        Takes the run configuration (selector, url, dry_run, limit) and hands it on with the events.
        """
        return select_events(context, config, client_resource(context, service).submitter)

    return selected_events


def select_events(
    context: dg.AssetExecutionContext, config: SubmitConfig, submitter: BaseSubmitter
) -> dg.Output[Selection]:
    tag_run(context, config)
    check_sendable(submitter, config.dry_run)
    # Opened (the schema checked) before saying so: "selecting" then means the query is next.
    db = database(context)
    context.log.info(f"selecting events (selector {config.selector})")
    with db.session() as session:
        shard = (config.shard.index, config.shard.count) if config.shard else None
        events = Packed.of(
            EventRef, submitter.select(session, config.selector, url=config.url, limit=config.limit, shard=shard)
        )
    context.log.info(f"selected {len(events)} events")
    metadata: dict[str, Any] = {
        "selected": dg.MetadataValue.int(len(events)),
        "selector": config.selector,
        "mode": mode(config.dry_run),
        "events": selected_table(events.head(PREVIEW_ROWS)),
    }
    if config.url:
        metadata["url"] = config.url
    if config.limit is not None:
        metadata["limit"] = dg.MetadataValue.int(config.limit)
    if config.shard is not None:
        metadata["shard"] = f"{config.shard.index} of {config.shard.count}"
    value = Selection(config.selector, config.url, config.dry_run, config.limit, events)
    return dg.Output(value, metadata=metadata)


def payloads_asset(translator: IntegrationTranslator) -> dg.AssetsDefinition:
    service = translator.service

    @dg.asset(
        key=translator.asset_key("payloads"),
        group_name=translator.group_name,
        kinds={"python"},
        ins={"selected_events": dg.AssetIn(key=translator.asset_key("selected_events"))},
        required_resource_keys={client_resource_key(service)},
        tags=translator.tags,
    )
    def payloads(context: dg.AssetExecutionContext, selected_events: Selection) -> dg.Output[Transformed]:
        """One destination-shaped payload per selected event, or why the event cannot be sent."""
        return transform_events(context, selected_events, client_resource(context, service).submitter)

    return payloads


def transform_events(
    context: dg.AssetExecutionContext, selection: Selection, submitter: BaseSubmitter
) -> dg.Output[Transformed]:
    transformed = submitter.transform_packed(selection.events)
    invalid = [p for p in transformed if not p.valid]
    valid = len(transformed) - len(invalid)
    context.log.info(f"transformed {valid} events, {len(invalid)} invalid")
    metadata: dict[str, Any] = {
        "selector": selection.selector,
        "mode": mode(selection.dry_run),
        **count_metadata({"selected": len(selection.events), "transformed": valid, "invalid": len(invalid)}),
        "invalid_events": invalid_table(invalid),
    }
    return dg.Output(Transformed(selection, transformed, len(invalid)), metadata=metadata)


def submission_results_asset(translator: IntegrationTranslator, submitter: BaseSubmitter) -> dg.AssetsDefinition:
    """The last asset, with its checks; `submitter` (as configured at load) describes its lifecycle rules."""
    service = translator.service
    key = translator.asset_key("submission_results")

    @dg.asset(
        key=key,
        group_name=translator.group_name,
        kinds={"python", "api"},
        ins={"payloads": dg.AssetIn(key=translator.asset_key("payloads"))},
        required_resource_keys={"database", client_resource_key(service)},
        tags=translator.tags,
        check_specs=check_specs(key),
        description=_RESULTS_DESCRIPTION.format(rows=PREVIEW_ROWS) + "\n\n" + lifecycle_description(submitter),
    )
    # No return annotation: with check specs Dagster would read one as the output types (and reject it).
    def submission_results(context: dg.AssetExecutionContext, payloads: Transformed):  # type: ignore[no-untyped-def]
        return submit_payloads(context, service, payloads, client_resource(context, service))

    return submission_results


def submit_payloads(
    context: dg.AssetExecutionContext, service: str, payloads: Transformed, resource: IntegrationClientResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    selection = payloads.selection
    submitter = resource.submitter
    run_id = context.run.run_id
    total = len(payloads.payloads)
    verb = "recording dry runs for" if selection.dry_run else "sending"
    context.log.info(f"{verb} {total - payloads.invalid} payloads")
    db = database(context)
    results = submitter.submit(
        payloads.payloads,
        database=db,
        run_id=run_id,
        dry_run=selection.dry_run,
        client=None if selection.dry_run else resource.create_client(),
        progress=ProgressReporter(context, total),
        trigger=context.run.tags.get(TAG_TRIGGER),
    )
    report = SubmissionReport(service, selection.selector, run_id, selection.dry_run, total, payloads.invalid, results)
    counts = report.counts
    context.log.info("done: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    metadata: dict[str, Any] = {
        **count_metadata(counts),
        "selector": selection.selector,
        "mode": mode(selection.dry_run),
        # Per operation and outcome, e.g. {"cancel": {"skipped": 2}}: what a lifecycle rule skipped shows here.
        "operations": dg.MetadataValue.json(by_operation(results)),
        "results": results_table(results),
        # From a failed event's row (its id or source URL) to every attempt it had.
        "history": dg.MetadataValue.text(
            f"event-importer {service} history <event id or source_url>; "
            f"API: GET /integrations/{service}/events/<id>/attempts"
        ),
        # Across the integration, not this run: events later runs no longer retry on their own.
        "retries_exhausted": dg.MetadataValue.int(count_selected(db, submitter, "exhausted")),
    }
    if skipped := [[r.event_id, r.error] for r in results if r.outcome is Outcome.SKIPPED]:
        # The ledger has no row of this run for them: whoever follows the run learns of them here.
        metadata[SKIPPED_METADATA] = dg.MetadataValue.json(skipped)
    value = Submitted(report, tuple(p.event.id for p in payloads.payloads))
    checks = evaluate_checks(
        service,
        value,
        db,
        idempotent_writes=submitter.settings.idempotent_writes,
        failure_rate_threshold=submitter.app_settings.failure_rate_threshold,
    )
    return dg.MaterializeResult(value=value, metadata=metadata, check_results=checks)


class ProgressReporter:
    """Counts a run's results as they are recorded and reports a progress line now and then, as an
    engine event of the run (what `event_importer.runs` prints while it follows the run)."""

    def __init__(self, context: dg.AssetExecutionContext, total: int) -> None:
        self._context = context
        self._total = total
        self._done = 0
        self._outcomes: Counter[str] = Counter()

    def __call__(self, result: SubmissionResult) -> None:
        self._done += 1
        self._outcomes[result.outcome.value] += 1
        if (line := progress_line(self._outcomes, self._done, self._total)) is not None:
            self._context.instance.report_engine_event(
                line,
                self._context.run,
                EngineEventData(metadata={PROGRESS_METADATA: dg.MetadataValue.bool(True)}),
            )


def lifecycle_description(submitter: BaseSubmitter) -> str:
    """What the destination does over an event's life, as Markdown lines for an asset's description."""
    lines = [f"- **{op}**: {rule['does']}" for op, rule in submitter.lifecycle_rules().describe().items()]
    return "When an event changes, is cancelled or is removed from its source:\n\n" + "\n".join(lines)


def count_selected(db: Database, submitter: BaseSubmitter, selector: str) -> int:
    statement = submitter.get_selector(selector).statement(submitter.service_name).subquery()
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(statement)) or 0


def tag_run(context: dg.AssetExecutionContext, config: SubmitConfig) -> None:
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


def integration_assets(
    translator: IntegrationTranslator, config_class: type[SubmitConfig], submitter: BaseSubmitter
) -> list[dg.AssetsDefinition]:
    """The integration's three assets, in `STEPS` order."""
    return [
        selected_events_asset(translator, config_class),
        payloads_asset(translator),
        submission_results_asset(translator, submitter),
    ]
