"""Packed records: what goes in comes out, in order and chunk by chunk, in a fraction of the memory."""

import json
import pickle

import pytest

from event_importer.framework.packed import Packed, check_json
from event_importer.framework.records import EventKey, EventRef, Payload
from event_importer_tests.factories import event_data


def refs(n: int, start: int = 1) -> list[EventRef]:
    return [
        EventRef(i, f"https://events.example.org/e/{i}", event_data(), f"{i:064x}", i % 2 == 0, i % 3)
        for i in range(start, start + n)
    ]


def test_events_and_payloads_come_back_equal_and_in_order():
    events = refs(1_234)
    packed = Packed.of(EventRef, iter(events), chunk_size=100)
    assert len(packed) == 1_234
    assert list(packed) == events
    assert [len(c) for c in packed.chunks()] == [100] * 12 + [34]
    assert packed.head(3) == events[:3] and packed.head(5_000) == events

    payloads = [Payload(e.key, {"title": e.title}) for e in events[:5]] + [Payload(events[5].key, None, "no date")]
    assert list(Packed.of(Payload, payloads)) == payloads
    assert payloads[0].event == EventKey(1, events[0].source_url, events[0].title, events[0].data_hash, False, 1)


def test_values_json_would_keep_survive_those_orjson_refuses():
    huge = 2**70
    event = EventRef(1, "https://e.example.org/1", {"capacity": huge, "prices": {"1": 2.5}}, "h")
    [back] = Packed.of(EventRef, [event])
    assert back.data["capacity"] == huge


def test_a_packed_run_takes_a_small_part_of_the_objects_memory():
    events = refs(2_000)
    packed = Packed.of(EventRef, events)
    stored = sum(len(blob) for blob in packed._blobs)
    # What pickle needs for the same rows, a lower bound of what the objects take in memory.
    plain = len(pickle.dumps(events))
    assert stored * 4 < plain, (stored, plain)


def test_an_empty_sequence():
    packed = Packed.of(EventRef, [])
    assert len(packed) == 0 and list(packed) == [] and packed.head(20) == []


def test_check_json_names_what_is_not_json():
    check_json({"a": [1, "b", None, 2.5], 1: "non-string keys become strings"})
    with pytest.raises(TypeError, match="set"):
        check_json({"tags": {"a"}})
    assert json.dumps({"n": 2**70})  # and what Python's json accepts passes
    check_json({"n": 2**70})


def test_json_bytes_are_compact_utf8_and_fall_back_for_what_orjson_refuses():
    from event_importer import jsonbytes

    assert jsonbytes.dumps({"city": "Köln", 1: [True, None]}) == '{"city":"Köln","1":[true,null]}'.encode()
    assert jsonbytes.loads(jsonbytes.dumps({"n": 2**70})) == {"n": 2**70}
    assert jsonbytes.loads(b"\xef\xbb\xbf{\"a\": 1}") == {"a": 1}
    with pytest.raises(ValueError):
        jsonbytes.loads(b"<html>")
