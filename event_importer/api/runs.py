"""Submission runs over HTTP: starting them (202 with the URLs to watch), waiting for them, `GET /runs/<id>`.

The API never executes a run: it queues it on the instance (`event_importer.run_queue`) and answers
at once. `?wait=true` holds the request until the runs end, at most `EVENT_IMPORTER_API_WAIT_TIMEOUT`
seconds; after that the answer is the same 202 as without waiting.
"""

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse

from event_importer.api.models import UNAUTHORIZED, RunReport, answer
from event_importer.api.security import require_token
from event_importer.orchestration import job_name
from event_importer.run_queue import QueueServer
from event_importer.runs import (
    PreparedSubmission,
    RunSummary,
    follow_runs,
    merge_summaries,
    run_report,
    summarize_trace,
)
from event_importer.settings import get_settings


def queue_server(request: Request) -> QueueServer:
    """The app's queue server (one per app: its code server has the environment the app started with)."""
    server: QueueServer = request.app.state.queue_server
    return server


def run_url(run_id: str) -> str:
    return f"/runs/{run_id}"


def summary_json(summary: RunSummary) -> dict[str, Any]:
    """A finished submission (`runs.RunSummary`) as the API shows it."""
    return {
        "run_id": summary.run_id,
        "run_ids": summary.run_ids,
        "success": summary.success,
        "error": summary.error,
        "configuration_error": summary.configuration_error,
        "counts": summary.counts,
        "results": [r.to_json() for r in summary.results],
    }


def accepted(run_ids: list[str], statuses: dict[str, str]) -> JSONResponse:
    """202: the runs are queued or running; where to watch them."""
    body = {
        "run_id": run_ids[0],
        "run_ids": run_ids,
        "status": statuses[run_ids[0]],
        "statuses": statuses,
        "url": run_url(run_ids[0]),
        "urls": [run_url(run_id) for run_id in run_ids],
    }
    return JSONResponse(body, status_code=status.HTTP_202_ACCEPTED, headers={"Location": run_url(run_ids[0])})


def submit_runs(server: QueueServer, prepared: PreparedSubmission, *, wait: bool) -> JSONResponse:
    """Start a prepared submission; answer 202, or with `wait` its summary once every run has ended.

    A waited-for run that failed on its configuration (nothing sent) answers 422 with its error and run id.
    """
    dispatcher = server.dispatcher()
    # Queued only: the server's thread launches them, so the answer never waits for a run's process to start.
    run_ids = dispatcher.create_runs(job_name(prepared.integration.name), prepared.runs)
    server.watch(run_ids)
    instance = dispatcher.instance
    if wait:
        traces = follow_runs(instance, run_ids, timeout=get_settings().api_wait_timeout)
        if all(trace.finished for trace in traces.values()):
            summary = merge_summaries([summarize_trace(prepared.integration, traces[r]) for r in run_ids])
            if summary.configuration_error:
                return JSONResponse(
                    {"detail": summary.error, "run_id": summary.run_id},
                    status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                )
            return JSONResponse(summary_json(summary))
    statuses = {}
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        statuses[run_id] = run.status.value if run is not None else "UNKNOWN"
    return accepted(run_ids, statuses)


def runs_router() -> APIRouter:
    """`GET /runs/<id>`: a submission run's status and, once it has ended, its counts and outcomes."""
    router = APIRouter(tags=["runs"], dependencies=[Depends(require_token)], responses=UNAUTHORIZED)

    @router.get(
        "/runs/{run_id}",
        response_model=RunReport,
        responses={404: answer("No submission run has that id.")},
    )
    def get_run(run_id: str, request: Request) -> dict[str, Any]:
        """The run's status; when it has ended, also success, error, counts and per-event outcomes."""
        instance = queue_server(request).instance()
        try:
            run, summary = run_report(instance, run_id)
        except LookupError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no submission run {run_id}") from None
        body: dict[str, Any] = {
            "run_id": run.run_id,
            "service": run.tags.get("event-importer/integration"),
            "status": run.status.value,
            "finished": summary is not None,
            "tags": {k: v for k, v in run.tags.items() if k.startswith("event-importer/")},
        }
        if summary is not None:
            body |= summary_json(summary)
        return body

    return router
