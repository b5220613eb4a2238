"""An integration's submission job, and how whoever starts or reads its runs addresses it.

Dagster keys an asset's run configuration by the name of the op behind it (`ops: {<op>: {config:
...}}`), a name Dagster derives from the asset key. `SubmissionJob` takes that name from the built
`selected_events` asset (`AssetsDefinition.op.name`), so the sensors, the schedule and
`event_importer.runs` build and read run configs without knowing Dagster's naming rule.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from event_importer.framework.discovery import Integration
from event_importer.framework.submitter import BaseSubmitter
from event_importer.orchestration.assets import selected_events_asset
from event_importer.orchestration.config import (
    TAG_INTEGRATION,
    TAG_LANE,
    TAG_TRIGGER,
    SubmitConfig,
    build_config_class,
    lane,
    run_tags,
    service_tags,
)
from event_importer.orchestration.translator import IntegrationTranslator


@dataclass(frozen=True)
class SubmissionJob:
    """The submission job of one integration: its name, its run-config class and the op that takes it."""

    service: str
    name: str
    config_class: type[SubmitConfig]
    #: The op of `<service>/selected_events`, the asset whose `config` parameter takes the run config.
    config_op: str

    @classmethod
    def of(
        cls, translator: IntegrationTranslator, config_class: type[SubmitConfig], first_asset: dg.AssetsDefinition
    ) -> "SubmissionJob":
        """The job whose run configuration (a `config_class`) `first_asset`, the built `selected_events`, takes."""
        return cls(translator.service, translator.job_name, config_class, first_asset.op.name)

    def run_config(self, config: SubmitConfig) -> dict[str, Any]:
        """The job's run config for `config`, leaving out unset optional fields."""
        return {"ops": {self.config_op: {"config": config.model_dump(exclude_none=True)}}}

    def tags(self, config: SubmitConfig, trigger: str) -> dict[str, str]:
        """The tags of a run of `config` started by `trigger`: its integration and lane, who started it and how."""
        return {**service_tags(self.service, config), **run_tags(config, trigger)}


def submission_job(integration: Integration, submitter: BaseSubmitter | None = None) -> SubmissionJob:
    """The integration's `SubmissionJob`, as its definitions build it (settings read, secrets not).

    Args:
        integration: the discovered integration.
        submitter: its submitter, when the caller has one already (its selectors name the config's choices).
    """
    submitter = submitter or integration.create_submitter()
    translator = IntegrationTranslator(integration.name)
    config_class = build_config_class(integration.name, list(submitter.selectors))
    return SubmissionJob.of(translator, config_class, selected_events_asset(translator, config_class))


def config_op(translator: IntegrationTranslator) -> str:
    """The op taking the run configuration of the integration's job, read from its built first asset."""
    return selected_events_asset(translator, SubmitConfig).op.name


def submitted_config(service: str, run_config: Mapping[str, Any]) -> dict[str, Any]:
    """The `SubmitConfig` fields a run of `service`'s job was started with (defaults left out).

    Needs neither the integration's settings nor its selectors, so a run that failed on bad settings
    can still be read.
    """
    ops: Mapping[str, Any] = run_config.get("ops") or {}
    return dict((ops.get(config_op(IntegrationTranslator(service))) or {}).get("config") or {})


def submit_job(translator: IntegrationTranslator, description: str) -> Any:
    """The job running the integration's group in one process (see `resources` on why one process)."""
    service = translator.service
    return dg.define_asset_job(
        translator.job_name,
        selection=dg.AssetSelection.groups(translator.group_name),
        description=description,
        executor_def=dg.in_process_executor,
        # Runs started from the UI keep `ui`; the CLI, API, schedule and sensor set their own.
        tags={TAG_INTEGRATION: service, TAG_LANE: lane(service), TAG_TRIGGER: "ui"},
    )
