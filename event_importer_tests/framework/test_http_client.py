"""The base HTTP client against a real loopback server injecting each kind of fault: transient
failures are retried (honouring Retry-After), final ones are not, and every error names the HTTP
status and the destination's own message."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from event_importer.errors import RejectedSubmissionError, RetryableSubmissionError
from event_importer.framework.contracts import ClientOptions
from event_importer_tests.factories import PlainClient
from event_importer_tests.standin import Fault


def post(server, body=None, **options):
    async def run():
        async with PlainClient(server.url, options=ClientOptions(**options)) as client:
            return await client.submit(body or {"title": "x"})

    return asyncio.run(run())


def test_success_returns_the_json_answer(stand_in):
    assert post(stand_in)["ok"] is True
    assert len(stand_in.accepted) == 1


@pytest.mark.parametrize(
    "fault",
    [Fault.status(503), Fault.status(500), Fault.rate_limited(retry_after=0), Fault.reset()],
    ids=["503", "500", "429", "reset"],
)
def test_transient_failures_are_retried(stand_in, fault):
    stand_in.add_fault(fault, times=2)
    assert post(stand_in, max_attempts=3)["ok"] is True
    assert stand_in.requests_seen == 3
    assert len(stand_in.accepted) == 1


def test_timeout_is_retried_and_named(stand_in):
    stand_in.add_fault(Fault.hang(1.0), times=1)
    assert post(stand_in, timeout=0.2, max_attempts=2)["ok"] is True
    stand_in.add_fault(Fault.hang(1.0), times=2)
    with pytest.raises(RetryableSubmissionError, match=r"no answer within 0.2 s .*gave up after 2 attempts"):
        post(stand_in, timeout=0.2, max_attempts=2)


def test_retry_after_is_honoured(stand_in):
    stand_in.add_fault(Fault.rate_limited(retry_after=1), times=1)
    started = time.monotonic()
    post(stand_in, max_attempts=2)
    assert time.monotonic() - started >= 0.9


def test_giving_up_names_status_and_api_message(stand_in):
    stand_in.add_fault(Fault.status(503, message="Maintenance until 3am"), times=None)
    with pytest.raises(RetryableSubmissionError) as info:
        post(stand_in, max_attempts=2)
    assert str(info.value).startswith("HTTP 503 from plain: Maintenance until 3am")
    assert info.value.status == 503 and info.value.api_message == "Maintenance until 3am"
    assert stand_in.requests_seen == 2


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.reject(400, "Venue is required"), "HTTP 400 from plain: Venue is required"),
        (Fault.reject(422, "Start date is in the past"), "HTTP 422 from plain: Start date is in the past"),
        (Fault.empty_body(200), "HTTP 200 from plain: empty response body"),
        (Fault.non_json(200), "HTTP 200 from plain: response is not JSON (text/html"),
    ],
    ids=["400", "422", "empty", "non-json"],
)
def test_final_answers_are_not_retried(stand_in, fault, expected):
    stand_in.add_fault(fault, times=None)
    with pytest.raises(RejectedSubmissionError) as info:
        post(stand_in, max_attempts=4)
    assert str(info.value).startswith(expected)
    assert stand_in.requests_seen == 1


def test_connection_refused_is_transient_and_named():
    class Nowhere:
        url = "http://127.0.0.1:9"

    with pytest.raises(RetryableSubmissionError, match="connection failed"):
        post(Nowhere, max_attempts=2)


def test_rate_limit_spaces_requests(stand_in):
    async def run():
        async with PlainClient(stand_in.url, options=ClientOptions(rate_limit=20)) as client:
            await asyncio.gather(*(client.submit({"n": i}) for i in range(30)))

    started = time.monotonic()
    asyncio.run(run())
    # aiolimiter lets the first second's worth through at once, then 20 per second.
    assert time.monotonic() - started >= 0.4
    assert len(stand_in.accepted) == 30


@contextlib.asynccontextmanager
async def serving(handler: Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[int]:
    """A loopback aiohttp server answering every path with `handler`; yields its port."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def test_paths_are_joined_under_the_base_url_and_absolute_urls_kept():
    """Relative paths go under the base URL's own path, as httpx joins them; a full URL is used as is."""

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"path": request.raw_path})

    async def run() -> list[str]:
        async with serving(echo) as port:
            root = f"http://127.0.0.1:{port}"
            async with PlainClient(f"{root}/api/v1/") as client:
                paths = ["/draft-events", "draft-events", "/cal/event-1.ics?x=1", f"{root}/elsewhere"]
                # Twice: the second round comes from the parsed-URL cache.
                return [(await client.request_json("GET", p))["path"] for p in paths + paths]

    expected = ["/api/v1/draft-events", "/api/v1/draft-events", "/api/v1/cal/event-1.ics?x=1", "/elsewhere"]
    assert asyncio.run(run()) == expected * 2


def test_a_cookie_the_destination_sets_is_sent_back():
    """Cookies (a load balancer's stickiness, a session) persist across a run's requests."""

    async def handler(request: web.Request) -> web.Response:
        response = web.json_response({"cookie": request.headers.get("Cookie")})
        response.set_cookie("lb", "node-7")
        return response

    async def run() -> list[str | None]:
        async with serving(handler) as port:
            # A host name: cookies are a matter of named hosts (aiohttp ignores those of bare IPs).
            async with PlainClient(f"http://localhost:{port}") as client:
                return [(await client.request_json("GET", "/x"))["cookie"] for _ in range(3)]

    assert asyncio.run(run()) == [None, "lb=node-7", "lb=node-7"]
