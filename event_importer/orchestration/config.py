"""Run configuration of a submission job: one typed `dg.Config` class per integration.

The selector is a `Literal` of that integration's selector names, so Dagster's schema turns it into
an enum: the launchpad offers the valid names, and a wrong one fails at launch, before any run is
recorded, with `... not in enum type Literal['all', 'changed', ...] got bogus`. Pydantic constraints
(`limit >= 1`) are not part of Dagster's schema, so callers outside the UI validate by building the
class first (`runs.submit_through_dagster` does).
"""

from typing import Any, Literal

import dagster as dg
from pydantic import Field, model_validator

from event_importer.settings import MAX_SHARDS
from event_importer.submission_request import MAX_LIMIT


class ShardConfig(dg.Config):
    """One shard of a submission split `count` ways: the events whose id modulo `count` is `index`."""

    index: int = Field(ge=0, description="This run's shard, from 0 to count - 1.")
    count: int = Field(ge=1, le=MAX_SHARDS, description="How many shards the submission is split into.")

    @model_validator(mode="after")
    def _index_below_count(self) -> "ShardConfig":
        if self.index >= self.count:
            raise ValueError(f"shard index {self.index} is not below the shard count {self.count}")
        return self


class SubmitConfig(dg.Config):
    """The fields every integration's run configuration has; `selector` is added per integration."""

    url: str | None = Field(default=None, description="Source URL of one event, for the 'url' selector.")
    dry_run: bool = Field(
        default=False, description="Select, transform and record dry-run outcomes, but send nothing."
    )
    limit: int | None = Field(
        default=None, ge=1, le=MAX_LIMIT, description="Submit at most this many events (lowest ids first; per shard)."
    )
    shard: ShardConfig | None = Field(
        default=None, description="Submit only one shard of the selected events (see `submit --shards`)."
    )

    # Set on each per-integration subclass; declared here so every subclass reads the same.
    selector: str = "unsubmitted"


def config_class_name(service: str) -> str:
    return "".join(part.capitalize() for part in service.split("_")) + "SubmitConfig"


def build_config_class(service: str, selector_names: list[str], default: str = "unsubmitted") -> type[SubmitConfig]:
    """A `SubmitConfig` subclass whose `selector` accepts only `selector_names`.

    Args:
        service: the integration's name, used for the class name shown in the launchpad.
        selector_names: the integration's selectors.
        default: the selector used when the run config names none.
    """
    names = tuple(sorted(selector_names))
    if default not in names:
        raise ValueError(f"{service}: default selector {default!r} is not one of {', '.join(names)}")
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__doc__": f"Run configuration of {service}_submit_job.",
        "__annotations__": {"selector": Literal[names]},
        "selector": Field(
            default=default, description=f"Which events to submit: one of {', '.join(names)}."
        ),
    }
    return type(config_class_name(service), (SubmitConfig,), namespace)


# Run tags. Every submission run carries them, whoever started it.
TAG_INTEGRATION = "event-importer/integration"
TAG_TRIGGER = "event-importer/trigger"
TAG_SELECTOR = "event-importer/selector"
TAG_DRY_RUN = "event-importer/dry_run"
# `host:pid` of the process running an in-process run, so a later run can tell it died.
TAG_OWNER = "event-importer/owner"
TRIGGERS = ("cli", "api", "schedule", "sensor", "ui")
# The run queue's per-value limit applies to this tag (dagster.yaml): one run per integration and shard
# at a time, so the shards of one submission run side by side while two submissions take turns.
TAG_LANE = "event-importer/lane"
# `index/count` of a shard run, and the id the shards of one submission share.
TAG_SHARD = "event-importer/shard"
TAG_SUBMISSION = "event-importer/submission"


def job_name(service: str) -> str:
    return f"{service}_submit_job"


def lane(service: str, shard_index: int = 0) -> str:
    """The queue lane of a run: an unsharded run takes shard 0's."""
    return f"{service}/{shard_index}"


def run_tags(config: SubmitConfig, trigger: str) -> dict[str, str]:
    tags = {
        TAG_TRIGGER: trigger,
        TAG_SELECTOR: config.selector,
        TAG_DRY_RUN: str(config.dry_run).lower(),
    }
    if config.shard is not None:
        tags[TAG_SHARD] = f"{config.shard.index}/{config.shard.count}"
    return tags


def service_tags(service: str, config: SubmitConfig) -> dict[str, str]:
    """The tags that place a run of `service` in the queue: its integration and its lane."""
    return {TAG_INTEGRATION: service, TAG_LANE: lane(service, config.shard.index if config.shard else 0)}
