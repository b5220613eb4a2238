"""`EventData`, the normalised shape of one imported event, as the reference Event Importer produces it.

Only `source_url` is required: a cached event may lack what one destination needs (a title, a date)
and still be useful to another, so such gaps are reported by the destination's transformer, per event.
"""

import datetime as dt
import re
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from event_importer.events.status import EventStatus, parse_event_status, parse_previous_start

# Descriptions beyond this are almost certainly scraping accidents; no destination takes them.
MAX_TEXT_LENGTH = 100_000
MAX_URL_LENGTH = 2_048


# Whitespace breaks URLs; NUL is not storable as text (PostgreSQL rejects it).
_WHITESPACE = re.compile(r"[\s\x00]")
# Scheme http or https (any case) and a non-empty host: what urlsplit would say, at a tenth of the
# cost, which counts for three URLs per event every time an event is validated.
_HTTP_URL = re.compile(r"https?://[^/?#]", re.IGNORECASE)


def check_http_url(value: str | None) -> str | None:
    """`value` stripped when it is an absolute http(s) URL, None when blank; for pydantic validators.

    Integration settings use it for their URLs, so a typo fails when the settings load, naming the
    variable, not at the first request.

    Raises:
        ValueError: not an absolute http(s) URL, or longer than `MAX_URL_LENGTH`.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"URL is longer than {MAX_URL_LENGTH} characters")
    if not _HTTP_URL.match(value) or _WHITESPACE.search(value) or ("[" in value and not _splits(value)):
        raise ValueError("must be an absolute http(s) URL")
    return value


def _splits(value: str) -> bool:
    # Only a bracketed (IPv6) host can make urlsplit refuse what the pattern accepts.
    try:
        urlsplit(value)
    except ValueError:
        return False
    return True


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character (U+0000), which cannot be stored as text")
    return value


ShortText = Annotated[str, StringConstraints(max_length=1_000), AfterValidator(_no_nul)]
LongText = Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH), AfterValidator(_no_nul)]
# Lineups of festivals run long, but not to thousands of acts.
MAX_LIST_ITEMS = 500


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class EventTime(_Model):
    """Local start and end times ("HH:MM") and the IANA timezone they are in."""

    start: dt.time | None = None
    end: dt.time | None = None
    timezone: str | None = None

    @field_serializer("start", "end")
    def _hh_mm(self, value: dt.time | None) -> str | None:
        return None if value is None else value.strftime("%H:%M")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if not value:
            return None
        # The set lookup comes first: ZoneInfo caches few zones and would read the disk each time.
        if value not in _timezone_names():
            raise ValueError(f"{value!r} is not an IANA timezone name (e.g. 'Europe/Berlin')")
        return value

    @field_validator("start", "end")
    @classmethod
    def _local_time(cls, value: dt.time | None) -> dt.time | None:
        # Times are local to `timezone`; an offset written into the time would contradict it.
        return value.replace(tzinfo=None) if value is not None else None


_TIMEZONES: set[str] = set()


def _timezone_names() -> set[str]:
    if not _TIMEZONES:
        _TIMEZONES.update(available_timezones())
    return _TIMEZONES


class Coordinates(_Model):
    """WGS84 latitude and longitude in degrees."""

    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)


class Location(_Model):
    address: ShortText | None = None
    city: ShortText | None = None
    state: ShortText | None = None
    country: ShortText | None = None
    coordinates: Coordinates | None = None


class Images(_Model):
    full: str | None = None
    thumbnail: str | None = None

    _urls = field_validator("full", "thumbnail")(classmethod(lambda cls, v: check_http_url(v)))


class EventData(_Model):
    """One imported event. `source_url` identifies it in the event cache."""

    title: ShortText | None = None
    venue: ShortText | None = None
    date: dt.date | None = None
    end_date: dt.date | None = None
    time: EventTime | None = None
    promoters: list[ShortText] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    lineup: list[ShortText] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    long_description: LongText | None = None
    short_description: LongText | None = None
    genres: list[ShortText] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    location: Location | None = None
    images: Images | None = None
    minimum_age: int | None = Field(default=None, ge=0, le=120)
    cost: ShortText | None = None
    ticket_url: str | None = None
    source_url: str
    imported_at: dt.datetime | None = None
    # schema.org's eventStatus; see event_importer.events.status for the forms accepted.
    status: Annotated[EventStatus, BeforeValidator(parse_event_status)] = EventStatus.SCHEDULED
    # schema.org's previousStartDate: when a rescheduled (or postponed) event was to start.
    previous_start: Annotated[dt.date | dt.datetime | None, BeforeValidator(parse_previous_start)] = None

    _urls = field_validator("ticket_url", "source_url")(classmethod(lambda cls, v: check_http_url(v)))

    @field_validator("source_url")
    @classmethod
    def _source_url_required(cls, value: str | None) -> str:
        if not value:
            raise ValueError("source_url is required: it identifies the event")
        return value

    @model_validator(mode="after")
    def _end_not_before_start(self) -> "EventData":
        if self.date and self.end_date and self.end_date < self.date:
            raise ValueError(f"end_date {self.end_date} is before date {self.date}")
        return self

    def to_json(self) -> dict[str, Any]:
        """The event as JSON-ready data, without empty fields, as stored in the event cache.

        The default status is left out too: events stored before there was a status keep their hash.
        """
        data = self.model_dump(mode="json", exclude_none=True)
        if data.get("status") == EventStatus.SCHEDULED:
            del data["status"]
        return data


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming the field path and the reason, e.g. `date: Input should be ...`."""
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(event)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}")
    return "; ".join(lines)
