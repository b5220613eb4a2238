"""The routes every integration gets, unless its own `routes.py` provides a `router`."""

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from event_importer.api.security import require_token
from event_importer.errors import EventImporterError, UnknownSelectorError, UsageError
from event_importer.integrations.discovery import Integration


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    selector: str = Field(default="unsubmitted", description="One of the integration's selectors.")
    url: str | None = Field(default=None, description="Source URL, for the 'url' selector.")
    dry_run: bool = Field(default=False, description="Transform and record, but send nothing.")
    limit: int | None = Field(default=None, ge=1, description="Submit at most this many events.")


def integration_router(integration: Integration | str) -> APIRouter:
    """`POST /integrations/<name>/submit` and `GET /integrations/<name>/status`.

    An integration's own `routes.py` can start from this router and add routes to it.
    """
    if isinstance(integration, str):
        from event_importer.integrations.discovery import discover

        integration = discover().get(integration)
    router = APIRouter(prefix=f"/integrations/{integration.name}", tags=[integration.name])
    name = integration.name

    # Plain `def` endpoints: FastAPI runs them in worker threads, outside the event loop, which
    # Dagster's in-process execution needs (it runs its own loop for the async client).
    @router.post("/submit", dependencies=[Depends(require_token)])
    def submit(request: SubmitRequest) -> dict[str, Any]:
        """Run the integration's Dagster job and answer with the run id, counts and per-event outcomes."""
        from event_importer.runs import submit_through_dagster

        try:
            summary = submit_through_dagster(
                name,
                selector=request.selector,
                url=request.url,
                dry_run=request.dry_run,
                limit=request.limit,
                trigger="api",
            )
        except (UnknownSelectorError, UsageError) as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
        except EventImporterError as exc:
            # Misconfigured, or another run of this integration is active: the request was fine.
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
        if summary.configuration_error:
            raise HTTPException(
                status.HTTP_409_CONFLICT, detail={"run_id": summary.run_id, "error": summary.error}
            )
        return {
            "run_id": summary.run_id,
            "success": summary.success,
            "error": summary.error,
            "counts": summary.counts,
            "results": [
                {
                    "event_id": r.event_id,
                    "source_url": r.source_url,
                    "title": r.title,
                    "outcome": r.outcome.value,
                    "operation": r.operation.value,
                    "attempt": r.attempt,
                    "http_status": r.http_status,
                    "error": r.error,
                }
                for r in summary.results
            ],
        }

    @router.get("/status", dependencies=[Depends(require_token)])
    def status_() -> dict[str, Any]:
        """Counts of events by their latest submission state for this integration, and what the
        destination does for an update, a cancellation and a removal (`lifecycle`)."""
        from event_importer.states import integration_status

        lifecycle = integration.create_submitter().lifecycle_rules().describe()
        return {**integration_status(name), "lifecycle": lifecycle}

    return router
