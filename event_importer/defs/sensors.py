"""One sensor per integration: request a run when there are new unsubmitted or changed events.

The cursor is a small JSON object, the highest event id and `updated_at` seen among events needing
work when the sensor last requested runs. A tick requests a run for a selector only when some of its
events lie beyond that cursor, so the same events never trigger twice; the `run_key` is the new
cursor window, so even a reset cursor does not launch the same run again. The sensor reads the event
cache only (aggregate queries), never an external API. Created stopped.
"""

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import dagster as dg
from sqlalchemy import func, or_, select

from event_importer.defs.config import SubmitConfig, run_config, run_tags, service_tags
from event_importer.defs.resources import DatabaseResource
from event_importer.integrations.base import BaseSubmitter

# The selectors whose events a sensor submits: never sent, or changed since accepted.
WATCHED_SELECTORS = ("unsubmitted", "changed")
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


def build_new_events_sensor(
    service: str,
    job: Any,
    submitter: BaseSubmitter,
    config_class: type[SubmitConfig],
) -> dg.SensorDefinition:
    selectors = {name: submitter.get_selector(name) for name in WATCHED_SELECTORS}

    @dg.sensor(
        name=sensor_name(service),
        job=job,
        minimum_interval_seconds=MINIMUM_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Submit to {service} when events are imported or change (one run per selector).",
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
        if not found:
            return dg.SkipReason(f"no unsubmitted or changed events beyond cursor {cursor.dump()}")
        window = f"{widened.max_id}:{widened.max_updated_at.isoformat() if widened.max_updated_at else '-'}"
        requests = []
        for name in found:
            config = config_class(selector=name)
            requests.append(
                dg.RunRequest(
                    run_key=f"{service}:{name}:{window}",
                    run_config=run_config(service, config),
                    tags={**service_tags(service, config), **run_tags(config, "sensor")},
                )
            )
        context.log.info(", ".join(f"{n} {name}" for name, n in found.items()) + " events beyond the cursor")
        return dg.SensorResult(run_requests=requests, cursor=widened.dump())

    return new_events_sensor


def _after(column: Any, when: dt.datetime | None) -> list[Any]:
    return [] if when is None else [column > when]
