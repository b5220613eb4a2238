"""Sending claimed payloads with bounded concurrency, recording outcomes as they arrive.

Claims are taken a chunk at a time, one transaction each, ahead of the requests; outcomes are
written by one writer task that commits whatever has arrived since its last commit (group commit),
so at low rates each outcome is written the moment it is known and at high rates the database sees
one transaction per batch rather than one per event.

A concurrency slot is held until the outcome is committed, not just until the answer arrives, so
at any moment at most `concurrency` events have been sent without a recorded outcome: that is all
a crash can leave to be sent again.
"""

import asyncio

from event_importer.db.models import SubmissionStatus
from event_importer.errors import SubmissionError
from event_importer.integrations.base import CHUNK_SIZE, BaseClient, ProgressCallback, chunked
from event_importer.integrations.records import Outcome, Payload, SubmissionResult
from event_importer.ledger import Claim, ClaimRequest, SubmissionLedger
from event_importer.ledger import Outcome as LedgerOutcome

_DONE = None


class _OutcomeWriter:
    """One task that drains finished outcomes into the ledger, a batch per transaction."""

    def __init__(self, ledger: SubmissionLedger) -> None:
        self.ledger = ledger
        self.queue: asyncio.Queue[tuple[LedgerOutcome, asyncio.Future[None]] | None] = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        finished = False
        while not finished:
            item = await self.queue.get()
            batch = [] if item is _DONE else [item]
            finished = item is _DONE
            while not self.queue.empty():
                queued = self.queue.get_nowait()
                if queued is _DONE:
                    finished = True
                else:
                    batch.append(queued)
            if not batch:
                continue
            try:
                await asyncio.to_thread(self.ledger.finish, [outcome for outcome, _ in batch])
            except BaseException as exc:
                for _, written in batch:
                    written.set_exception(exc)
                raise
            for _, written in batch:
                written.set_result(None)

    async def write(self, outcome: LedgerOutcome) -> None:
        """Queue the outcome and wait until it is committed."""
        if self.task.done():
            # The writer died (database gone): surface its error instead of queueing into the void.
            self.task.result()
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((outcome, written))
        await written

    async def close(self) -> None:
        self.queue.put_nowait(_DONE)
        await self.task


async def send_payloads(
    client: BaseClient,
    ledger: SubmissionLedger,
    payloads: list[Payload],
    concurrency: int,
    progress: ProgressCallback | None = None,
) -> list[SubmissionResult]:
    """Claim, send and record each payload; at most `concurrency` requests in flight."""
    results: list[SubmissionResult] = []
    slots = asyncio.Semaphore(concurrency)
    writer = _OutcomeWriter(ledger)

    def done(result: SubmissionResult) -> None:
        results.append(result)
        if progress:
            progress(result)

    async def send_one(payload: Payload, claim: Claim) -> None:
        try:
            outcome = await _attempt(client, payload, claim)
            await writer.write(outcome)
            done(_result(payload, claim, outcome))
        finally:
            slots.release()

    tasks: set[asyncio.Task[None]] = set()
    try:
        async with client:
            for chunk in chunked(payloads, CHUNK_SIZE):
                claims = await asyncio.to_thread(
                    ledger.claim, [ClaimRequest(p.event.id, p.event.data_hash, p.event.attempts) for p in chunk]
                )
                for payload, claim in zip(chunk, claims, strict=True):
                    if claim is None:
                        done(_skipped(payload))
                        continue
                    await slots.acquire()
                    task = asyncio.create_task(send_one(payload, claim))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
    finally:
        await writer.close()
    return results


async def _attempt(client: BaseClient, payload: Payload, claim: Claim) -> LedgerOutcome:
    try:
        response = await client.send(payload)
    except SubmissionError as exc:
        return LedgerOutcome(claim.submission_id, SubmissionStatus.FAILED, http_status=exc.status, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a client bug on one event must not lose the others
        return LedgerOutcome(
            claim.submission_id, SubmissionStatus.FAILED, error=f"client failed: {type(exc).__name__}: {exc}"
        )
    return LedgerOutcome(claim.submission_id, SubmissionStatus.SUCCESS, response=response)


def _result(payload: Payload, claim: Claim, outcome: LedgerOutcome) -> SubmissionResult:
    return SubmissionResult(
        payload.event.id,
        payload.event.source_url,
        payload.event.title,
        Outcome.SUCCESS if outcome.status is SubmissionStatus.SUCCESS else Outcome.FAILED,
        attempt=claim.attempt,
        submission_id=claim.submission_id,
        http_status=outcome.http_status,
        error=outcome.error,
        response=outcome.response,
    )


def _skipped(payload: Payload) -> SubmissionResult:
    return SubmissionResult(
        payload.event.id,
        payload.event.source_url,
        payload.event.title,
        Outcome.SKIPPED,
        error="another run claimed this event after it was selected",
    )
