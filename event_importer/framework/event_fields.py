"""Rules for reading an event that every destination applies the same way: its stable id, when an
overnight event ends, and its place as one line of text.

Integration authors import these from `event_importer.sdk`, so that two destinations never differ
on what an event is, only on how they write it.
"""

import datetime as dt
import hashlib
import re
from collections.abc import Iterable

from event_importer.events.model import Location

_ONE_DAY = dt.timedelta(days=1)
# A token holding a digit: a postcode ("10179", "EC1M", "6HJ") or a house number.
_POSTCODE_TOKEN = re.compile(r"\S*\d\S*")


def source_url_id(source_url: str) -> str:
    """The event's stable id: the SHA-1 of its source URL, hex.

    The same for every version of the event, so a destination can upsert by it. Destinations hold
    these ids (the webhook's `id`, CalDAV's UID): the rule must never change.
    """
    return hashlib.sha1(source_url.encode()).hexdigest()


def overnight_end(start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """`end`, moved to the next day when it is at or before `start` (a club night from 22:00 to 04:00).

    Raises:
        OverflowError: the next day is past the year 9999.
    """
    return end + _ONE_DAY if end <= start else end


def place_line(location: Location | None, *, venue: str | None = None) -> str:
    """Venue, address, city, state and country joined with ", ", each said once.

    A part is left out when an earlier part, or one of its comma-separated pieces, already says it,
    compared without case and postcodes: with the address "Köpenicker Str. 70, 10179 Berlin", the
    city "Berlin" is not repeated, while "Berliner Str. 5" does not say "Berlin".
    """
    parts = [venue] + ([location.address, location.city, location.state, location.country] if location else [])
    return ", ".join(_said_once(part for part in parts if part))


def _said_once(parts: Iterable[str]) -> list[str]:
    kept: list[str] = []
    said: set[str] = set()
    for part in parts:
        key = _comparable(part)
        if key in said:
            continue
        kept.append(part)
        said.add(key)
        said.update(_comparable(piece) for piece in part.split(","))
    return kept


def _comparable(text: str) -> str:
    # "10179 Berlin", "NY 10001" and "London SW1A 1AA" compare as "berlin", "ny" and "london".
    words = _POSTCODE_TOKEN.sub(" ", text.casefold()).split()
    return " ".join(words) or " ".join(text.casefold().split())
