"""The routes every integration gets, unless its own `routes.py` provides a `router`."""

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import select

from event_importer.api.models import (
    TOO_LARGE,
    UNAUTHORIZED,
    IntegrationStatus,
    Problem,
    RefusedRun,
    RunAccepted,
    RunResult,
    SubmitRequest,
    answer,
    submit_request_model,
)
from event_importer.api.security import require_token
from event_importer.db.engine import configured_database
from event_importer.errors import EventImporterError
from event_importer.framework.discovery import Integration
from event_importer.framework.submitter import BaseSubmitter
from event_importer.submission_request import check_sendable


def integration_router(integration: Integration | str) -> APIRouter:
    """`POST /integrations/<name>/submit` (202, see `event_importer.api.runs`) and `GET /integrations/<name>/status`.

    An integration's own `routes.py` can start from this router and add routes to it; they need the
    token and document their 401 like these.
    """
    if isinstance(integration, str):
        from event_importer.framework.discovery import discover

        integration = discover().get(integration)
    name = integration.name
    selectors = integration.create_submitter().selectors
    request_model = submit_request_model(name, {key: s.needs_url for key, s in selectors.items()})
    defaults = request_model()  # what an empty body, or none, means
    router = APIRouter(
        prefix=f"/integrations/{name}", tags=[name], dependencies=[Depends(require_token)], responses=UNAUTHORIZED
    )

    # Plain `def` endpoints: FastAPI runs them in worker threads, so waiting for a run blocks no other request.
    @router.post(
        "/submit",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=RunAccepted,
        responses={
            200: answer("With `?wait=true`, once every run has ended: the counts and each event's outcome.", RunResult),
            **TOO_LARGE,
            404: answer("The `url` selector names a source URL that no event in the cache has; no run was started."),
            422: answer(
                "The request cannot become a run, and none was started: a field is invalid (`detail` lists each), "
                "or the destination lacks a setting a real submission needs (`detail` names it; a dry run works). "
                "With a `run_id` (only with `?wait=true`), the run itself found the setting missing.",
                Problem | RefusedRun,
            ),
        },
    )
    def submit(
        http: Request,
        body: request_model = defaults,  # type: ignore[valid-type]
        wait: bool = Query(default=False, description="Answer once the runs have ended (bounded; else 202)."),
    ) -> JSONResponse:
        """Queue the integration's Dagster job (one run per shard) and answer 202 with the URLs to watch.

        Every field is optional: an empty body, or none, submits the unsubmitted events for real. With
        `?wait=true`, answer 200 with the counts and per-event outcomes once the runs end. A second
        submission of the integration waits in the run queue until the first has finished.
        """
        from event_importer.api.runs import queue_server, submit_runs
        from event_importer.runs import prepare_submission

        request: SubmitRequest = body
        if set(http.query_params) - {"wait"}:
            # Refused like an unknown body field: a misspelt `wait` must not silently mean "don't wait".
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail="unknown query parameter; the only one is `wait`"
            )
        try:
            # Refused here, not by the run's first step, so that a refusal leaves no run behind.
            submitter = integration.create_submitter()
            check_sendable(submitter, request.dry_run)
            if request.url is not None and not _selects_any(submitter, request.selector, request.url):
                raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no event in the cache has that source_url")
            prepared = prepare_submission(
                name,
                selector=request.selector,
                url=request.url,
                dry_run=request.dry_run,
                limit=request.limit,
                shards=request.shards,
                trigger="api",
            )
        except EventImporterError as exc:
            # A missing or invalid setting, or a request the run's own validation refuses.
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
        return submit_runs(queue_server(http), prepared, wait=wait)

    @router.get("/status", response_model=IntegrationStatus)
    def status_() -> dict[str, Any]:
        """Counts of events by their latest submission state for this integration, and what the
        destination does for an update, a cancellation and a removal (`lifecycle`)."""
        from event_importer.states import integration_status

        lifecycle = integration.create_submitter().lifecycle_rules().describe()
        return {**integration_status(integration), "lifecycle": lifecycle}

    return router


def _selects_any(submitter: BaseSubmitter, selector: str, url: str) -> bool:
    """Whether the selector, given `url`, picks any event: what the run would find, asked before starting it."""
    database = configured_database()
    with database.session() as session:
        statement = submitter.get_selector(selector).statement(submitter.service_name, url=url)
        return bool(session.scalar(select(statement.exists())))
