"""The definitions of one integration: `build_integration_defs(integration)`.

Each integration gets `<svc>/selected_events` -> `<svc>/payloads` -> `<svc>/submission_results` in a
group named after it (`assets`), a job `<svc>_submit_job` running them in one process (`jobs`),
asset checks on the results (`checks`), a schedule, a sensor starting runs and one sending alerts
(all stopped until a user starts them), and its client resource. As in Dagster's integration
libraries, the names come from a translator (`IntegrationTranslator`) and the factory only puts the
pieces together.

A factory rather than a `dg.Component`: a Component's instances are declared in `defs.yaml` files,
while integrations are discovered (a folder or an entry point, nothing else to write), and Dagster
keeps factories returning `dg.Definitions` as a supported way to build definitions from code.
"""

import dagster as dg

from event_importer.framework.discovery import Integration
from event_importer.orchestration.alerts import build_alerts_sensor
from event_importer.orchestration.assets import integration_assets
from event_importer.orchestration.config import build_config_class
from event_importer.orchestration.jobs import SubmissionJob, submit_job
from event_importer.orchestration.resources import client_resource, client_resource_key
from event_importer.orchestration.schedules import build_schedule
from event_importer.orchestration.sensors import build_new_events_sensor
from event_importer.orchestration.translator import IntegrationTranslator


def build_integration_defs(integration: Integration, translator: IntegrationTranslator | None = None) -> dg.Definitions:
    """Assets, checks, job, schedule, sensors and client resource of one integration.

    The `database` resource, the `io_manager` and the event cache's spec are shared by all
    integrations and bound once (`event_importer.orchestration.shared_defs`).

    Raises:
        ConfigurationError: the integration's settings are invalid (e.g. its schedule).
    """
    translator = translator or IntegrationTranslator(integration.name)
    # Selector names and the schedule are needed to define the graph; settings are read here, secrets are not bound.
    submitter = integration.create_submitter()
    config_class = build_config_class(integration.name, list(submitter.selectors))
    assets = integration_assets(translator, config_class, submitter)
    submission = SubmissionJob.of(translator, config_class, assets[0])
    about = f"{integration.description} " if integration.description else ""
    job = submit_job(translator, f"{about}Select, transform and submit events to {integration.name}.")
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=[build_schedule(submission, job, submitter.settings.schedule, submitter)],
        sensors=[build_new_events_sensor(submission, job, submitter), build_alerts_sensor(integration, job.name)],
        resources={client_resource_key(integration.name): client_resource(integration)},
    )
