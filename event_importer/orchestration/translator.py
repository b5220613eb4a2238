"""How an integration's names become Dagster's: asset keys, group, tags and job name.

Dagster's integration libraries keep this mapping in one translator class (`DagsterDbtTranslator`,
`DagsterDltTranslator`) that the asset factory asks; so does this one. Every name it gives is
user-visible (the UI's bookmarks, the instance's run history and sensor state depend on them), so a
change here is a migration, not a refactor.
"""

from dataclasses import dataclass

import dagster as dg

from event_importer.orchestration.config import TAG_INTEGRATION, job_name

# The integration's assets, in the order a run materializes them.
STEPS = ("selected_events", "payloads", "submission_results")


@dataclass(frozen=True)
class IntegrationTranslator:
    """The Dagster names of one integration, e.g. `ticketfairy/selected_events` in group `ticketfairy`."""

    service: str

    def asset_key(self, step: str) -> dg.AssetKey:
        if step not in STEPS:
            raise ValueError(f"{self.service}: no step {step!r}; the steps are {', '.join(STEPS)}")
        return dg.AssetKey([self.service, step])

    @property
    def group_name(self) -> str:
        return self.service

    @property
    def tags(self) -> dict[str, str]:
        """The tags of each of its assets."""
        return {TAG_INTEGRATION: self.service}

    @property
    def job_name(self) -> str:
        return job_name(self.service)
