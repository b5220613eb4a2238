"""Baselines that post the job's payloads without the job: `python -m benchmarks.bare KIND... --url URL --events N`.

- `httpx`: a bare `httpx.AsyncClient` (default transport), `--concurrency` workers;
- `aiohttp`: a bare `aiohttp.ClientSession`, same workers;
- `loop`: the reference importer's way, one event at a time: a database session to read the event,
  the transform, a synchronous POST, a second session to record the attempt.

Each builds its payloads with the project's TicketFairy transformer from the same synthetic events
the job's database holds *before* its clock starts, sends the same headers and body bytes the
project's client sends, reads and parses every answer as the client does, and prints one JSON object.
The async baselines measure only sending: the destination's limit for this machine.
"""

import argparse
import asyncio
import json
import os
import resource
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.common import API_KEY, SERVICE, process_cpu_seconds
from benchmarks.data import synthetic_event

HEADERS = {
    "Accept": "application/json",
    "Origin": "https://www.theticketfairy.com",
    "Authorization": f"Bearer {API_KEY}",
    "Content-Type": "application/json",
}


def bodies(n: int, cache: Path | None = None) -> list[bytes]:
    """The request bodies of events 1..n, encoded as `HttpClient.post_json` encodes them.

    With `cache`, they are read from that file when it holds at least n bodies (events 1..m, m >= n),
    else built and written to it, so the transformer's first-use cost (its timezone indexes, seconds)
    is paid about once per harness run, not once per baseline process.
    """
    if cache is not None and cache.exists():
        lines = cache.read_text(encoding="utf-8").splitlines()
        if len(lines) >= n:
            return [line.encode() for line in lines[:n]]
    from event_importer.integrations.ticketfairy.transformer import TicketFairyTransformer

    transformer = TicketFairyTransformer()
    texts = [json.dumps(transformer.transform(synthetic_event(i)), ensure_ascii=False) for i in range(1, n + 1)]
    if cache is not None:
        cache.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return [text.encode() for text in texts]


async def _workers(concurrency: int, items: list[bytes], post: Any) -> int:
    iterator = iter(items)
    ok = 0

    async def worker() -> None:
        nonlocal ok
        for body in iterator:
            if await post(body):
                ok += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


async def run_httpx(url: str, items: list[bytes], concurrency: int) -> int:
    import httpx

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:

        async def post(body: bytes) -> bool:
            response = await client.post("/draft-events", content=body, headers=HEADERS)
            response.json()
            return response.status_code == 201

        return await _workers(concurrency, items, post)


async def run_aiohttp(url: str, items: list[bytes], concurrency: int) -> int:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        target = f"{url}/draft-events"

        async def post(body: bytes) -> bool:
            async with session.post(target, data=body, headers=HEADERS) as response:
                await response.json()
                return response.status == 201

        return await _workers(concurrency, items, post)


def run_loop(url: str, database_url: str, n: int) -> int:
    """One event at a time, a database session per step, as the reference importer does."""
    import httpx

    from event_importer.db.engine import Database
    from event_importer.db.models import EventCache, Submission, SubmissionStatus, utcnow
    from event_importer.integrations.ticketfairy.transformer import TicketFairyTransformer

    database = Database(database_url)
    transformer = TicketFairyTransformer()
    ok = 0
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for event_id in range(1, n + 1):
            with database.session() as session:
                event = session.get(EventCache, event_id)
                assert event is not None
                data, digest = event.data, event.data_hash
            body = json.dumps(transformer.transform(data), ensure_ascii=False).encode()
            response = client.post("/draft-events", content=body, headers=HEADERS)
            answer = response.json()
            with database.session() as session:
                session.add(
                    Submission(
                        event_cache_id=event_id,
                        service_name=SERVICE,
                        status=SubmissionStatus.SUCCESS.value if response.status_code == 201 else "failed",
                        data_hash=digest,
                        run_id="loop",
                        created_at=utcnow(),
                        finished_at=utcnow(),
                        http_status=response.status_code,
                        response=answer,
                    )
                )
            ok += response.status_code == 201
    return ok


def _control(url: str, method: str, path: str) -> Any:
    origin = url.rsplit("/api", 1)[0]
    request = urllib.request.Request(f"{origin}/_control/{path}", method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def measure(kind: str, args: argparse.Namespace, items: list[bytes]) -> dict[str, Any]:
    """One baseline run against a freshly reset server, with the server's CPU time and accepted count."""
    _control(args.url, "POST", "reset")
    server_cpu = process_cpu_seconds(args.server_pid) if args.server_pid else None
    cpu_before = time.process_time()
    start = time.perf_counter()
    if kind == "httpx":
        ok = asyncio.run(run_httpx(args.url, items, args.concurrency))
    elif kind == "aiohttp":
        ok = asyncio.run(run_aiohttp(args.url, items, args.concurrency))
    else:
        ok = run_loop(args.url, args.database_url, args.events)
    seconds = time.perf_counter() - start
    return {
        "kind": kind,
        "events": args.events,
        "concurrency": args.concurrency if kind != "loop" else 1,
        "ok": ok,
        "accepted": _control(args.url, "GET", "stats")["accepted"],
        "seconds": seconds,
        "cpu_s": time.process_time() - cpu_before,
        "server_cpu_s": None if server_cpu is None else process_cpu_seconds(args.server_pid) - server_cpu,
        "events_per_s": args.events / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("kinds", nargs="+", choices=["httpx", "aiohttp", "loop"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--server-pid", type=int, default=None, help="the stand-in's pid, to read its CPU time")
    parser.add_argument("--payload-cache", type=Path, default=None, help="file of request bodies, one a line")
    args = parser.parse_args()
    items = bodies(args.events, args.payload_cache) if set(args.kinds) - {"loop"} else []
    runs = {kind: measure(kind, args, items) for kind in args.kinds}
    print(json.dumps({"runs": runs, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "pid": os.getpid()}))


if __name__ == "__main__":
    main()
