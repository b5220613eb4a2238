"""Bearer-token check and request size limit for the API.

Both are plain ASGI middlewares, so they act before FastAPI reads the body: a request without the
token is refused with 401 whatever its body holds (malformed JSON included), and a body over the
limit is refused with 413 whether it declares its length or arrives chunked. `require_token` does
the same check as a dependency, so each protected route documents the bearer scheme and its 401.
"""

import hmac
from collections.abc import Iterable
from typing import Annotated

from fastapi import HTTPException, Request, Security, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from event_importer.settings import get_settings

UNAUTHORIZED = "missing or wrong bearer token"
_bearer = HTTPBearer(
    auto_error=False,
    description="`EVENT_IMPORTER_API_TOKEN`, when the server sets one (every route but /health and the docs pages).",
)


def token_accepted(authorization: str | None) -> bool:
    """Whether an `Authorization` header value carries the configured token (compared in constant time).

    Always true when no token is configured.
    """
    expected = get_settings().api_token
    if expected is None or not expected.get_secret_value():
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def _unauthorized() -> JSONResponse:
    return JSONResponse(
        {"detail": UNAUTHORIZED},
        status_code=status.HTTP_401_UNAUTHORIZED,
        headers={"WWW-Authenticate": "Bearer"},
    )


def require_token(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
) -> None:
    """When EVENT_IMPORTER_API_TOKEN is set, demand it as a bearer token.

    `TokenGate` has already refused a request without it; as a dependency this puts the bearer scheme
    in the route's OpenAPI description, and keeps a route safe in an app built without the gate.
    """
    if not token_accepted(request.headers.get("authorization")):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


class TokenGate:
    """Refuse every HTTP request without the token, before its body is read, except on public paths.

    Public: exactly the paths in `public`, and anything under the prefixes in `public_prefixes`.
    Everything else, routes added later by integrations included, needs the token when one is set.
    """

    def __init__(self, app: ASGIApp, public: Iterable[str] = (), public_prefixes: Iterable[str] = ()) -> None:
        self.app = app
        self.public = frozenset(public)
        self.public_prefixes = tuple(public_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._is_public(scope["path"]):
            if not token_accepted(Headers(scope=scope).get("authorization")):
                await _unauthorized()(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _is_public(self, path: str) -> bool:
        return path in self.public or path.startswith(self.public_prefixes)


class BodySizeLimit:
    """Refuse request bodies over the limit with 413: by Content-Length up front, or by counting as they stream.

    The body passes through to the endpoint untouched (chunked too). When the count passes the limit
    the endpoint's read fails; whatever the app answers to that failure (FastAPI turns it into a
    400 "error parsing the body") is dropped, and the client gets the 413 instead.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(scope, receive, send)
            return
        received = 0
        over = False
        answered = False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if over:
                return  # the app's answer to a body it could not read whole; the 413 replaces it
            answered = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not answered:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.max_bytes} bytes"},
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    """Raised inside the app when the streamed body passes the limit (before any response started)."""
