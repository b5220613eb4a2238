"""The Dagster layer: one asset graph per discovered integration, plus what they share.

`build_defs()` builds the project's `dg.Definitions`: for each integration the graph from
`factory.build_integration_defs`, and once the shared `database` resource, the run-scoped
`io_manager` and the in-process executor (a submission's three steps are quick and share memory;
one subprocess per step would cost seconds per run). Integration packages never import Dagster.
"""

import logging
from collections.abc import Iterable

import dagster as dg

from event_importer.defs.factory import EVENT_CACHE, build_integration_defs
from event_importer.defs.resources import database_resource, run_memory_io_manager
from event_importer.errors import ConfigurationError
from event_importer.framework.discovery import Integration, discover

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
    """The definitions of one integration, loadable on their own (what the CLI and API run).

    Raises:
        ConfigurationError: the integration's settings are invalid.
    """
    return dg.Definitions.merge(shared_defs(), build_integration_defs(integration))


def build_defs(integrations: Iterable[Integration] | None = None) -> dg.Definitions:
    """The definitions for `integrations` (default: every discovered one).

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
    parts = [shared_defs()]
    for integration in integrations:
        try:
            parts.append(build_integration_defs(integration))
        except ConfigurationError as exc:
            logger.error("integration %s is misconfigured; it has no assets: %s", integration.name, exc)
    return dg.Definitions.merge(*parts)


__all__ = ["build_defs", "build_integration_defs", "integration_defs", "shared_defs"]
