"""One schedule per integration: on the integration's cron (UTC), submit the unsubmitted events, and
retry the failed events due for it (see `sensors.retry_request`).

Created stopped: nothing is sent until a user starts it in the UI (or `dagster schedule start`).
"""

from typing import Any

import dagster as dg

from event_importer.errors import ConfigurationError
from event_importer.framework.submitter import BaseSubmitter
from event_importer.orchestration.jobs import SubmissionJob
from event_importer.orchestration.resources import DatabaseResource
from event_importer.orchestration.sensors import RETRY_SELECTOR, retry_request


def schedule_name(service: str) -> str:
    return f"{service}_submit_schedule"


def build_schedule(
    submission: SubmissionJob, job: Any, cron: str, submitter: BaseSubmitter | None = None
) -> dg.ScheduleDefinition:
    """The integration's schedule, from its `<PREFIX>SCHEDULE` setting.

    Each tick requests a run of the unsubmitted events and, when `submitter` has a `retry` selector
    and failed events are due, a second run retrying them.

    Raises:
        ConfigurationError: the cron expression is not valid.
    """
    service = submission.service
    config = submission.config_class(selector="unsubmitted")
    retry_selector = submitter.selectors.get(RETRY_SELECTOR) if submitter is not None else None

    def submit_schedule(
        context: dg.ScheduleEvaluationContext, database: DatabaseResource
    ) -> list[dg.RunRequest]:
        tags = submission.tags(config, "schedule")
        # Dagster wants a run key on each request of a tick with several: one per scheduled time.
        when = context.scheduled_execution_time
        key = f"{service}:{config.selector}:{when.isoformat() if when else 'manual'}"
        requests = [dg.RunRequest(run_key=key, run_config=submission.run_config(config), tags=tags)]
        with database.get_database().session() as session:
            retry = retry_request(session, submission, retry_selector, "schedule")
        if retry is not None:
            requests.append(retry)
        return requests

    try:
        return dg.schedule(
            name=schedule_name(service),
            job=job,
            cron_schedule=cron,
            execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.STOPPED,
            description=f"Submit unsubmitted events to {service} on its schedule ({cron}, UTC), "
            "and retry failed events that are due.",
        )(submit_schedule)
    except dg.DagsterInvalidDefinitionError:
        raise ConfigurationError(
            f"{service}: the schedule setting is not a valid cron expression: {cron!r}"
        ) from None
