"""Bearer-token check and request size limit for the API."""

import hmac
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request, status
from fastapi.responses import JSONResponse
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import Response

from event_importer.settings import get_settings


def require_token(request: Request) -> None:
    """When EVENT_IMPORTER_API_TOKEN is set, demand it as a bearer token (compared in constant time)."""
    expected = get_settings().api_token
    if expected is None or not expected.get_secret_value():
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


class BodySizeLimit(BaseHTTPMiddleware):
    """Refuse bodies over the limit before reading them, by Content-Length or by counting."""

    def __init__(self, app: object, max_bytes: int) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return self._too_large()
        if request.method in ("POST", "PUT", "PATCH") and declared is None:
            size = 0
            chunks = []
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.max_bytes:
                    return self._too_large()
                chunks.append(chunk)
            body = b"".join(chunks)

            async def receive() -> dict[str, object]:
                return {"type": "http.request", "body": body, "more_body": False}

            request = Request(request.scope, receive)
        return await call_next(request)

    def _too_large(self) -> Response:
        return JSONResponse(
            {"detail": f"request body larger than {self.max_bytes} bytes"},
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
