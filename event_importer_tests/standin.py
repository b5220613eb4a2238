"""A real HTTP server that stands in for destination APIs (TicketFairy, webhooks).

Why: mocking the HTTP client hides exactly the behaviour we need to test --
timeouts, dropped connections, retries that create duplicates, 429s with
Retry-After, garbage bodies from a proxy. This server speaks real HTTP over a
real socket, records what it accepted, and injects faults on demand, so the
importer's sending code can be exercised end to end and benchmarked.

Two ways to run it:

* In-process, for tests: ``with StandInServer(api_key="k") as server: ...``.
  It runs its own asyncio loop in a daemon thread, so a synchronous test (or
  an importer with its own loop) can use it without sharing a loop.
* As a process, for benchmarks and crash tests:
  ``python -m event_importer_tests.standin --port 0 --latency 0.02 --api-key k``
  prints ``READY http://127.0.0.1:PORT/api`` and serves until SIGTERM/SIGINT.
  Another process reads and steers it through the control API at
  ``/_control/...`` (``GET accepted``, ``GET stats``, ``POST faults``,
  ``POST reset``). The control API is mounted in-process too.

Endpoints under ``{url}`` (default base path ``/api``):

* ``POST {url}/draft-events`` -- TicketFairy: Bearer auth when ``api_key`` is
  set (401 otherwise), JSON object with ``data.attributes`` (422 otherwise),
  answers 201 with the attributes echoed and a sequential id.
* ``POST {url}/<anything else>`` -- generic sink (webhooks...): any body,
  no auth, answers 200 ``{"ok": true, "id": "..."}``.

It also measures what a destination's limits are about, over every request whatever its client
process: ``peak_in_flight`` (requests being handled at once) and ``peak_per_second`` (the most
requests that arrived within any one second), both in ``stats()``.

Which requests count as *accepted* (recorded in ``server.accepted``): those
whose normal handling ran to completion with a 2xx. ``latency`` and ``hang``
faults delay normal handling, so they *are* accepted once the handler finishes
-- even when the client gave up and disconnected meanwhile. That models a
destination that created the draft although the client saw a timeout, which
is exactly how retries create duplicates. All other faults answer *instead of*
the destination (``status``, ``rate_limited``, ``reset``, ``empty_body``,
``non_json``, ``reject``): nothing is accepted.
"""

import argparse
import asyncio
import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol, Self, TypedDict, overload

from aiohttp import web

DEFAULT_BASE_PATH = "/api"
CONTROL_PREFIX = "/_control"
# A hung request must not keep stop() waiting: give in-flight handlers this
# long, then aiohttp cancels them (they are then not accepted).
SHUTDOWN_TIMEOUT = 0.5

FAULT_KINDS = frozenset(
    {
        "latency",
        "status",
        "rate_limited",
        "hang",
        "reset",
        "empty_body",
        "non_json",
        "reject",
    }
)


@dataclass(frozen=True)
class _FaultFields:
    kind: str
    status: int | None = None
    message: str | None = None
    retry_after: float | None = None
    delay: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}"
            )


class _StatusFactory(Protocol):
    def __call__(self, status: int = 503, message: str | None = None) -> "Fault": ...


class _StatusAttribute:
    """``Fault.status(503)`` builds a fault, while ``fault.status`` is its HTTP status.

    A dataclass cannot have a field and a classmethod of the same name, and
    both spellings read naturally, so this descriptor tells class access from
    instance access (the instance's field value shadows it at runtime).
    """

    @overload
    def __get__(self, obj: None, owner: type["Fault"]) -> _StatusFactory: ...
    @overload
    def __get__(self, obj: "Fault", owner: type["Fault"]) -> int | None: ...
    def __get__(self, obj: "Fault | None", owner: type["Fault"]) -> Any:
        if obj is not None:
            return obj.__dict__["status"]

        def status(status: int = 503, message: str | None = None) -> Fault:
            return owner("status", status=status, message=message)

        return status


class Fault(_FaultFields):
    """One injected misbehaviour: ``Fault(kind, status=None, message=None, retry_after=None, delay=None)``.

    Prefer the helpers, e.g. ``Fault.status(503)`` or ``Fault.hang(5)``.
    """

    status = _StatusAttribute()

    @classmethod
    def rate_limited(
        cls, retry_after: float = 1, message: str | None = None
    ) -> "Fault":
        return cls("rate_limited", status=429, retry_after=retry_after, message=message)

    @classmethod
    def hang(cls, seconds: float) -> "Fault":
        return cls("hang", delay=seconds)

    @classmethod
    def reset(cls) -> "Fault":
        return cls("reset")

    @classmethod
    def empty_body(cls, status: int = 200) -> "Fault":
        return cls("empty_body", status=status)

    @classmethod
    def non_json(cls, status: int = 200) -> "Fault":
        return cls("non_json", status=status)

    @classmethod
    def reject(cls, status: int = 400, message: str = "Invalid request") -> "Fault":
        return cls("reject", status=status, message=message)

    @classmethod
    def latency(cls, seconds: float) -> "Fault":
        return cls("latency", delay=seconds)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Fault":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class AcceptedRecord(TypedDict):
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text when it was not JSON
    id: str
    received_at: float  # time.time() when the request arrived


@dataclass
class _Rule:
    fault: Fault
    match: str | None
    remaining: int | None  # None = forever


def _error_body(detail: str) -> dict[str, Any]:
    return {"errors": [{"detail": detail}]}


def _default_key(record: AcceptedRecord) -> Hashable:
    body = record["body"]
    key: Hashable = None
    if isinstance(body, dict):
        data = body.get("data")
        attributes = data.get("attributes") if isinstance(data, dict) else None
        if isinstance(attributes, dict):
            key = attributes.get("url")
        if key is None:
            key = body.get("source_url")
    if key is not None:
        return key
    # The raw body; dicts are not hashable, so use their canonical JSON.
    return body if isinstance(body, str) else json.dumps(body, sort_keys=True)


class StandInServer:
    """Destination stand-in with recording and fault injection; see the module docstring."""

    def __init__(
        self,
        api_key: str | None = None,
        latency: float = 0.0,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        base_path: str = DEFAULT_BASE_PATH,
    ) -> None:
        self.api_key = api_key
        # Read by the loop thread on every request; a float store is atomic.
        self.latency = latency
        self.host = host
        self.port = port
        self.base_path = "/" + base_path.strip("/")
        self.url: str = ""
        # Test thread and loop thread both touch the state below.
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._accepted: list[AcceptedRecord] = []
        self._requests_seen = 0
        self._faults_injected: Counter[str] = Counter()
        self._in_flight = 0
        self._peak_in_flight = 0
        self._arrivals: list[float] = []
        self._next_id = 1
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    # -- lifecycle (thread mode) -------------------------------------------

    def start(self, timeout: float = 10.0) -> Self:
        if self._thread is not None:
            raise RuntimeError("StandInServer already started")
        self._started.clear()
        self._start_error = None
        self._thread = threading.Thread(
            target=self._thread_main, name="standin-server", daemon=True
        )
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("StandInServer did not start in time")
        if self._start_error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError("StandInServer failed to start") from self._start_error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop_event.set)
            except RuntimeError:  # loop closed between the check and the call
                pass
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("StandInServer did not stop in time")
        self._thread = self._loop = self._stop_event = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._thread_serve())
        except BaseException as exc:  # noqa: BLE001 -- surfaced to start() instead of lost in the thread
            self._start_error = exc
        finally:
            self._started.set()

    async def _thread_serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        await self.serve(self._stop_event, on_ready=lambda url: self._started.set())

    async def serve(
        self, stop: asyncio.Event, on_ready: Callable[[str], None] | None = None
    ) -> None:
        """Serve on the running loop until ``stop`` is set (used by both modes)."""
        runner = web.AppRunner(
            self._make_app(), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.url = f"http://{host}:{port}{self.base_path}"
            if on_ready is not None:
                on_ready(self.url)
            await stop.wait()
        finally:
            await runner.cleanup()

    # -- inspection and control (any thread) -------------------------------

    @property
    def accepted(self) -> list[AcceptedRecord]:
        with self._lock:
            return list(self._accepted)

    @property
    def requests_seen(self) -> int:
        with self._lock:
            return self._requests_seen

    @property
    def peak_in_flight(self) -> int:
        """The most requests the server was handling at once."""
        with self._lock:
            return self._peak_in_flight

    def peak_per_second(self, window: float = 1.0) -> int:
        """The most requests that arrived within any `window` seconds (a sliding window)."""
        with self._lock:
            arrivals = list(self._arrivals)
        peak = first = 0
        for last, at in enumerate(arrivals):
            while at - arrivals[first] >= window:
                first += 1
            peak = max(peak, last - first + 1)
        return peak

    @property
    def faults_injected(self) -> dict[str, int]:
        with self._lock:
            return dict(self._faults_injected)

    def add_fault(
        self, fault: Fault, match: str | None = None, times: int | None = 1
    ) -> None:
        """Inject ``fault`` into the next ``times`` requests whose raw body contains ``match``.

        ``match=None`` matches any request; ``times=None`` means forever. Rules
        are tried in insertion order and the first live match wins.
        """
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        with self._lock:
            self._rules.append(_Rule(fault, match, times))

    def reset(self) -> None:
        """Forget accepted records, counters and fault rules."""
        with self._lock:
            self._rules.clear()
            self._accepted.clear()
            self._requests_seen = 0
            self._faults_injected.clear()
            self._peak_in_flight = 0
            self._arrivals.clear()
            self._next_id = 1

    def duplicates(
        self, key: Callable[[AcceptedRecord], Hashable] | None = None
    ) -> dict[Hashable, int]:
        """Keys seen more than once among accepted records, with their counts.

        Default key: ``body.data.attributes.url``, else ``body.source_url``,
        else the raw body.
        """
        counts = Counter((key or _default_key)(record) for record in self.accepted)
        return {k: n for k, n in counts.items() if n > 1}

    def stats(self) -> dict[str, Any]:
        peak_per_second = self.peak_per_second()
        with self._lock:
            return {
                "requests_seen": self._requests_seen,
                "accepted": len(self._accepted),
                "faults_injected": dict(self._faults_injected),
                "latency": self.latency,
                "peak_in_flight": self._peak_in_flight,
                "peak_per_second": peak_per_second,
            }

    # -- HTTP ---------------------------------------------------------------

    @web.middleware
    async def _measure(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        """Count the request in flight from its arrival until its handler has answered."""
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)  # type: ignore[no-any-return]
        with self._lock:
            self._arrivals.append(time.monotonic())
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        try:
            return await handler(request)  # type: ignore[no-any-return]
        finally:
            with self._lock:
                self._in_flight -= 1

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._measure])
        app.router.add_post(f"{self.base_path}/draft-events", self._handle_draft_event)
        app.router.add_post(f"{self.base_path}/{{tail:.+}}", self._handle_generic)
        app.router.add_get(f"{CONTROL_PREFIX}/accepted", self._control_accepted)
        app.router.add_get(f"{CONTROL_PREFIX}/stats", self._control_stats)
        app.router.add_post(f"{CONTROL_PREFIX}/faults", self._control_faults)
        app.router.add_post(f"{CONTROL_PREFIX}/reset", self._control_reset)
        return app

    def _take_fault(self, raw: str) -> Fault | None:
        with self._lock:
            self._requests_seen += 1
            for rule in self._rules:
                if rule.remaining == 0 or (
                    rule.match is not None and rule.match not in raw
                ):
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                self._faults_injected[rule.fault.kind] += 1
                return rule.fault
        return None

    async def _preamble(
        self, request: web.Request
    ) -> tuple[str, web.StreamResponse | None]:
        """Apply latency and any fault; returns the raw body and a response that replaces normal handling."""
        raw = (await request.read()).decode("utf-8", errors="replace")
        fault = self._take_fault(raw)
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if fault is None:
            return raw, None
        if fault.kind in ("latency", "hang"):
            await asyncio.sleep(fault.delay or 0.0)
            return raw, None
        if fault.kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            # Nothing will reach the client; aiohttp drops writes to an aborted transport.
            return raw, web.Response(status=500)
        if fault.kind == "status":
            return raw, web.json_response(
                _error_body(fault.message or "Service unavailable"),
                status=fault.status or 503,
            )
        if fault.kind == "rate_limited":
            return raw, web.json_response(
                _error_body(fault.message or "Rate limit exceeded"),
                status=fault.status or 429,
                headers={
                    "Retry-After": f"{fault.retry_after if fault.retry_after is not None else 1:g}"
                },
            )
        if fault.kind == "empty_body":
            return raw, web.Response(status=fault.status or 200)
        if fault.kind == "non_json":
            return raw, web.Response(
                status=fault.status or 200,
                text="<html>oops</html>",
                content_type="text/html",
            )
        # reject
        return raw, web.json_response(
            _error_body(fault.message or "Invalid request"), status=fault.status or 400
        )

    def _record(self, request: web.Request, body: Any, received_at: float) -> str:
        headers = {
            name: ("<redacted>" if name.lower() == "authorization" else value)
            for name, value in request.headers.items()
        }
        with self._lock:
            record_id = str(self._next_id)
            self._next_id += 1
            self._accepted.append(
                AcceptedRecord(
                    path=request.path,
                    headers=headers,
                    body=body,
                    id=record_id,
                    received_at=received_at,
                )
            )
        return record_id

    async def _handle_draft_event(self, request: web.Request) -> web.StreamResponse:
        received_at = time.time()
        raw, faulted = await self._preamble(request)
        if faulted is not None:
            return faulted
        if (
            self.api_key is not None
            and request.headers.get("Authorization") != f"Bearer {self.api_key}"
        ):
            return web.json_response(_error_body("Invalid API key"), status=401)
        try:
            body = json.loads(raw)
        except ValueError:
            return web.json_response(
                _error_body("Request body must be JSON"), status=422
            )
        data = body.get("data") if isinstance(body, dict) else None
        attributes = data.get("attributes") if isinstance(data, dict) else None
        if not isinstance(attributes, dict):
            return web.json_response(
                _error_body("data.attributes is required"), status=422
            )
        record_id = self._record(request, body, received_at)
        return web.json_response(
            {
                "data": {
                    "id": record_id,
                    "type": "draft-events",
                    "attributes": attributes,
                }
            },
            status=201,
        )

    async def _handle_generic(self, request: web.Request) -> web.StreamResponse:
        received_at = time.time()
        raw, faulted = await self._preamble(request)
        if faulted is not None:
            return faulted
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw
        return web.json_response(
            {"ok": True, "id": self._record(request, body, received_at)}
        )

    async def _control_accepted(self, request: web.Request) -> web.Response:
        return web.json_response(self.accepted)

    async def _control_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _control_faults(self, request: web.Request) -> web.Response:
        """Body: one rule or a list of rules, each the Fault fields plus optional
        ``match`` and ``times`` (absent = 1, null = forever), e.g.
        ``{"kind": "status", "status": 503, "match": "foo", "times": 2}``."""
        try:
            payload = await request.json()
            rules = payload if isinstance(payload, list) else [payload]
            parsed = [
                (Fault.from_json(r), r.get("match"), r.get("times", 1)) for r in rules
            ]
            # Validate every rule before adding any, so a bad request changes nothing.
            for _, _, times in parsed:
                if times is not None and (not isinstance(times, int) or times < 1):
                    raise ValueError("times must be an integer >= 1 or null")
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response(_error_body(f"bad fault rule: {exc}"), status=400)
        for fault, match, times in parsed:
            self.add_fault(fault, match=match, times=times)
        return web.json_response({"ok": True, "added": len(parsed)})

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


def fault_to_json(
    fault: Fault, match: str | None = None, times: int | None = 1
) -> dict[str, Any]:
    """The control API's JSON form of ``add_fault(fault, match, times)``."""
    return {
        **{k: v for k, v in asdict(fault).items() if v is not None},
        "match": match,
        "times": times,
    }


async def _main(args: argparse.Namespace) -> None:
    server = StandInServer(
        api_key=args.api_key, latency=args.latency, host=args.host, port=args.port
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def announce(url: str) -> None:
        print(f"READY {url}", flush=True)

    await server.serve(stop, on_ready=announce)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds before every answer"
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="require 'Authorization: Bearer KEY' on /draft-events",
    )
    parser.add_argument(
        "--uvloop",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="use uvloop when installed (more headroom for benchmarks)",
    )
    args = parser.parse_args(argv)
    loop_factory = None
    if args.uvloop:
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_main(args))


if __name__ == "__main__":
    main()
