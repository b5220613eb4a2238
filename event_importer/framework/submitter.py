"""The submitter: selects, transforms and submits one integration's events, recording every attempt
through the ledger.

An integration is a package under `event_importer/integrations/` (or an installed distribution's
entry point) holding one `BaseSubmitter` subclass. The submitter's three steps, `select`,
`transform` and `submit`, are what the Dagster assets call one by one and what `submit_events`
calls in a row: there is one code path, whoever starts the run.
"""

import asyncio
import sys
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any, ClassVar, TypeVarTuple

from pydantic import ValidationError
from sqlalchemy import Result, Select, func, select, text
from sqlalchemy.orm import Session

from event_importer.db.engine import Database
from event_importer.db.models import EventCache, Submission, SubmissionStatus
from event_importer.errors import TransformError, UnknownSelectorError
from event_importer.events.model import describe_validation_error
from event_importer.framework.chunks import CHUNK_SIZE
from event_importer.framework.contracts import (
    BaseClient,
    BaseSelector,
    BaseTransformer,
    ClientOptions,
    ProgressCallback,
)
from event_importer.framework.lifecycle import DEFAULT_LIFECYCLE, Lifecycle, Operation, operation_for
from event_importer.framework.packed import Packed, check_json
from event_importer.framework.records import EventRef, Payload, SubmissionReport, SubmissionResult
from event_importer.framework.selectors import standard_selectors
from event_importer.framework.sending import record_dry_runs, send_payloads
from event_importer.ledger import SubmissionLedger
from event_importer.settings import IntegrationSettings, Settings, get_settings, load_settings, not_configured

Ts = TypeVarTuple("Ts")


def _execute_without_jit(session: Session, statement: Select[*Ts]) -> Result[*Ts]:
    """Execute `statement`, on PostgreSQL with JIT compilation off while it is planned.

    PostgreSQL decides to JIT-compile from the estimated cost of the whole result, and a selection
    over a big cache always looks expensive (sub-selects for every event), so every selection paid
    a few hundred ms of LLVM optimisation before its first row, for work (index lookups) that JIT
    does not speed up. The decision is taken when the statement is planned, which `execute` does
    (it declares the server-side cursor), so the caller's setting is back right after.
    """
    if session.get_bind().dialect.name != "postgresql":
        return session.execute(statement)
    previous = session.execute(text("SELECT current_setting('jit')")).scalar_one()
    session.execute(text("SELECT set_config('jit', 'off', true)"))
    try:
        return session.execute(statement)
    finally:
        session.execute(text("SELECT set_config('jit', :previous, true)"), {"previous": previous})


def package_folder(module_name: str) -> str:
    """The folder name of the package that the module `module_name` belongs to (or is)."""
    module = sys.modules.get(module_name)
    package = (module.__package__ if module is not None else None) or module_name
    return package.rpartition(".")[2]


class BaseSubmitter(ABC):
    """Selects, transforms and submits events for one service, recording every attempt."""

    #: The integration's settings class; subclasses set their own with their env prefix.
    settings_class: ClassVar[type[IntegrationSettings]] = IntegrationSettings
    #: What the destination does for an update, a cancellation and a removal.
    lifecycle: ClassVar[Lifecycle] = DEFAULT_LIFECYCLE
    #: The integration's one name: CLI group, route prefix, Dagster group, `Submission.service_name`.
    #: Never written by hand: discovery sets it to the folder's (or entry point's) name. Until then a
    #: subclass has its parent's, or else the name of the package it is defined in, which for a
    #: folder under `event_importer/integrations/` is the same.
    service_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.service_name:
            cls.service_name = package_folder(cls.__module__)

    def __init__(self, settings: IntegrationSettings | None = None, app_settings: Settings | None = None) -> None:
        self.app_settings = app_settings or get_settings()
        self.settings = settings if settings is not None else load_settings(self.settings_class)

    @abstractmethod
    def _create_client(self) -> BaseClient:
        """A new client for one run; `create_client` has checked the required settings first."""

    @abstractmethod
    def _create_transformer(self) -> BaseTransformer: ...

    def _create_selectors(self) -> dict[str, BaseSelector]:
        """Selectors of this integration's own, added to (or replacing) the standard ones."""
        return {}

    # -- configuration ---------------------------------------------------------------------------

    def lifecycle_rules(self) -> Lifecycle:
        """The destination's lifecycle as configured; override when a setting chooses a rule."""
        return self.lifecycle

    @cached_property
    def selectors(self) -> dict[str, BaseSelector]:
        unsent_cancelled = self.lifecycle_rules().send_unsent_cancelled
        return standard_selectors(include_cancelled=unsent_cancelled) | self._create_selectors()

    @cached_property
    def transformer(self) -> BaseTransformer:
        return self._create_transformer()

    def create_client(self) -> BaseClient:
        """A new client for one run.

        Raises:
            ConfigurationError: a required setting is missing (see `check_configured`).
        """
        self.check_configured()
        return self._create_client()

    def get_selector(self, name: str) -> BaseSelector:
        try:
            return self.selectors[name]
        except KeyError:
            raise UnknownSelectorError(name, sorted(self.selectors)) from None

    @property
    def client_options(self) -> ClientOptions:
        """The integration's settings for its client, falling back to the project-wide ones."""
        return ClientOptions(
            timeout=self.request_timeout,
            max_attempts=self.max_attempts,
            rate_limit=self.settings.rate_limit,
            max_concurrency=self.max_concurrency,
            limit_store=self.app_settings.redis_url,
        )

    @property
    def max_concurrency(self) -> int:
        return self.settings.max_concurrency or self.app_settings.max_concurrency

    @property
    def request_timeout(self) -> float:
        return self.settings.request_timeout or self.app_settings.request_timeout

    @property
    def max_attempts(self) -> int:
        return self.settings.max_attempts or self.app_settings.max_attempts

    def missing_settings(self) -> list[str]:
        """Variables the integration still needs before it can send (empty when configured): those its
        settings class declares required; override to add what is needed besides settings."""
        return self.settings.missing()

    def check_configured(self) -> None:
        """Raise `ConfigurationError` naming what `missing_settings` lists, before anything is sent."""
        if missing := self.missing_settings():
            raise not_configured(self.service_name, missing)

    # -- the three steps -------------------------------------------------------------------------

    def select(
        self,
        session: Session,
        selector: str,
        *,
        url: str | None = None,
        limit: int | None = None,
        shard: tuple[int, int] | None = None,
    ) -> Iterator[EventRef]:
        """Stream the selected events in id order, a chunk of rows at a time.

        `shard=(index, count)` keeps the events whose cache id modulo `count` is `index`: a stable
        split (an event keeps its id) that puts every event in exactly one shard, in SQL that SQLite
        and PostgreSQL both run.

        Each event's attempt count comes from the same statement, hence the same snapshot, as the
        decision to select it: the claim for attempt `attempts + 1` then fails if any other run
        attempted the event since, so a stale selection can never send an event twice.
        """
        real = (
            Submission.event_cache_id == EventCache.id,
            Submission.service_name == self.service_name,
            Submission.status != SubmissionStatus.DRY_RUN.value,
        )
        attempts = select(func.count()).where(*real).correlate(EventCache).scalar_subquery()
        # What the latest success did: the destination has the event unless there is none, or it
        # was a removal. From `ix_submissions_real` alone, which holds the operation.
        accepted = (
            select(Submission.operation)
            .where(*real, Submission.status == SubmissionStatus.SUCCESS.value)
            .order_by(Submission.id.desc())
            .limit(1)
            .correlate(EventCache)
            .scalar_subquery()
        )
        statement = (
            self.get_selector(selector)
            .statement(self.service_name, url=url)
            # Plain columns rather than the entity: building an ORM object per row (instance state,
            # identity map) took about a third of the time per streamed event, for four values.
            .with_only_columns(
                EventCache.id,
                EventCache.source_url,
                EventCache.data,
                EventCache.data_hash,
                EventCache.removed_at,
                attempts.label("attempts"),
                accepted.label("accepted"),
                maintain_column_froms=True,
            )
            .order_by(EventCache.id)
        )
        if shard is not None:
            index, count = shard
            statement = statement.where(EventCache.id % count == index)
        if limit is not None:
            statement = statement.limit(limit)
        rows = _execute_without_jit(session, statement.execution_options(yield_per=CHUNK_SIZE))
        for partition in rows.partitions():
            for event_id, source_url, data, data_hash, removed_at, attempt_count, accepted_as in partition:
                there = accepted_as is not None and accepted_as != Operation.REMOVE
                operation = operation_for(data, removed=removed_at is not None, at_destination=there)
                yield EventRef(event_id, source_url, data, data_hash, there, attempt_count, operation)

    def transform(self, events: Iterable[EventRef]) -> list[Payload]:
        """One payload per event; an event that cannot be transformed carries its reason instead, and
        one whose operation the destination does not carry out the reason it is skipped."""
        return [self._transform_one(event) for event in events]

    def _transform_one(self, event: EventRef) -> Payload:
        skipped = self.lifecycle_rules().skip_reason(event.operation, at_destination=event.submitted_before)
        if skipped is not None:
            return Payload(event.key, None, skipped=skipped)
        try:
            body = self.transformer.transform_event(event)
        except TransformError as exc:
            return Payload(event.key, None, str(exc))
        except ValidationError as exc:
            return Payload(event.key, None, f"invalid event data: {describe_validation_error(exc)}")
        except Exception as exc:  # noqa: BLE001 - one broken event must not stop the run
            return Payload(event.key, None, f"transformer failed: {type(exc).__name__}: {exc}")
        try:
            check_json(body)
        except (TypeError, ValueError) as exc:
            return Payload(event.key, None, f"transformer failed: its payload is not JSON: {exc}")
        return Payload(event.key, body)

    def transform_packed(self, events: Packed[EventRef]) -> Packed[Payload]:
        """`transform` over a packed selection, a chunk at a time, packed again."""
        return Packed.of(Payload, (payload for chunk in events.chunks() for payload in self.transform(chunk)))

    def submit(
        self,
        payloads: Iterable[Payload],
        *,
        database: Database,
        run_id: str,
        dry_run: bool = False,
        client: BaseClient | None = None,
        progress: ProgressCallback | None = None,
        trigger: str | None = None,
    ) -> list[SubmissionResult]:
        """Send the valid payloads (or record them as dry runs) and record every outcome.

        Payloads are consumed a chunk at a time, so a packed sequence is never unpacked whole.
        Events that could not be transformed are recorded as failed with their reason.

        Args:
            trigger: who started the run (cli, api, schedule, sensor, ui), recorded with each attempt.

        Raises:
            ConfigurationError: a required setting is missing (checked before anything is recorded).
        """
        ledger = SubmissionLedger(
            database, self.service_name, run_id, stale_after=self.app_settings.stale_claim_after, trigger=trigger
        )
        if dry_run:
            return record_dry_runs(ledger, payloads, progress)
        self.check_configured()
        client = client or self._create_client()
        return asyncio.run(send_payloads(client, ledger, payloads, self.max_concurrency, progress))

    def submit_events(
        self,
        database: Database,
        selector: str = "unsubmitted",
        *,
        url: str | None = None,
        dry_run: bool = False,
        limit: int | None = None,
        run_id: str | None = None,
    ) -> SubmissionReport:
        """Select, transform and submit in one call, outside Dagster (tests, scripts), as the job's steps do."""
        run_id = run_id or uuid.uuid4().hex
        with database.session() as session:
            events = Packed.of(EventRef, self.select(session, selector, url=url, limit=limit))
        payloads = self.transform_packed(events)
        results = self.submit(payloads, database=database, run_id=run_id, dry_run=dry_run)
        invalid = sum(not p.valid for p in payloads)
        return SubmissionReport(self.service_name, selector, run_id, dry_run, len(events), invalid, results)
