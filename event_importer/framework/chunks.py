"""Working through many rows a chunk at a time."""

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

# Rows per database round trip when streaming, claiming and recording, and per packed chunk.
CHUNK_SIZE = 500

T = TypeVar("T")


def chunked(items: Iterable[T], size: int = CHUNK_SIZE) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
