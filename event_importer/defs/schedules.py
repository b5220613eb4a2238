"""One schedule per integration: submit the unsubmitted events on the integration's cron (UTC).

Created stopped: nothing is sent until a user starts it in the UI (or `dagster schedule start`).
"""

from typing import Any

import dagster as dg

from event_importer.defs.config import SubmitConfig, run_config, run_tags, service_tags
from event_importer.errors import ConfigurationError


def schedule_name(service: str) -> str:
    return f"{service}_submit_schedule"


def build_schedule(
    service: str, job: Any, cron: str, config_class: type[SubmitConfig]
) -> dg.ScheduleDefinition:
    """The integration's schedule, from its `<PREFIX>SCHEDULE` setting.

    Raises:
        ConfigurationError: the cron expression is not valid.
    """
    config = config_class(selector="unsubmitted")
    try:
        return dg.ScheduleDefinition(
            name=schedule_name(service),
            job=job,
            cron_schedule=cron,
            execution_timezone="UTC",
            run_config=run_config(service, config),
            tags={**service_tags(service, config), **run_tags(config, "schedule")},
            default_status=dg.DefaultScheduleStatus.STOPPED,
            description=f"Submit unsubmitted events to {service} on its schedule ({cron}, UTC).",
        )
    except dg.DagsterInvalidDefinitionError:
        raise ConfigurationError(
            f"{service}: the schedule setting is not a valid cron expression: {cron!r}"
        ) from None
