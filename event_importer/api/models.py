"""What the API takes and answers, as models, so that /openapi.json describes every body and status.

Errors have one shape, `{"detail": ...}`: a sentence, or for a request that does not match its
schema, a list naming each bad field and why (never echoing the value). A run started by a request
is named by its `run_id` in every answer about it (`RunAccepted` while it runs, `RunResult` or
`RunReport` once it has ended).
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, create_model, field_validator
from pydantic_core import PydanticCustomError
from pydantic_core.core_schema import ValidationInfo

from event_importer.events.model import check_http_url
from event_importer.framework.lifecycle import Operation
from event_importer.framework.records import Outcome
from event_importer.settings import MAX_SHARDS
from event_importer.states import STATES
from event_importer.submission_request import MAX_LIMIT

# -- errors --------------------------------------------------------------------------------------


class FieldProblem(BaseModel):
    field: str = Field(description="Where the problem is, e.g. `body.limit`.")
    reason: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str | list[FieldProblem] = Field(
        description="A sentence, or for a body that does not match its schema, one entry per bad field."
    )


class RefusedRun(Problem):
    """A request refused by the run it started: a setting went missing after the request was checked."""

    run_id: str = Field(description="The Dagster run that recorded the refusal.")


def answer(description: str, model: Any = Problem) -> dict[str, Any]:
    return {"model": model, "description": description}


Responses = dict[int | str, dict[str, Any]]
UNAUTHORIZED: Responses = {401: answer("`EVENT_IMPORTER_API_TOKEN` is set and the request lacks it (bearer).")}
TOO_LARGE: Responses = {413: answer("The body is over `EVENT_IMPORTER_API_MAX_BODY_BYTES` (declared or chunked).")}


# -- events --------------------------------------------------------------------------------------


class LoadProblem(BaseModel):
    location: str = Field(description="`body:<line>` for JSON Lines, `body[<index>]` for an array, `body` for all.")
    reason: str


class LoadReport(BaseModel):
    """What loading did; every invalid and every duplicate record is named with its position and reason."""

    new: int
    updated: int
    unchanged: int
    invalid: int
    duplicates: int = Field(description="Records whose source_url an earlier record of the body gave; they load.")
    errors: list[LoadProblem] = Field(description="Each invalid record; the records around it load all the same.")
    duplicate_records: list[LoadProblem]


# -- submissions ---------------------------------------------------------------------------------


class SubmitRequest(BaseModel):
    """What to submit; every field has a default, so an empty body (or none) means the defaults.

    Each integration's route takes a subclass whose `selector` is an enum of its own selectors.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    selector: str = Field(default="unsubmitted", description="Which events to submit.")
    url: str | None = Field(
        default=None,
        validate_default=True,
        description="Source URL of one event: required by the `url` selector, refused with any other.",
    )
    dry_run: StrictBool = Field(default=False, description="Select, transform and record, but send nothing.")
    limit: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LIMIT,
        description=f"Submit at most this many events (1 to {MAX_LIMIT:,}), per shard.",
    )
    shards: int = Field(
        default=1,
        ge=1,
        le=MAX_SHARDS,
        description=f"Split the events into this many runs that run side by side (1 to {MAX_SHARDS}).",
    )


def submit_request_model(service: str, selectors: dict[str, bool]) -> type[SubmitRequest]:
    """The `SubmitRequest` of one integration.

    Args:
        service: the integration's name (the model is named after it in OpenAPI).
        selectors: each selector's name, and whether it needs a url.
    """
    names = tuple(sorted(selectors))
    selector_type: Any = Literal[names]
    needing_url = {name for name, needs in selectors.items() if needs}
    with_url = " or ".join(map(repr, sorted(needing_url)))

    def url_goes_with_its_selector(cls: type[SubmitRequest], value: str | None, info: ValidationInfo) -> str | None:
        selector = info.data.get("selector")
        if selector is None:  # the selector itself was invalid, and is reported
            return value
        try:
            value = check_http_url(value)
        except ValueError as exc:
            raise PydanticCustomError("url", str(exc)) from None
        if selector in needing_url and value is None:
            raise PydanticCustomError("url_needed", "the {selector} selector needs a url", {"selector": repr(selector)})
        if selector not in needing_url and value is not None:
            raise PydanticCustomError(
                "url_unexpected", "a url goes only with the {selectors} selector", {"selectors": with_url}
            )
        return value

    title = "".join(part.capitalize() for part in service.split("_"))
    return create_model(
        f"{title}SubmitRequest",
        __base__=SubmitRequest,
        __doc__=f"What to submit to {service}; an empty body (or none) means the defaults.",
        __validators__={"url_goes_with_its_selector": field_validator("url")(url_goes_with_its_selector)},
        selector=(
            selector_type,
            Field(default="unsubmitted", description=f"Which events to submit: one of {', '.join(names)}."),
        ),
    )


class EventResult(BaseModel):
    event_id: int
    source_url: str
    title: str | None
    outcome: Outcome
    operation: Operation = Field(description="What was asked of the destination: create, update, cancel or remove.")
    attempt: int | None = Field(description="The attempt's number for this event and destination.")
    submission_id: int | None = Field(description="The attempt's row in the ledger (see the event's attempts).")
    http_status: int | None = Field(description="The destination's HTTP status, when it answered.")
    error: str | None = Field(description="Why it failed, with the destination's own message when it gave one.")


class RunRef(BaseModel):
    run_id: str = Field(description="The Dagster run (see it in the Dagster UI's run history).")


class RunAccepted(RunRef):
    """Runs queued or running, not yet finished: where to follow them (`GET /runs/<id>`)."""

    run_ids: list[str] = Field(description="Every run of the submission: one per shard.")
    status: str = Field(description="The first run's Dagster status (QUEUED, STARTING, STARTED, ...).")
    statuses: dict[str, str] = Field(description="Each run's Dagster status, by run id.")
    url: str = Field(description="Where to follow the first run until it ends.")
    urls: list[str] = Field(description="Where to follow each run.")


class RunResult(RunRef):
    """A finished submission: its counts and each selected event's outcome (all shards together)."""

    run_ids: list[str] = Field(description="Every run of the submission: one per shard.")
    success: bool = Field(description="Whether the Dagster run succeeded (its steps and blocking checks).")
    error: str | None = Field(description="Why the run failed, when it did.")
    configuration_error: bool = Field(description="Whether it failed on a missing or invalid setting (nothing sent).")
    counts: dict[str, int] = Field(
        description="selected, transformed, invalid, submitted, failed, dry_run, skipped."
    )
    results: list[EventResult]


class RunReport(RunRef):
    """One submission run as `GET /runs/<id>` shows it: its status and, once it has ended, what it did."""

    service: str | None = Field(description="The integration the run submits to.")
    status: str = Field(description="The run's Dagster status (QUEUED, STARTING, STARTED, SUCCESS, FAILURE, ...).")
    finished: bool = Field(description="Whether the run has ended; the fields below are there once it has.")
    tags: dict[str, str] = Field(description="The run's event-importer tags: trigger, selector, shard, lane, ...")
    run_ids: list[str] | None = None
    success: bool | None = None
    error: str | None = None
    configuration_error: bool | None = None
    counts: dict[str, int] | None = None
    results: list[EventResult] | None = None


# One field per state, described where the state is defined, so a new state is documented with it;
# in the order `integration_status` gives them.
_STATUS_FIELDS: dict[str, Any] = {
    "service": (str, ...),
    "events": (int, Field(description="All events in the cache; the exclusive states add up to it.")),
    **{
        name: (int, Field(description=state.description + ("" if state.exclusive else " (overlaps the others)")))
        for name, state in STATES.items()
    },
    "dry_run_only": (int, Field(description="Of `unsubmitted`, those that had dry runs.")),
    "stale_pending": (int, Field(description="Of `pending`, those left by a process that is gone.")),
}
IntegrationStatus = create_model(
    "IntegrationStatus",
    # A count added beside the states reaches clients before this model names it.
    __config__=ConfigDict(extra="allow"),
    __doc__="Events by state, each counted as the selector of the same name would select them.",
    **_STATUS_FIELDS,
)


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    integrations: list[str]
    failed_integrations: list[str] = Field(description="Integrations that failed to load (see the server's log).")
