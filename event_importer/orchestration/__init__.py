"""The Dagster layer, built from the discovered integrations (the code location's `defs/` loads it).

As Dagster's integration libraries do (dagster-dbt, dagster-dlt), it gives a resource per
integration (`resources`), a factory that builds an integration's assets, job, checks, schedule and
sensors (`factory.build_integration_defs`) and a translator naming them (`translator`).
`build_defs()` builds every discovered integration's definitions plus what they share: the event
cache they start from, the `database` resource, the run-scoped in-memory `io_manager` and the
in-process executor (a submission's three steps are quick and share memory; one subprocess per step
would cost seconds per run). Integration packages never import Dagster.

This module's names (`__all__`) are what the rest of the project uses: `event_importer.runs`
starts and reads runs through `submission_job` and the names of `config` and `metadata`, never
through the modules behind them.
"""

import logging
from collections.abc import Iterable

import dagster as dg

from event_importer.errors import ConfigurationError
from event_importer.framework.discovery import Integration, discover
from event_importer.orchestration.assets import EVENT_CACHE
from event_importer.orchestration.config import (
    TAG_DRY_RUN,
    TAG_INTEGRATION,
    TAG_LANE,
    TAG_OWNER,
    TAG_SELECTOR,
    TAG_SHARD,
    TAG_SUBMISSION,
    TAG_TRIGGER,
    TRIGGERS,
    ShardConfig,
    SubmitConfig,
    job_name,
    lane,
)
from event_importer.orchestration.factory import build_integration_defs
from event_importer.orchestration.jobs import SubmissionJob, submission_job, submitted_config
from event_importer.orchestration.metadata import PROGRESS_METADATA, SKIPPED_METADATA
from event_importer.orchestration.resources import database_resource, run_memory_io_manager
from event_importer.orchestration.translator import STEPS, IntegrationTranslator

logger = logging.getLogger(__name__)


def shared_defs() -> dg.Definitions:
    """What every integration's graph needs: the event cache it starts from, the database, the IO
    manager and the executor."""
    return dg.Definitions(
        assets=[EVENT_CACHE],
        resources={"database": database_resource(), "io_manager": run_memory_io_manager},
        executor=dg.in_process_executor,
    )


def integration_defs(integration: Integration) -> dg.Definitions:
    """The definitions of one integration, loadable on their own (what tests run).

    Raises:
        ConfigurationError: the integration's settings are invalid.
    """
    return dg.Definitions.merge(shared_defs(), build_integration_defs(integration))


def integrations_defs(integrations: Iterable[Integration] | None = None) -> dg.Definitions:
    """The definitions of `integrations` (default: every discovered one), without the shared ones.

    An integration that failed to load, or whose settings are invalid, is left out and logged as an
    error: discovery's policy is that one broken integration leaves the others working
    (`event-importer integrations list` and `GET /health` name it too).
    """
    if integrations is None:
        found = discover()
        for failure in found.failures:
            logger.error(
                "integration %s (%s) failed to load; it has no assets: %s", failure.name, failure.source, failure.error
            )
        integrations = found.integrations.values()
    parts = []
    for integration in integrations:
        try:
            parts.append(build_integration_defs(integration))
        except ConfigurationError as exc:
            logger.error("integration %s is misconfigured; it has no assets: %s", integration.name, exc)
    return dg.Definitions.merge(*parts)


def build_defs(integrations: Iterable[Integration] | None = None) -> dg.Definitions:
    """The shared definitions and those of `integrations` (default: every discovered one)."""
    return dg.Definitions.merge(shared_defs(), integrations_defs(integrations))


__all__ = [
    "EVENT_CACHE",
    "PROGRESS_METADATA",
    "SKIPPED_METADATA",
    "STEPS",
    "TAG_DRY_RUN",
    "TAG_INTEGRATION",
    "TAG_LANE",
    "TAG_OWNER",
    "TAG_SELECTOR",
    "TAG_SHARD",
    "TAG_SUBMISSION",
    "TAG_TRIGGER",
    "TRIGGERS",
    "IntegrationTranslator",
    "ShardConfig",
    "SubmissionJob",
    "SubmitConfig",
    "build_defs",
    "build_integration_defs",
    "integration_defs",
    "integrations_defs",
    "job_name",
    "lane",
    "shared_defs",
    "submission_job",
    "submitted_config",
]
