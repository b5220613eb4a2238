"""`HttpClient`: the base of every HTTP integration's client, with the resilience they all need.

One `httpx.AsyncClient` per run, on the aiohttp transport (httpx's own connection pool is CPU-bound
at a few hundred requests per second; see benchmarks/README.md). Transient failures (connection
errors, timeouts, 429 and 5xx) are retried with exponential backoff and full jitter, honouring
`Retry-After`, up to `max_attempts` tries; other answers are final. An optional rate limit caps
requests per second across the run, retries included. With a limit store (Redis, `limit_store` in the
options) the rate and the requests in flight are held for every process together (`SharedLimits`),
each attempt taking a slot before it leaves and giving it back at its answer.

Subclasses adapt it through three public hooks rather than the retry loop: `request_headers` adds
headers to every attempt (a signature is then fresh on each retry), `parse_success` turns a 2xx
answer into the recorded response (strict JSON here; override for empty or non-JSON answers), and
`error_hint` appends what usually lies behind an error status to its message.
"""

import asyncio
import email.utils
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import aiohttp
import httpx
from aiolimiter import AsyncLimiter
from httpx_aiohttp import AiohttpTransport
from pydantic import SecretStr

from event_importer import jsonbytes
from event_importer.errors import RejectedSubmissionError, RetryableSubmissionError, SubmissionError
from event_importer.framework.contracts import DEFAULT_OPTIONS, BaseClient, ClientOptions, report_http_status
from event_importer.framework.shared_limits import SharedLimits

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
RETRY_AFTER_CAP_S = 300.0
API_MESSAGE_LIMIT = 500
_URL_CACHE_SIZE = 256


class _NoCookies(httpx.Cookies):
    """An always-empty cookie jar that ignores what answers set."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


_NO_COOKIES = _NoCookies()


class _AsyncClient(httpx.AsyncClient):
    """`httpx.AsyncClient` without a cookie jar of its own.

    The aiohttp session under it already keeps the cookies a destination sets and sends them back;
    httpx's second jar only cost an eighth of each request's CPU, copying every answer into
    `http.cookiejar`'s request and response shapes.
    """

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("this client's cookies are kept by its aiohttp session")


class HttpClient(BaseClient):
    """JSON over HTTP with retries, a rate limit and errors that carry the status and API message."""

    def __init__(
        self,
        *,
        service_name: str,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        options: ClientOptions = DEFAULT_OPTIONS,
        secrets: Sequence[SecretStr | str | None] = (),
        auth: httpx.Auth | None = None,
    ) -> None:
        """
        Args:
            service_name: the integration's name, used in every error message.
            base_url: prefix of every request path.
            headers: sent with every request.
            auth: httpx's authentication for every request (e.g. `httpx.BasicAuth`); none by default.
            options: timeout, attempts, rate limit and connections (from the integration's settings).
            secrets: values (keys, passwords) that must never appear in an error or a recorded answer,
                even when the destination echoes them back.
        """
        self.service_name = service_name
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self._auth = auth
        self.options = options
        self.timeout = options.timeout
        self.max_attempts = options.max_attempts
        revealed = (secret.get_secret_value() if isinstance(secret, SecretStr) else secret for secret in secrets)
        self._secrets = [secret for secret in revealed if secret]
        self._secret_bytes = [secret.encode() for secret in self._secrets]
        # JSON escapes quotes, backslashes and control characters: such a secret is not found by
        # searching serialised text, so every answer is walked string by string instead.
        self._walk_always = any(_json_escaped(secret) for secret in self._secrets)
        self._http: httpx.AsyncClient | None = None
        self._urls: dict[str, httpx.URL] = {}
        self._limiter: AsyncLimiter | None = None
        self._shared: SharedLimits | None = None
        if options.limit_store is not None:
            self._shared = SharedLimits(
                options.limit_store,
                service_name,
                self.base_url,
                max_in_flight=options.max_concurrency,
                rate=options.rate_limit,
                request_timeout=options.timeout,
            )

    async def __aenter__(self) -> Self:
        # Before anything is claimed: a limit store that does not answer stops the run here.
        if self._shared is not None:
            await self._shared.open()
        return self

    def _open(self) -> httpx.AsyncClient:
        if self._http is None:
            limits = httpx.Limits(max_connections=self.options.max_concurrency)
            self._http = _AsyncClient(
                base_url=self.base_url,
                headers=self.headers,
                auth=self._auth,
                timeout=self.timeout,
                transport=AiohttpTransport(limits=limits),
            )
            if self.options.rate_limit and self._shared is None:
                self._limiter = AsyncLimiter(self.options.rate_limit, 1.0)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._shared is not None:
            await self._shared.aclose()

    async def post_json(
        self, path: str, body: Mapping[str, Any], *, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """POST `body` as JSON and return the JSON answer, retrying transient failures."""
        content = jsonbytes.dumps(body)
        request_headers = {"Content-Type": "application/json", **(headers or {})}
        return await self.request_json("POST", path, content=content, headers=request_headers)

    async def request_json(
        self, method: str, path: str, *, content: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        http = self._open()
        attempt = 1
        while True:
            try:
                answer: dict[str, Any] = self._scrub(await self._once(http, method, path, content, headers))
                return answer
            except RetryableSubmissionError as exc:
                if attempt >= self.max_attempts:
                    raise self._scrub_error(exc, f" (gave up after {attempt} attempts)") from None
                await asyncio.sleep(self._delay(attempt, exc.retry_after))
                attempt += 1
            except SubmissionError as exc:
                raise self._scrub_error(exc) from None

    def _scrub(self, value: Any) -> Any:
        """`value` with every secret replaced by `***` in its strings."""
        if not self._secrets or not self._may_hold_secret(value):
            return value
        return self._replace_secrets(value)

    def _may_hold_secret(self, value: Any) -> bool:
        # One search of the serialised answer instead of a walk through every string in it: most
        # answers hold no secret.
        if self._walk_always or isinstance(value, str):
            return True
        try:
            text = jsonbytes.dumps(value)
        except TypeError:
            return True
        return any(secret in text for secret in self._secret_bytes)

    def _replace_secrets(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, "***")
            return value
        if isinstance(value, dict):
            return {self._replace_secrets(k): self._replace_secrets(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._replace_secrets(item) for item in value]
        return value

    def _scrub_error(self, exc: SubmissionError, suffix: str = "") -> SubmissionError:
        """The same error with secrets removed from its texts (a destination may echo a key back)."""
        message, api_message = self._scrub(str(exc)) + suffix, self._scrub(exc.api_message)
        if isinstance(exc, RetryableSubmissionError):
            return RetryableSubmissionError(
                message, status=exc.status, api_message=api_message, retry_after=exc.retry_after
            )
        return type(exc)(message, status=exc.status, api_message=api_message)

    async def _once(
        self,
        http: httpx.AsyncClient,
        method: str,
        path: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        if self._shared is not None:
            return await self._once_shared(self._shared, http, method, path, content, headers)
        if self._limiter is not None:
            await self._limiter.acquire()
        return self._parse(await self._send(http, method, path, content, headers))

    async def _once_shared(
        self,
        shared: SharedLimits,
        http: httpx.AsyncClient,
        method: str,
        path: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        token = await shared.acquire()
        try:
            response = await self._send(http, method, path, content, headers)
        finally:
            await shared.release(token)
        return self._parse(response)

    async def _send(
        self,
        http: httpx.AsyncClient,
        method: str,
        path: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        # After the limiter: the hook's headers (a timestamped signature) must not age while waiting.
        attempt_headers = {**(headers or {}), **self.request_headers(content)}
        try:
            return await http.request(method, self._absolute_url(path), content=content, headers=attempt_headers)
        except httpx.TransportError as exc:
            raise RetryableSubmissionError(self._transport_error_message(exc)) from None

    def _absolute_url(self, path: str) -> httpx.URL:
        """The absolute URL of `path` (relative paths are under `base_url`, as httpx joins them).

        Parsed once per path: httpx would parse and join the base URL and the path on every request,
        a tenth of a request's CPU time.
        """
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(path)
            if url.is_relative_url:
                url = httpx.URL(f"{self.base_url}/{path.lstrip('/')}")
            if len(self._urls) >= _URL_CACHE_SIZE:
                # Paths unique per event (a CalDAV resource) must not grow the cache with the run.
                self._urls.clear()
            self._urls[path] = url
        return url

    def request_headers(self, content: bytes | None) -> Mapping[str, str]:
        """Headers added to every attempt of a request, computed afresh each time; none by default.

        Override for headers that must be current when the request leaves, such as a signature with
        a timestamp: a retry may come minutes after the first attempt (`Retry-After`). They take
        precedence over the client's and the request's own headers of the same name.

        Args:
            content: the exact body bytes about to be sent (None without a body).
        """
        return {}

    def parse_success(self, response: httpx.Response) -> dict[str, Any]:
        """The answer recorded for a 2xx response: its JSON object (a JSON list as `{"data": [...]}`).

        Override when the destination's success answers are empty or not JSON (204 No Content, a
        plain `ok`, a CalDAV PUT); whatever it returns is stored as the submission's response.

        Raises:
            RejectedSubmissionError: the body is empty or not JSON, i.e. not what the API promises.
        """
        status = response.status_code
        if not response.content.strip():
            raise RejectedSubmissionError(
                f"HTTP {status} from {self.service_name}: empty response body", status=status
            )
        try:
            answer = jsonbytes.loads(response.content)
        except ValueError:
            raise RejectedSubmissionError(
                f"HTTP {status} from {self.service_name}: response is not JSON "
                f"({response.headers.get('content-type', 'no content type')}): {_snippet(response.text)}",
                status=status,
                api_message=_snippet(response.text),
            ) from None
        return answer if isinstance(answer, dict) else {"data": answer}

    def error_hint(self, response: httpx.Response) -> str | None:
        """What usually causes this error answer, added to its message in parentheses; none by default.

        Name settings, never their values (e.g. "check MYSERVICE_API_KEY" for a 401).
        """
        return None

    def _transport_error_message(self, exc: httpx.TransportError) -> str:
        # The aiohttp transport reports refused and dropped connections as ConnectTimeout; the
        # original aiohttp error says what really happened.
        cause = exc.__cause__
        timed_out = isinstance(cause, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)) or (
            cause is None and isinstance(exc, httpx.TimeoutException)
        )
        if timed_out:
            return f"{self.service_name}: no answer within {self.timeout:g} s (timeout)"
        detail = cause or exc
        return f"{self.service_name}: connection failed ({type(detail).__name__}: {detail or 'no details'})"

    def _parse(self, response: httpx.Response) -> dict[str, Any]:
        """The answer of a 2xx response (`parse_success`), else the error it means, raised."""
        status = response.status_code
        if 200 <= status < 300:
            answer = self.parse_success(response)
            report_http_status(status)
            return answer
        api_message = api_error_message(response)
        message = f"HTTP {status} from {self.service_name}: {api_message or response.reason_phrase or 'no message'}"
        if (hint := self.error_hint(response)) is not None:
            message = f"{message} ({hint})"
        if status == 429 or status >= 500:
            raise RetryableSubmissionError(
                message, status=status, api_message=api_message, retry_after=_retry_after(response)
            )
        raise RejectedSubmissionError(message, status=status, api_message=api_message)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, RETRY_AFTER_CAP_S)
        return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))


def api_error_message(response: httpx.Response) -> str | None:
    """The destination's own explanation of an error answer, from common JSON error shapes or the text."""
    try:
        body = response.json()
    except ValueError:
        return _snippet(response.text) or None
    return body_error_message(body)


def body_error_message(body: Any) -> str | None:
    """The explanation a JSON error body gives in one of the common shapes, shortened; None if it gives none."""
    return _snippet(_find_message(body)) or None


def _find_message(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        return "; ".join(m for m in (_find_message(item) for item in body) if m)
    if isinstance(body, dict):
        for key in ("errors", "detail", "message", "error", "title", "error_description"):
            if key in body and (found := _find_message(body[key])):
                return found
    return ""


def _json_escaped(text: str) -> bool:
    return any(char in text for char in '"\\') or any(ord(char) < 0x20 for char in text)


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= API_MESSAGE_LIMIT else text[: API_MESSAGE_LIMIT - 1] + "…"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


__all__ = ["HttpClient", "SubmissionError", "api_error_message", "body_error_message"]
