"""One asset graph, job, schedule and sensors per discovered integration (a new integration is one
folder or one entry point, and appears here with no Dagster code of its own)."""

import dagster as dg

from event_importer.orchestration import integrations_defs


@dg.definitions
def integrations() -> dg.Definitions:
    return integrations_defs()
