"""One sensor per integration: request a run when there are new unsubmitted or changed events, and
when failed events are due for an automatic retry.

The cursor is a small JSON object, the highest event id and `updated_at` seen among events needing
work when the sensor last requested runs. A tick requests a run for a selector only when some of its
events lie beyond that cursor, so the same events never trigger twice; the `run_key` is the new
cursor window, so even a reset cursor does not launch the same run again. The sensor reads the event
cache only (aggregate queries), never an external API. Created stopped.

Retries are not a cursor window but a matter of time: each tick (and each schedule tick, through
`retry_request`) asks the `retry` selector whether failed events are due, and requests one run for
them keyed by the newest attempt among them, so a retry that failed again makes a new key.
"""

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import dagster as dg
from sqlalchemy import and_, distinct, func, or_, select
from sqlalchemy.orm import Session

from event_importer.db.models import Submission
from event_importer.framework.submitter import BaseSubmitter
from event_importer.orchestration.jobs import SubmissionJob
from event_importer.orchestration.resources import DatabaseResource

# The selector of failed events due for another attempt (see framework.selectors.RetrySelector).
RETRY_SELECTOR = "retry"
# How many events a retry run was requested for, so the run list says why it was started.
TAG_RETRY_EVENTS = "event-importer/retry_events"

# The selectors whose events a sensor submits: never sent, changed (or cancelled) since accepted,
# removed from their source since accepted (a removal bumps `updated_at`, so the cursor sees it).
WATCHED_SELECTORS = ("unsubmitted", "changed", "removed")
MINIMUM_INTERVAL_S = 60


def sensor_name(service: str) -> str:
    return f"{service}_new_events_sensor"


@dataclass(frozen=True)
class Cursor:
    max_id: int = 0
    max_updated_at: dt.datetime | None = None

    @classmethod
    def parse(cls, text: str | None) -> "Cursor":
        if not text:
            return cls()
        data = json.loads(text)
        updated = data.get("max_updated_at")
        return cls(int(data.get("max_id") or 0), dt.datetime.fromisoformat(updated) if updated else None)

    def dump(self) -> str:
        updated = self.max_updated_at.isoformat() if self.max_updated_at else None
        return json.dumps({"max_id": self.max_id, "max_updated_at": updated}, sort_keys=True)

    def widen(self, max_id: int | None, max_updated_at: dt.datetime | None) -> "Cursor":
        updated = self.max_updated_at
        if max_updated_at is not None and (updated is None or _naive(max_updated_at) > _naive(updated)):
            updated = max_updated_at
        return Cursor(max(self.max_id, max_id or 0), updated)


def _naive(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive UTC datetimes, PostgreSQL aware ones; compare them alike.
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def build_new_events_sensor(submission: SubmissionJob, job: Any, submitter: BaseSubmitter) -> dg.SensorDefinition:
    service = submission.service
    selectors = {name: submitter.get_selector(name) for name in WATCHED_SELECTORS}
    retry_selector = submitter.selectors.get(RETRY_SELECTOR)

    @dg.sensor(
        name=sensor_name(service),
        job=job,
        minimum_interval_seconds=MINIMUM_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Submit to {service} when events are imported or change, and retry failed events "
        "when due (one run per selector).",
    )
    def new_events_sensor(
        context: dg.SensorEvaluationContext, database: DatabaseResource
    ) -> dg.SensorResult | dg.SkipReason:
        cursor = Cursor.parse(context.cursor)
        widened = cursor
        found: dict[str, int] = {}
        with database.get_database().session() as session:
            for name, selector in selectors.items():
                events = selector.statement(service).subquery()
                newer: Any = or_(events.c.id > cursor.max_id, *_after(events.c.updated_at, cursor.max_updated_at))
                count, max_id, max_updated = session.execute(
                    select(func.count().filter(newer), func.max(events.c.id), func.max(events.c.updated_at))
                ).one()
                widened = widened.widen(max_id, max_updated)
                if count:
                    found[name] = count
            retry = retry_request(session, submission, retry_selector, "sensor")
        requests = [] if retry is None else [retry]
        if not found:
            if retry is not None:
                context.log.info(f"{retry.tags[TAG_RETRY_EVENTS]} failed events due for a retry")
                return dg.SensorResult(run_requests=requests)
            return dg.SkipReason(
                f"no unsubmitted or changed events beyond cursor {cursor.dump()}, no failed events due for a retry"
            )
        window = f"{widened.max_id}:{widened.max_updated_at.isoformat() if widened.max_updated_at else '-'}"
        for name in found:
            config = submission.config_class(selector=name)
            requests.append(
                dg.RunRequest(
                    run_key=f"{service}:{name}:{window}",
                    run_config=submission.run_config(config),
                    tags=submission.tags(config, "sensor"),
                )
            )
        context.log.info(", ".join(f"{n} {name}" for name, n in found.items()) + " events beyond the cursor")
        return dg.SensorResult(run_requests=requests, cursor=widened.dump())

    return new_events_sensor


def retry_request(session: Session, submission: SubmissionJob, selector: Any, trigger: str) -> dg.RunRequest | None:
    """A run of the `retry` selector when failed events are due for one; None when none are.

    Its `run_key` names the newest attempt among them: the same due events never start two runs
    from one sensor or schedule, and once a retry failed again its new attempt makes a new key.
    """
    if selector is None:
        return None
    service = submission.service
    events = selector.statement(service).subquery()
    count, newest = session.execute(
        select(func.count(distinct(events.c.id)), func.max(Submission.id)).select_from(events).join(
            Submission, and_(Submission.event_cache_id == events.c.id, Submission.service_name == service)
        )
    ).one()
    if not count:
        return None
    config = submission.config_class(selector=RETRY_SELECTOR)
    return dg.RunRequest(
        run_key=f"{service}:{RETRY_SELECTOR}:{newest}",
        run_config=submission.run_config(config),
        tags={**submission.tags(config, trigger), TAG_RETRY_EVENTS: str(count)},
    )


def _after(column: Any, when: dt.datetime | None) -> list[Any]:
    return [] if when is None else [column > when]
