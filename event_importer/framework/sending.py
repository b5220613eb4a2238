"""Sending claimed payloads with bounded concurrency, recording outcomes in batches.

Payloads arrive a chunk at a time. For each chunk one worker-thread call records the events that
could not be transformed and claims the others (a pending row each, one transaction); the next
chunk's claim runs while the current one is being sent, so the requests never wait for it.

A request holds one of `concurrency` slots until its answer arrives. Its outcome then goes to one
writer task, which gathers outcomes for up to `BATCH_WINDOW` seconds (or `BATCH_SIZE` of them) and
commits them in one transaction. A second bound, `2 x concurrency`, covers every event sent whose
outcome is not yet committed (in flight or answered): that is all a crash can leave to be sent again.

A `SharedLimitError` from the client (the store of the destination's shared limits is gone) stops the
run: the events already claimed are recorded as failed, not sent, with that reason, and the error is
raised once every request that had left is recorded.
"""

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from event_importer.db.models import FailureKind, SubmissionStatus
from event_importer.errors import RetryableSubmissionError, SharedLimitError, SubmissionError
from event_importer.framework.chunks import chunked
from event_importer.framework.contracts import BaseClient, ProgressCallback, report_http_status, reported_http_status
from event_importer.framework.records import Outcome, Payload, SubmissionResult
from event_importer.ledger import Claim, ClaimRequest, FinalRecord, SubmissionLedger
from event_importer.ledger import Outcome as LedgerOutcome

# How long the writer gathers outcomes before a commit, and the most it commits at once: at high
# rates one transaction per batch, at low rates an outcome waits at most this long.
BATCH_WINDOW = 0.010
BATCH_SIZE = 64

CLAIMED_ELSEWHERE = "another run claimed this event after it was selected"


def record_dry_runs(
    ledger: SubmissionLedger, payloads: Iterable[Payload], progress: ProgressCallback | None
) -> list[SubmissionResult]:
    """Record every payload as a dry run; one that could not be transformed is reported as failed,
    one the destination's lifecycle rule skips as skipped (a dry run settles nothing either way)."""
    results: list[SubmissionResult] = []
    for chunk in chunked(payloads):
        results += _report(record_final(ledger, chunk, SubmissionStatus.DRY_RUN), progress)
    return results


def record_final(ledger: SubmissionLedger, payloads: list[Payload], status: SubmissionStatus) -> list[SubmissionResult]:
    """Write attempts that send nothing (dry runs, events that could not be transformed, skips)."""
    ids = ledger.record(
        FinalRecord(
            p.event.id,
            p.event.data_hash,
            p.event.attempts,
            status,
            error=p.error or p.skipped,
            payload=p.body,
            # An event that cannot be transformed fails the same way until its data changes.
            failure_kind=FailureKind.PERMANENT if status is SubmissionStatus.FAILED else None,
            operation=p.event.operation,
        )
        for p in payloads
    )
    results = []
    for payload, submission_id in zip(payloads, ids, strict=True):
        error: str | None
        if submission_id is None:
            outcome, error = Outcome.SKIPPED, "another run recorded this event first"
        elif payload.error:
            outcome, error = Outcome.FAILED, payload.error
        elif payload.skipped:
            outcome, error = Outcome.SKIPPED, payload.skipped
        else:
            outcome, error = Outcome.DRY_RUN, None
        results.append(
            _result(payload, outcome, attempt=payload.event.attempts + 1, submission_id=submission_id, error=error)
        )
    return results


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A chunk ready to send: the claimed payloads, and the results of those that will not be sent."""

    claimed: list[tuple[Payload, Claim]]
    settled: list[SubmissionResult]


def _prepare(ledger: SubmissionLedger, chunk: list[Payload]) -> _Prepared:
    invalid = [p for p in chunk if not p.valid]
    skipped = [p for p in chunk if p.valid and not p.sendable]
    valid = [p for p in chunk if p.sendable]
    settled = record_final(ledger, invalid, SubmissionStatus.FAILED) if invalid else []
    if skipped:
        settled += record_final(ledger, skipped, SubmissionStatus.SKIPPED)
    claims = ledger.claim(
        [ClaimRequest(p.event.id, p.event.data_hash, p.event.attempts, p.event.operation) for p in valid]
    )
    claimed = []
    for payload, claim in zip(valid, claims, strict=True):
        if claim is None:
            settled.append(_result(payload, Outcome.SKIPPED, error=CLAIMED_ELSEWHERE))
        else:
            claimed.append((payload, claim))
    return _Prepared(claimed, settled)


class _OutcomeWriter:
    """One task that commits outcomes in batches and only then reports them."""

    def __init__(
        self, ledger: SubmissionLedger, unrecorded: asyncio.Semaphore, done: Callable[[SubmissionResult], None]
    ) -> None:
        self.ledger = ledger
        self.unrecorded = unrecorded
        self.done = done
        self.queue: asyncio.Queue[tuple[LedgerOutcome, SubmissionResult] | None] = asyncio.Queue()
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._run())

    def put(self, outcome: LedgerOutcome, result: SubmissionResult) -> None:
        if self.error is not None:
            self.unrecorded.release()
            raise self.error
        self.queue.put_nowait((outcome, result))

    async def close(self) -> None:
        self.queue.put_nowait(None)
        await self.task

    async def _run(self) -> None:
        closing = False
        while not closing:
            first = await self.queue.get()
            if first is None:
                break
            batch = [first]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + BATCH_WINDOW
            while len(batch) < BATCH_SIZE:
                if self.queue.empty():
                    wait = deadline - loop.time()
                    if wait <= 0:
                        break
                    await asyncio.sleep(wait)
                    continue
                item = self.queue.get_nowait()
                if item is None:
                    closing = True
                    break
                batch.append(item)
            try:
                await asyncio.to_thread(self.ledger.finish, [outcome for outcome, _ in batch])
            except BaseException as exc:
                self._fail(exc, len(batch))
                raise
            for _, result in batch:
                self.unrecorded.release()
                self.done(result)

    def _fail(self, exc: BaseException, unwritten: int) -> None:
        # The database is gone: free every waiting sender so the run stops with this error.
        self.error = exc
        while not self.queue.empty():
            if self.queue.get_nowait() is not None:
                unwritten += 1
        for _ in range(unwritten):
            self.unrecorded.release()


async def send_payloads(
    client: BaseClient,
    ledger: SubmissionLedger,
    payloads: Iterable[Payload],
    concurrency: int,
    progress: ProgressCallback | None = None,
) -> list[SubmissionResult]:
    """Claim, send and record each payload; at most `concurrency` requests in flight."""
    results: list[SubmissionResult] = []

    def done(result: SubmissionResult) -> None:
        results.append(result)
        if progress:
            progress(result)

    in_flight = asyncio.Semaphore(concurrency)
    unrecorded = asyncio.Semaphore(2 * concurrency)
    writer = _OutcomeWriter(ledger, unrecorded, done)
    stopped: list[SharedLimitError] = []

    def not_sent(payload: Payload, claim: Claim) -> None:
        outcome = LedgerOutcome(
            claim.submission_id,
            SubmissionStatus.FAILED,
            error=f"not sent: {stopped[0]}",
            failure_kind=FailureKind.TRANSIENT,  # nothing reached the destination: a later run may send it
        )
        writer.put(outcome, _sent(payload, claim, outcome))

    async def send_one(payload: Payload, claim: Claim) -> None:
        try:
            outcome = await _attempt(client, payload, claim)
        except SharedLimitError as exc:
            stopped.append(exc)
            not_sent(payload, claim)
            return
        finally:
            in_flight.release()
        writer.put(outcome, _sent(payload, claim, outcome))

    def prepare(chunk: list[Payload] | None) -> asyncio.Task[_Prepared] | None:
        return None if chunk is None else asyncio.create_task(asyncio.to_thread(_prepare, ledger, chunk))

    tasks: set[asyncio.Task[None]] = set()
    chunks = chunked(payloads)
    try:
        async with client:
            upcoming = prepare(next(chunks, None))
            while upcoming is not None:
                prepared = await upcoming
                upcoming = prepare(next(chunks, None)) if not stopped else None
                for result in prepared.settled:
                    done(result)
                for payload, claim in prepared.claimed:
                    await unrecorded.acquire()
                    if stopped:
                        not_sent(payload, claim)
                        continue
                    await in_flight.acquire()
                    if writer.error is not None:
                        raise writer.error
                    task = asyncio.create_task(send_one(payload, claim))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if stopped and upcoming is not None:
                    # Claimed already: record its events as not sent too, then claim nothing more.
                    following, upcoming = upcoming, None
                    later = await following
                    for result in later.settled:
                        done(result)
                    for payload, claim in later.claimed:
                        await unrecorded.acquire()
                        not_sent(payload, claim)
            if tasks:
                await asyncio.gather(*tasks)
    finally:
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await writer.close()
    if stopped:
        raise stopped[0]
    return results


async def _attempt(client: BaseClient, payload: Payload, claim: Claim) -> LedgerOutcome:
    # The payload goes in the ledger with the outcome, so every attempt shows what was sent.
    sent = payload.body
    report_http_status(None)
    try:
        response = await client.send(payload)
    except SharedLimitError:
        raise
    except SubmissionError as exc:
        kind = FailureKind.TRANSIENT if isinstance(exc, RetryableSubmissionError) else FailureKind.PERMANENT
        return LedgerOutcome(
            claim.submission_id,
            SubmissionStatus.FAILED,
            http_status=exc.status,
            error=str(exc),
            payload=sent,
            failure_kind=kind,
        )
    except Exception as exc:  # noqa: BLE001 - a client bug on one event must not lose the others
        # Permanent: the same code would fail the same way on the next run.
        return LedgerOutcome(
            claim.submission_id,
            SubmissionStatus.FAILED,
            error=f"client failed: {type(exc).__name__}: {exc}",
            payload=sent,
            failure_kind=FailureKind.PERMANENT,
        )
    return LedgerOutcome(
        claim.submission_id,
        SubmissionStatus.SUCCESS,
        http_status=reported_http_status(),
        response=response,
        payload=sent,
    )


def _sent(payload: Payload, claim: Claim, outcome: LedgerOutcome) -> SubmissionResult:
    status = Outcome.SUCCESS if outcome.status is SubmissionStatus.SUCCESS else Outcome.FAILED
    return _result(
        payload,
        status,
        attempt=claim.attempt,
        submission_id=claim.submission_id,
        http_status=outcome.http_status,
        error=outcome.error,
    )


def _result(
    payload: Payload,
    outcome: Outcome,
    *,
    attempt: int | None = None,
    submission_id: int | None = None,
    http_status: int | None = None,
    error: str | None = None,
) -> SubmissionResult:
    event = payload.event
    return SubmissionResult(
        event.id, event.source_url, event.title, outcome, attempt, submission_id, http_status, error, event.operation
    )


def _report(results: list[SubmissionResult], progress: ProgressCallback | None) -> list[SubmissionResult]:
    if progress:
        for result in results:
            progress(result)
    return results
