"""A run's events and payloads, held between its steps as compressed JSON chunks.

A run hands every selected event, then every payload, from one step to the next. As Python objects
an event of about 1 KB of JSON takes several KB, so a run over 100,000 events would hold about a
gigabyte; as zlib-compressed JSON, a chunk of rows at a time, it takes about 150 bytes, and packing
and unpacking cost a few microseconds per event (see `jsonbytes`). Only one chunk is unpacked at a time.
"""

import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, Protocol, Self, TypeVar

from event_importer import jsonbytes
from event_importer.framework.chunks import CHUNK_SIZE, chunked

# Fast and still small: level 1 compresses these rows 5-8 times, at a third of the default's cost.
_LEVEL = 1


class Row(Protocol):
    def to_row(self) -> tuple[Any, ...]: ...

    @classmethod
    def from_row(cls, row: list[Any]) -> Self: ...


R = TypeVar("R", bound=Row)


class Packed(Generic[R]):
    """An immutable sequence of records of one type, stored compactly; iterate it or its chunks."""

    __slots__ = ("_blobs", "_count", "_from_row")

    def __init__(self, from_row: Callable[[list[Any]], R], blobs: list[bytes], count: int) -> None:
        self._from_row = from_row
        self._blobs = blobs
        self._count = count

    @classmethod
    def of(cls, record_type: type[R], records: Iterable[R], chunk_size: int = CHUNK_SIZE) -> "Packed[R]":
        """Pack `records`, consuming them a chunk at a time."""
        blobs: list[bytes] = []
        count = 0
        for chunk in chunked(records, chunk_size):
            blobs.append(_encode([record.to_row() for record in chunk]))
            count += len(chunk)
        return cls(record_type.from_row, blobs, count)

    def __len__(self) -> int:
        return self._count

    def chunks(self) -> Iterator[list[R]]:
        for blob in self._blobs:
            yield [self._from_row(row) for row in _decode(blob)]

    def __iter__(self) -> Iterator[R]:
        for chunk in self.chunks():
            yield from chunk

    def head(self, n: int) -> list[R]:
        """The first `n` records, unpacking no more chunks than needed."""
        first: list[R] = []
        for chunk in self.chunks():
            if len(first) >= n:
                break
            first.extend(chunk[: n - len(first)])
        return first


def _encode(rows: list[tuple[Any, ...]]) -> bytes:
    return zlib.compress(jsonbytes.dumps(rows), _LEVEL)


def _decode(blob: bytes) -> list[list[Any]]:
    rows: list[list[Any]] = jsonbytes.loads(zlib.decompress(blob))
    return rows


def check_json(value: Any) -> None:
    """Raise `TypeError` naming the problem when `value` cannot be packed (or sent) as JSON."""
    jsonbytes.dumps(value)
