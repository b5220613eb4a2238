"""The routes every integration gets, unless its own `routes.py` provides a `router`."""

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import JSONResponse
from sqlalchemy import select

from event_importer.api.models import (
    TOO_LARGE,
    UNAUTHORIZED,
    IntegrationStatus,
    Problem,
    RefusedRun,
    RunResult,
    SubmitRequest,
    answer,
    submit_request_model,
)
from event_importer.api.security import require_token
from event_importer.db.engine import get_database
from event_importer.errors import EventImporterError, RunInProgressError
from event_importer.integrations.base import BaseSubmitter
from event_importer.integrations.discovery import Integration
from event_importer.settings import get_settings
from event_importer.submission_request import check_sendable


def integration_router(integration: Integration | str) -> APIRouter:
    """`POST /integrations/<name>/submit` and `GET /integrations/<name>/status`.

    An integration's own `routes.py` can start from this router and add routes to it; they need the
    token and document their 401 like these.
    """
    if isinstance(integration, str):
        from event_importer.integrations.discovery import discover

        integration = discover().get(integration)
    name = integration.name
    selectors = integration.create_submitter().selectors
    request_model = submit_request_model(name, {key: s.needs_url for key, s in selectors.items()})
    defaults = request_model()  # what an empty body, or none, means
    router = APIRouter(
        prefix=f"/integrations/{name}", tags=[name], dependencies=[Depends(require_token)], responses=UNAUTHORIZED
    )

    # Plain `def` endpoints: FastAPI runs them in worker threads, outside the event loop, which
    # Dagster's in-process execution needs (it runs its own loop for the async client).
    @router.post(
        "/submit",
        response_model=RunResult,
        responses={
            **TOO_LARGE,
            404: answer("The `url` selector names a source URL that no event in the cache has; no run was started."),
            409: answer("A run of this integration is already active; wait for it to finish."),
            422: answer(
                "The request cannot become a run, and none was started: a field is invalid (`detail` lists each), "
                "or the destination lacks a setting a real submission needs (`detail` names it; a dry run works). "
                "With a `run_id`, the run itself found the setting missing.",
                Problem | RefusedRun,
            ),
        },
    )
    def submit(body: request_model = defaults) -> Any:  # type: ignore[valid-type]
        """Run the integration's Dagster job and answer with the run id, counts and per-event outcomes.

        Every field is optional: an empty body, or none, submits the unsubmitted events for real.
        """
        from event_importer.runs import submit_through_dagster

        request: SubmitRequest = body
        try:
            # Refused here, not by the run's first step, so that a refusal leaves no run behind.
            submitter = integration.create_submitter()
            check_sendable(name, submitter, request.dry_run)
            if request.url is not None and not _selects_any(submitter, request.selector, request.url):
                raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no event in the cache has that source_url")
            summary = submit_through_dagster(
                name,
                selector=request.selector,
                url=request.url,
                dry_run=request.dry_run,
                limit=request.limit,
                trigger="api",
            )
        except RunInProgressError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
        except EventImporterError as exc:
            # A missing or invalid setting, or a request the run's own validation refuses.
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
        if summary.configuration_error:
            return JSONResponse(
                {"detail": summary.error, "run_id": summary.run_id}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
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
                    "attempt": r.attempt,
                    "http_status": r.http_status,
                    "error": r.error,
                }
                for r in summary.results
            ],
        }

    @router.get("/status", response_model=IntegrationStatus)
    def status_() -> dict[str, Any]:
        """Counts of events by their latest submission state for this integration."""
        from event_importer.states import integration_status

        return integration_status(name)

    return router


def _selects_any(submitter: BaseSubmitter, selector: str, url: str) -> bool:
    """Whether the selector, given `url`, picks any event: what the run would find, asked before starting it."""
    database = get_database(get_settings().resolved_database_url)
    with database.session() as session:
        statement = submitter.get_selector(selector).statement(submitter.service_name, url=url)
        return bool(session.scalar(select(statement.exists())))
