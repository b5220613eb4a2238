"""`EventData`, the normalised shape of one imported event, as the reference Event Importer produces it.

`title` and `source_url` are required, as in the Event Importer (the title names the event, the URL
identifies it). Everything else is optional: a cached event may lack what one destination needs (a
date, a timezone) and still be useful to another, so such gaps are reported by the destination's
transformer, per event.

The shapes are the Event Importer's: `minimum_age` is text ("21+", "All Ages"), and times are
written as importers write them ("21:00", "21:00:00", "9pm", "9:30 PM").
"""

import datetime as dt
import re
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlsplit

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


def normalise_source_url(url: str) -> str:
    """The event's key in the cache: `url` with its scheme and host in lower case, as RFC 3986
    (section 6.2.2.1) says they compare; path, query and fragment are kept as given, a trailing slash
    included, since servers may tell "/a" and "/a/" apart.

    The model applies it to `source_url`, so every writer of the cache keys events the same way;
    lookups by a user's URL (the `url` selector) apply it too.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter)
        if found != -1:
            end = min(end, found)
    authority = rest[:end]
    user, at, host = authority.rpartition("@")
    return f"{scheme.lower()}://{user}{at}{host.lower()}{rest[end:]}"


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


# Error messages quote at most this much of an offending value: enough to find it, never a wall of text.
QUOTE_LIMIT = 40


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`repr(value)` for an error message, cut to a short prefix with the full length when long."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(text) if isinstance(value, str) else text
    return f"{text[:limit]!r}... ({len(text):,} characters)"


ShortText = Annotated[str, StringConstraints(max_length=1_000), AfterValidator(_no_nul)]
LongText = Annotated[str, StringConstraints(max_length=MAX_TEXT_LENGTH), AfterValidator(_no_nul)]
# Lineups of festivals run long, but not to thousands of acts.
MAX_LIST_ITEMS = 500


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


# 24-hour clock, "21:00" or "21:00:00" (fractions and an offset tolerated: "22:00:00.000+02:00").
_CLOCK_24 = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.\d{1,6})?)?(?:Z|[+-]\d\d:?\d\d)?", re.IGNORECASE)
# 12-hour clock as listings write it: "9pm", "9 PM", "9:30 PM", "9:30 p.m.".
_CLOCK_12 = re.compile(r"(0?[1-9]|1[0-2])(?::([0-5]\d))?\s*([ap])\.?\s*m\.?", re.IGNORECASE)
TIME_FORMATS = "'21:00', '21:00:00', '9pm' or '9:30 PM'"


def parse_local_time(value: object) -> dt.time | None:
    """A local time of day from the ways importers write one; None for blank.

    An offset written into a 24-hour time is dropped: the times are local to the event's `timezone`,
    which an offset would contradict.

    Raises:
        ValueError: anything else, naming the accepted formats.
    """
    if value is None or isinstance(value, dt.time):
        return value.replace(tzinfo=None) if value is not None else None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if match := _CLOCK_24.fullmatch(text):
            return dt.time(int(match[1]), int(match[2]), int(match[3] or 0))
        if match := _CLOCK_12.fullmatch(text):
            hour = int(match[1]) % 12 + (12 if match[3].lower() == "p" else 0)
            return dt.time(hour, int(match[2] or 0))
    raise ValueError(f"expected a time such as {TIME_FORMATS}, got {quote(value)}")


LocalTime = Annotated[dt.time | None, BeforeValidator(parse_local_time)]


class EventTime(_Model):
    """Local start and end times ("HH:MM") and the IANA timezone they are in."""

    start: LocalTime = None
    end: LocalTime = None
    timezone: str | None = None

    @field_serializer("start", "end")
    def _hh_mm(self, value: dt.time | None) -> str | None:
        return None if value is None else value.strftime("%H:%M")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if not value:
            return None
        if value not in timezone_names():
            raise ValueError(f"{quote(value)} is not an IANA timezone name (e.g. 'Europe/Berlin' or 'UTC')")
        return value


_TIMEZONES: set[str] = set()
# In the IANA database but no place's time: "Factory" is the placeholder for "zone not yet set".
_NOT_PLACES = frozenset({"Factory"})


def timezone_names() -> frozenset[str] | set[str]:
    """The IANA zone names an event may give, the same on every host.

    From the `tzdata` package, not the host's zoneinfo directory, which also holds names of files
    that are not zones of a place: `localtime` (whatever the host is set to) and `posixrules`.
    """
    if not _TIMEZONES:
        names = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
        _TIMEZONES.update(set(names) - _NOT_PLACES)
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


ALL_AGES = "All Ages"
# The Event Importer's words for "no minimum age", compared case-insensitively.
_ALL_AGES_WORDS = frozenset({"all ages", "todos", "family"})
_AGE = re.compile(r"(\d{1,3})\s*\+?")


def normalise_minimum_age(value: object) -> str | None:
    """The minimum age as the Event Importer writes it: "21" and 21 give "21+"; "all ages", "todos"
    and "family" (any case) give "All Ages"; other text is kept with its whitespace tidied.

    An age of 0 is "All Ages": no minimum (and what an integer 0 meant in this project's cache).

    Raises:
        ValueError: a negative number, a fraction, a boolean, or not text or a number.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("expected text such as '21+' or 'All Ages', or a whole number")
    if isinstance(value, int | float):
        if value < 0 or value != int(value):
            raise ValueError(f"expected a whole number of years, got {quote(value)}")
        value = str(int(value))
    text = " ".join(value.split())
    if not text:
        return None
    if match := _AGE.fullmatch(text):
        age = int(match[1])
        return ALL_AGES if age == 0 else f"{age}+"
    if text.casefold() in _ALL_AGES_WORDS:
        return ALL_AGES
    return text


def minimum_age_label(minimum_age: str | None) -> str:
    """How destinations show the minimum age: "Minimum age: 21+", "All Ages", or "" when unknown."""
    if not minimum_age:
        return ""
    return minimum_age if minimum_age == ALL_AGES else f"Minimum age: {minimum_age}"


MinimumAge = Annotated[ShortText | None, BeforeValidator(normalise_minimum_age)]


class EventData(_Model):
    """One imported event. `source_url` identifies it in the event cache; `title` names it."""

    title: Annotated[str, StringConstraints(min_length=1, max_length=1_000), AfterValidator(_no_nul)]
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
    minimum_age: MinimumAge = None
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
        return normalise_source_url(value)

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
