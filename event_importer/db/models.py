"""SQLAlchemy models: `EventCache` (one row per imported event) and `Submission` (one row per attempt).

A `Submission` row is written by the ledger only (`event_importer.ledger`). The partial unique index
`uq_submissions_one_pending` lets at most one attempt per (event, service) be `pending`: that row is
the claim that keeps two runs, in any processes, from sending the same event at once. Attempts
imported from an Event Importer database carry its submission id in `imported_id`.
"""

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {
        dt.datetime: DateTime(timezone=True),
        # SQL NULL, not a JSON `null`, for "no response".
        dict[str, Any]: JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql"),
    }


class SubmissionStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"
    DRY_RUN = "dry_run"
    # Nothing was sent because the destination's lifecycle rule says so (e.g. it cannot cancel
    # events); the reason is in `error`. Like a success, it settles that version of the event.
    SKIPPED = "skipped"


# The attempts that settle a version of an event: the `changed` and `removed` selectors compare against these.
SETTLED_STATUSES = (SubmissionStatus.SUCCESS.value, SubmissionStatus.SKIPPED.value)


class FailureKind(enum.StrEnum):
    """Whether a failed attempt is worth repeating as it is (see `errors.SubmissionError`'s subclasses)."""

    # Connection errors, timeouts, 429, 5xx, a run that died mid-attempt: later runs retry these.
    TRANSIENT = "transient"
    # 4xx rejections, unusable answers, events that cannot be transformed: they wait for new data.
    PERMANENT = "permanent"


class EventCache(Base):
    """One imported event: its data as JSON and a hash of that data to notice changes."""

    __tablename__ = "event_cache"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_url: Mapped[str] = mapped_column(String(2048), unique=True)
    data: Mapped[dict[str, Any]]
    data_hash: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    # When the event was found gone from its source (`events load --mirror`, `events remove`); the
    # row and its history stay, and loading the event again clears it.
    removed_at: Mapped[dt.datetime | None]
    # The source a `--mirror` load last saw the event in (a name, or the source URL's host).
    source: Mapped[str | None] = mapped_column(String(255))

    submissions: Mapped[list["Submission"]] = relationship(
        back_populates="event", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"EventCache(id={self.id!r}, source_url={self.source_url!r})"


class Submission(Base):
    """One attempt to send one event to one service, and what came of it."""

    __tablename__ = "submissions"
    __table_args__ = (
        # Attempts per (event, service) of any status, dry runs included (the status report asks
        # about those); the selectors read `ix_submissions_real` below.
        Index("ix_submissions_service_event", "service_name", "event_cache_id", "id"),
        # Covers every per-event question `select` and the failed/changed/removed selectors ask about
        # real attempts (count, latest status, latest settled hash and operation) without reading the table,
        # and, read in order for one service, lets PostgreSQL merge-join it with the events.
        # Key columns rather than INCLUDE, so SQLite can use it as a covering index too; SQLite only
        # uses it when a query repeats `status != 'dry_run'` word for word.
        Index(
            "ix_submissions_real",
            "service_name",
            "event_cache_id",
            "id",
            "status",
            "data_hash",
            "operation",
            sqlite_where=text("status != 'dry_run'"),
            postgresql_where=text("status != 'dry_run'"),
        ),
        Index("ix_submissions_run", "run_id"),
        # With the index below, these are the claims: see event_importer.ledger.
        Index(
            "uq_submissions_attempt",
            "service_name",
            "event_cache_id",
            "attempt",
            unique=True,
            sqlite_where=text("status != 'dry_run'"),
            postgresql_where=text("status != 'dry_run'"),
        ),
        Index(
            "uq_submissions_one_pending",
            "service_name",
            "event_cache_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # An imported attempt is keyed by the source's submission id: importing again adds nothing.
        Index(
            "uq_submissions_imported",
            "service_name",
            "event_cache_id",
            "imported_id",
            unique=True,
            sqlite_where=text("imported_id IS NOT NULL"),
            postgresql_where=text("imported_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_cache_id: Mapped[int] = mapped_column(ForeignKey("event_cache.id", ondelete="CASCADE"))
    service_name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    # What the attempt was for the destination: create, update, cancel or remove
    # (`event_importer.framework.lifecycle.Operation`).
    operation: Mapped[str] = mapped_column(String(16), default="create", server_default="create")
    data_hash: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(64))
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    http_status: Mapped[int | None]
    response: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    # The Event Importer's `submissions.id` for an attempt imported from its database; NULL for this
    # project's own attempts. Nullable, so `Database` can add it to a database created before it.
    imported_id: Mapped[int | None] = mapped_column(BigInteger)
    # A `FailureKind` on failed attempts; NULL otherwise, and on failures recorded before it existed.
    failure_kind: Mapped[str | None] = mapped_column(String(16))

    event: Mapped[EventCache] = relationship(back_populates="submissions")

    def __repr__(self) -> str:
        return (
            f"Submission(id={self.id!r}, event_cache_id={self.event_cache_id!r}, "
            f"service_name={self.service_name!r}, status={self.status!r}, attempt={self.attempt!r})"
        )
