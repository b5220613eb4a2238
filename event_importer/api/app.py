"""The FastAPI application: health, event loading, each integration's routes, and the docs pages."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from event_importer import __version__
from event_importer.api.docs import add_docs
from event_importer.api.history import router as history_router
from event_importer.api.models import TOO_LARGE, UNAUTHORIZED, Health, LoadReport, Problem, answer
from event_importer.api.routes import integration_router
from event_importer.api.runs import runs_router
from event_importer.api.security import BodySizeLimit, TokenGate, require_token
from event_importer.db.engine import configured_database
from event_importer.environment import conflict_warning, load_env_file
from event_importer.events.loader import load_events, parse_records
from event_importer.events.model import EventData
from event_importer.framework.discovery import discover
from event_importer.run_queue import QueueServer
from event_importer.settings import get_settings

logger = logging.getLogger(__name__)

HEALTH_URL = "/health"
# FastAPI's 400 for a body its JSON decoding raised on (other than malformed JSON, which is a 422).
_FASTAPI_UNREADABLE_BODY = "There was an error parsing the body"
JSON_LINES = "application/x-ndjson"
_EVENTS_BODY = {
    "required": True,
    "description": (
        "Events in the loader's formats: one JSON object, a JSON array of them, or JSON Lines (one object a line). "
        "The format is read from the body itself, whatever the Content-Type. Each record is validated on its own: "
        "the valid ones load, the invalid ones are reported with their position."
    ),
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/EventData"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/EventData"}},
                ]
            }
        },
        JSON_LINES: {"schema": {"type": "string", "description": "One event (a JSON object) per line."}},
    },
}


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    # The code server waits for the runs it executes; closing it here does not cut them short.
    app.state.queue_server.close()


def create_app() -> FastAPI:
    conflicts = load_env_file()
    if conflicts:
        logger.warning(conflict_warning(conflicts))
    settings = get_settings()
    app = FastAPI(
        title="event-importer",
        version=__version__,
        description=(
            "Load events and submit them to each integration's destination through Dagster. "
            "When `EVENT_IMPORTER_API_TOKEN` is set, every route but /health, /docs and /redoc needs it as a "
            "bearer token, /openapi.json included."
        ),
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        lifespan=_lifespan,
    )
    app.state.queue_server = QueueServer()
    public, public_prefixes = add_docs(app)
    # Added last, so it runs first: no request without the token gets as far as sending a body.
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(TokenGate, public=[HEALTH_URL, *public], public_prefixes=public_prefixes)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Name each bad field and why, without echoing the submitted values back.
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(StarletteHTTPException)
    async def _unreadable_body(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers 400 for a JSON body it cannot decode at all (not UTF-8, nested too deep);
        # it is as unprocessable as malformed JSON, which gets 422, and is reported the same way.
        if exc.status_code == status.HTTP_400_BAD_REQUEST and exc.detail == _FASTAPI_UNREADABLE_BODY:
            reason = "not UTF-8 text" if isinstance(exc.__cause__, UnicodeDecodeError) else "not valid JSON"
            return JSONResponse(
                {"detail": [{"field": "body", "reason": reason}]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
            )
        return await http_exception_handler(request, exc)

    @app.get(HEALTH_URL, response_model=Health)
    def health() -> dict[str, Any]:
        """Whether the API is up, its version, and the integrations it found. Needs no token."""
        found = discover()
        return {
            "status": "ok",
            "version": __version__,
            "integrations": sorted(found.integrations),
            "failed_integrations": sorted(f.name for f in found.failures),
        }

    @app.post(
        "/events",
        dependencies=[Depends(require_token)],
        response_model=LoadReport,
        responses={
            207: answer("Some records were invalid: the valid ones loaded, `errors` names the others.", LoadReport),
            **UNAUTHORIZED,
            **TOO_LARGE,
            422: answer("Nothing loaded: every record was invalid (`errors` names each).", LoadReport),
        },
        openapi_extra={"requestBody": _EVENTS_BODY},
    )
    async def post_events(request: Request) -> JSONResponse:
        """Load events, upserted by `source_url`, and answer the counts: new, updated, unchanged, invalid."""
        raw = await request.body()
        database = configured_database()
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
    app.include_router(runs_router())
    _describe_event_data(app)
    return app


def _describe_event_data(app: FastAPI) -> None:
    """Put `EventData` (and the models it uses) into the schema's components, for POST /events' body,
    and describe 422 answers as this app gives them.

    The endpoint reads the body itself, so that one bad record fails alone; FastAPI therefore never
    sees the model and must be told about it.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        event = EventData.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(event.pop("$defs", {}))
        components["EventData"] = event
        _document_validation_errors(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_validation_errors(schema: dict[str, Any]) -> None:
    """Describe FastAPI's default 422 (for any route with parameters) as `Problem`, the shape this app answers.

    Routes that declare their own 422 keep it; this covers the rest, integrations' own routes included.
    """
    default = "#/components/schemas/HTTPValidationError"
    components = schema["components"]["schemas"]
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            content = operation.get("responses", {}).get("422", {}).get("content", {})
            for media in content.values():
                if media.get("schema", {}).get("$ref") == default:
                    media["schema"] = {"$ref": "#/components/schemas/Problem"}
                    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
                    components.update(problem.pop("$defs", {}))
                    components["Problem"] = problem
    if default not in str(schema.get("paths")):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
