"""What every integration's asset graph shares: the event cache it starts from, the `database`
resource, the run-scoped in-memory IO manager and the in-process executor."""

import dagster as dg

from event_importer.orchestration import shared_defs


@dg.definitions
def shared() -> dg.Definitions:
    return shared_defs()
