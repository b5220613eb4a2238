"""The FastAPI application: health, event loading, and each integration's routes."""

from typing import Any

from fastapi import Depends, FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from event_importer import __version__
from event_importer.api.history import router as history_router
from event_importer.api.routes import integration_router
from event_importer.api.security import BodySizeLimit, require_token
from event_importer.db.engine import get_database
from event_importer.events.loader import load_events, parse_records
from event_importer.integrations.discovery import discover
from event_importer.settings import get_settings


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(title="event-importer", version=__version__)
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
        database = get_database(get_settings().resolved_database_url)
        from starlette.concurrency import run_in_threadpool

        # Bytes, not text: a record that is not UTF-8 is reported with its position, like any bad record.
        report = await run_in_threadpool(load_events, database, parse_records(raw, "body"))
        body = report.as_json()
        loaded = report.new + report.updated + report.unchanged
        code = status.HTTP_200_OK if not report.invalid else (
            status.HTTP_207_MULTI_STATUS if loaded else status.HTTP_422_UNPROCESSABLE_CONTENT
        )
        return JSONResponse(body, status_code=code)

    for integration in discover().integrations.values():
        app.include_router(integration.load_router() or integration_router(integration))
    app.include_router(history_router)
    return app
