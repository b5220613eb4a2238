"""The routes every integration gets, unless its own `routes.py` provides a `router`."""

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from event_importer.api.security import require_token
from event_importer.errors import EventImporterError, UnknownSelectorError, UsageError
from event_importer.integrations.discovery import Integration
from event_importer.settings import MAX_SHARDS


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    selector: str = Field(default="unsubmitted", description="One of the integration's selectors.")
    url: str | None = Field(default=None, description="Source URL, for the 'url' selector.")
    dry_run: bool = Field(default=False, description="Transform and record, but send nothing.")
    limit: int | None = Field(default=None, ge=1, description="Submit at most this many events (per shard).")
    shards: int = Field(
        default=1, ge=1, le=MAX_SHARDS, description="Split the events into this many runs that run side by side."
    )


def integration_router(integration: Integration | str) -> APIRouter:
    """`POST /integrations/<name>/submit` (202, see `event_importer.api.runs`) and `GET /integrations/<name>/status`.

    An integration's own `routes.py` can start from this router and add routes to it.
    """
    if isinstance(integration, str):
        from event_importer.integrations.discovery import discover

        integration = discover().get(integration)
    router = APIRouter(prefix=f"/integrations/{integration.name}", tags=[integration.name])
    name = integration.name

    # Plain `def` endpoints: FastAPI runs them in worker threads, so waiting for a run blocks no other request.
    @router.post(
        "/submit",
        dependencies=[Depends(require_token)],
        status_code=status.HTTP_202_ACCEPTED,
        response_model=None,
    )
    def submit(
        request: SubmitRequest,
        http: Request,
        wait: bool = Query(default=False, description="Answer once the runs have ended (bounded; else 202)."),
    ) -> JSONResponse:
        """Queue the integration's Dagster job (one run per shard) and answer 202 with the URLs to watch.

        With `?wait=true`, answer 200 with the run id, counts and per-event outcomes once the runs end.
        """
        from event_importer.api.runs import queue_server, submit_runs
        from event_importer.runs import prepare_submission

        try:
            prepared = prepare_submission(
                name,
                selector=request.selector,
                url=request.url,
                dry_run=request.dry_run,
                limit=request.limit,
                shards=request.shards,
                trigger="api",
            )
            return submit_runs(queue_server(http), prepared, wait=wait)
        except (UnknownSelectorError, UsageError) as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
        except EventImporterError as exc:
            # Misconfigured: the request was fine.
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None

    @router.get("/status", dependencies=[Depends(require_token)])
    def status_() -> dict[str, Any]:
        """Counts of events by their latest submission state for this integration."""
        from event_importer.runs import integration_status

        return integration_status(name)

    return router
