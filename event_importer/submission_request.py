"""What a request for a submission may ask, checked the same way wherever it comes from.

The run configuration (UI, schedules, sensors, CLI) and the HTTP API both use these, and they
import nothing heavy, so the API can check a request before it loads Dagster.
"""

from event_importer.framework.submitter import BaseSubmitter

# A run's `limit` stays well inside every database's integer range (a larger one is no limit at all).
MAX_LIMIT = 1_000_000


def check_sendable(submitter: BaseSubmitter, dry_run: bool) -> None:
    """Raise `ConfigurationError` naming the settings a real (not dry) run still needs.

    The run's first step checks this, whoever launched it; the API checks it before starting a run.
    The message is the submitter's own (`check_configured`), which names the integration.
    """
    if not dry_run:
        submitter.check_configured()
