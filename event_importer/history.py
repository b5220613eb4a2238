"""One event's story: every attempt to send it to one destination, and its state at each destination.

What the CLI's `<name> history` and `events show` print and the API's
`GET /integrations/<name>/events/<id>/attempts` and `GET /events/<id>` answer. Each attempt shows
what was sent (dry runs included) and the destination's answer, read from the ledger's `response`
column (`event_importer.ledger.AttemptRecord`); the integration's secrets are replaced by `***`
once more on the way out, for rows written before the clients scrubbed them.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from event_importer.db.engine import Database
from event_importer.db.models import EventCache, Submission, SubmissionStatus
from event_importer.errors import EventNotFoundError
from event_importer.framework.discovery import Integration
from event_importer.ledger import AttemptRecord
from event_importer.states import STATES

REDACTED = "***"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One row of the ledger, as a reader wants it."""

    submission_id: int
    attempt: int
    status: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    run_id: str | None
    trigger: str | None
    http_status: int | None
    error: str | None
    data_hash: str
    payload: Any
    answer: Any
    #: What the attempt was for the destination: create, update, cancel or remove.
    operation: str = "create"

    def to_json(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "attempt": self.attempt,
            "operation": self.operation,
            "status": self.status,
            "created_at": _iso(self.created_at),
            "finished_at": _iso(self.finished_at),
            "run_id": self.run_id,
            "trigger": self.trigger,
            "http_status": self.http_status,
            "error": self.error,
            "data_hash": self.data_hash,
            "payload": self.payload,
            "answer": self.answer,
        }


def find_event(session: Session, ref: str | int) -> EventCache:
    """The cached event with this id (digits) or source URL.

    Raises:
        EventNotFoundError: no such event.
    """
    text = str(ref).strip()
    statement = select(EventCache).where(
        EventCache.id == int(text) if text.isdigit() else EventCache.source_url == text
    )
    event = session.scalars(statement).first()
    if event is None:
        what = f"id {text}" if text.isdigit() else f"source URL {text!r}"
        raise EventNotFoundError(f"no event with {what}; `event-importer events list` shows them")
    return event


def event_json(event: EventCache) -> dict[str, Any]:
    return {
        "id": event.id,
        "source_url": event.source_url,
        "data_hash": event.data_hash,
        "imported_at": _iso(event.imported_at),
        "updated_at": _iso(event.updated_at),
        "removed_at": _iso(event.removed_at),
        "data": event.data,
    }


def attempts(session: Session, integration: Integration, event_id: int) -> list[Attempt]:
    """Every attempt (dry runs included) to send the event to the integration, oldest first."""
    secrets = _secrets(integration)
    rows = session.scalars(
        select(Submission)
        .where(Submission.service_name == integration.name, Submission.event_cache_id == event_id)
        .order_by(Submission.id)
    )
    result = []
    for row in rows:
        record = AttemptRecord.from_json(row.response)
        result.append(
            Attempt(
                submission_id=row.id,
                attempt=row.attempt,
                status=row.status,
                created_at=row.created_at,
                finished_at=row.finished_at,
                run_id=row.run_id,
                trigger=record.trigger,
                http_status=row.http_status,
                error=_redact(row.error, secrets),
                data_hash=row.data_hash,
                payload=_redact(record.payload, secrets),
                answer=_redact(record.answer, secrets),
                operation=row.operation,
            )
        )
    return result


def state_of(session: Session, integration: Integration, event_id: int) -> dict[str, Any]:
    """The event's state at `integration` by the shared definitions of `event_importer.states`.

    `state` is the one exclusive state it is in; `changed`, `removed` and `exhausted` whether it is
    also in those.
    """
    include_cancelled = integration.sends_unsent_cancelled()

    def holds(name: str) -> bool:
        state = STATES[name].select(integration.name, include_cancelled=include_cancelled)
        statement = state.where(EventCache.id == event_id).limit(1)
        only_id = statement.with_only_columns(EventCache.id, maintain_column_froms=True)
        return session.execute(only_id).first() is not None

    exclusive = [name for name, state in STATES.items() if state.exclusive and holds(name)]
    others = {name: holds(name) for name, state in STATES.items() if not state.exclusive}
    return {"state": exclusive[0] if exclusive else None, **others}


def integration_history(database: Database, integration: Integration, ref: str | int) -> dict[str, Any]:
    """The event, its state at the integration and every attempt: what `history --json` prints.

    Raises:
        EventNotFoundError: no event has that id or source URL.
    """
    with database.session() as session:
        event = find_event(session, ref)
        found = attempts(session, integration, event.id)
        state = state_of(session, integration, event.id)
        summary = {"id": event.id, "source_url": event.source_url, "title": _title(event), "data_hash": event.data_hash}
    return {"service": integration.name, "event": summary, **state, "attempts": [a.to_json() for a in found]}


def event_overview(database: Database, integrations: Iterable[Integration], ref: str | int) -> dict[str, Any]:
    """The event and, per integration, its state, attempt counts and latest attempt: `events show --json`.

    Raises:
        EventNotFoundError: no event has that id or source URL.
    """
    destinations = {}
    with database.session() as session:
        event = find_event(session, ref)
        for integration in integrations:
            found = attempts(session, integration, event.id)
            real = [a for a in found if a.status != SubmissionStatus.DRY_RUN.value]
            latest = found[-1].to_json() if found else None
            if latest is not None:
                # The overview names the latest attempt; `history` has its payload and answer.
                latest = {k: v for k, v in latest.items() if k not in ("payload", "answer")}
            destinations[integration.name] = {
                **state_of(session, integration, event.id),
                "attempts": len(real),
                "dry_runs": len(found) - len(real),
                "latest_attempt": latest,
            }
        return {"event": event_json(event), "destinations": destinations}


def _title(event: EventCache) -> str:
    return str(event.data.get("title") or "") if isinstance(event.data, dict) else ""


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    # SQLite hands back naive datetimes; every stored time is UTC.
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def _secrets(integration: Integration) -> list[str]:
    """The integration's secret settings as set now, long enough to search for."""
    try:
        settings = integration.create_submitter().settings
    except Exception:  # noqa: BLE001 - unreadable settings hold no secret to look for
        return []
    values = (getattr(settings, name, None) for name in type(settings).model_fields)
    return [v.get_secret_value() for v in values if isinstance(v, SecretStr) and len(v.get_secret_value()) >= 4]


def _redact(value: Any, secrets: list[str]) -> Any:
    if not secrets or value is None:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {_redact(k, secrets): _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(item, secrets) for item in value]
    return value
