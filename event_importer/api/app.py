"""The FastAPI application: health, event loading, and each integration's routes."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from event_importer import __version__
from event_importer.api.routes import integration_router
from event_importer.api.runs import runs_router
from event_importer.api.security import BodySizeLimit, require_token
from event_importer.db.engine import get_database
from event_importer.events.loader import load_events, parse_records
from event_importer.integrations.discovery import discover
from event_importer.run_queue import QueueServer
from event_importer.settings import get_settings


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    # The code server waits for the runs it executes; closing it here does not cut them short.
    app.state.queue_server.close()


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(title="event-importer", version=__version__, lifespan=_lifespan)
    app.state.queue_server = QueueServer()
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Name each bad field and why, without echoing the submitted values back.
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.get("/health")
    def health() -> dict[str, Any]:
        found = discover()
        return {
            "status": "ok",
            "version": __version__,
            "integrations": sorted(found.integrations),
            "failed_integrations": sorted(f.name for f in found.failures),
        }

    @app.post("/events", dependencies=[Depends(require_token)])
    async def post_events(request: Request) -> JSONResponse:
        """Load events: a JSON object, a JSON array, or JSON Lines. Invalid records are reported, valid ones load."""
        raw = await request.body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="body is not UTF-8 text") from None
        database = get_database(get_settings().resolved_database_url)
        from starlette.concurrency import run_in_threadpool

        report = await run_in_threadpool(load_events, database, parse_records(text, "body"))
        body = {**report.counts, "errors": [{"location": i.location, "reason": i.reason} for i in report.invalid]}
        loaded = report.new + report.updated + report.unchanged
        code = status.HTTP_200_OK if not report.invalid else (
            status.HTTP_207_MULTI_STATUS if loaded else status.HTTP_422_UNPROCESSABLE_CONTENT
        )
        return JSONResponse(body, status_code=code)

    for integration in discover().integrations.values():
        app.include_router(integration.load_router() or integration_router(integration))
    app.include_router(runs_router())
    return app
