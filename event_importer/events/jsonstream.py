"""Records out of a JSON document, a JSON array or JSON Lines, read from a stream of bytes.

Memory stays flat in the input's size: JSON Lines are read a line at a time and a JSON array an
element at a time, each at most `MAX_RECORD_BYTES`. Each array element is parsed where it stands
by the standard library's C parser; one that does not parse is delimited by a scanner that follows
only strings and brackets, and parsed on its own to say why. So one bad element (invalid UTF-8 or
JSON, nesting too deep, a trailing comma) is reported with its index and line while the elements
around it still load. Only a break in the array's framing (a string or bracket that is never
closed) ends the reading early, and the report says so.

Which shape a stream is, from its first line that is not blank:

- it starts with `[` and does not parse on its own: a JSON array spread over lines (or too long to
  be one line of JSON Lines), read element by element;
- it parses on its own and nothing follows: one JSON document (an array's elements, or one event);
- it parses on its own and more lines follow: JSON Lines, whatever the first line holds (an array on
  the first line is then one bad record, as on any other line);
- it starts with anything else and does not parse on its own: one event written over several lines
  if the whole stream parses as that, else JSON Lines whose first line is broken.
"""

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

# Larger than any event the model accepts (100,000-character descriptions, lists of 500 items),
# small enough that one bad line or element cannot take the process's memory.
MAX_RECORD_BYTES = 16 * 1024 * 1024
READ_SIZE = 1024 * 1024

_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
_NOT_WHITESPACE = re.compile(r"[^ \t\r\n]")
_STRUCTURE = re.compile(r'[][{}",]')
# A byte that is not UTF-8, as decoding with "surrogateescape" leaves it.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
_DECODER = json.JSONDecoder()
# Inside a JSON string: everything up to its closing quote, or to the end of the data read so far,
# stopping before a backslash that is the last byte read (its escaped byte is still to come).
_STRING_PART = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_UNPARSED = object()

TOO_DEEP = "not valid JSON: nested too deeply to be an event"
TOO_LARGE = f"larger than {MAX_RECORD_BYTES // (1024 * 1024)} MiB, too large to be an event; not read"


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    location: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


Record = tuple[str, Any]


def stream_records(stream: BinaryIO, name: str) -> Iterator[Record | InvalidRecord]:
    """Each record of `stream` with its location (`name:line` or `name[index]`), or why it is not one.

    `stream` must be seekable: its shape is told from its first line, then it is read from the start.
    """
    # Files saved by spreadsheet tools and Windows editors start with a byte order mark.
    if stream.read(len(_BOM)) != _BOM:
        stream.seek(0)
    start = stream.tell()
    line = _first_content_line(stream)
    if line is None:
        yield InvalidRecord(name, "no events: the file is empty")
        return
    value = _parse_line(line) if len(line) <= MAX_RECORD_BYTES else _UNPARSED
    if value is not _UNPARSED and _only_whitespace_follows(stream):
        if isinstance(value, list):
            yield from ((f"{name}[{index}]", item) for index, item in enumerate(value))
        else:
            yield name, value
        return
    stream.seek(start)
    if value is _UNPARSED:
        if line.lstrip(_WHITESPACE).startswith(b"["):
            yield from _array_elements(stream, name)
            return
        document = stream.read(MAX_RECORD_BYTES + 1)
        if len(document) <= MAX_RECORD_BYTES and _parses(text := document.decode("utf-8", "surrogateescape")):
            # One event over several lines; a byte in it that is not UTF-8 is its one problem.
            yield _parse_text(name, text, 1, 1)
            return
        stream.seek(start)
    yield from _json_lines(stream, name)


def _first_content_line(stream: BinaryIO) -> bytes | None:
    while line := stream.readline(MAX_RECORD_BYTES + 1):
        if line.strip(_WHITESPACE):
            return line
    return None


def _parse_line(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return _UNPARSED


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return False
    return True


def _only_whitespace_follows(stream: BinaryIO) -> bool:
    while chunk := stream.read(READ_SIZE):
        if chunk.strip(_WHITESPACE):
            return False
    return True


def _json_lines(stream: BinaryIO, name: str) -> Iterator[Record | InvalidRecord]:
    lineno = 0
    while line := stream.readline(MAX_RECORD_BYTES + 1):
        lineno += 1
        location = f"{name}:{lineno}"
        if len(line) > MAX_RECORD_BYTES:
            _skip_rest_of_line(stream)
            yield InvalidRecord(location, TOO_LARGE)
        elif line.strip(_WHITESPACE):
            yield parse_record(location, line.rstrip(_WHITESPACE))


def _skip_rest_of_line(stream: BinaryIO) -> None:
    while (part := stream.readline(READ_SIZE)) and not part.endswith(b"\n"):
        pass


def parse_record(location: str, raw: bytes, line: int | None = None, column: int = 1) -> Record | InvalidRecord:
    """`raw` decoded and parsed as one JSON value, or why not.

    `line` and `column` say where `raw` starts in its file; None leaves the line out of messages, as
    for a line of JSON Lines, whose location names it already.
    """
    return _parse_text(location, raw.decode("utf-8", "surrogateescape"), line, column)


def _parse_text(location: str, text: str, line: int | None, column: int) -> Record | InvalidRecord:
    # Text decoded with "surrogateescape": each byte that is not UTF-8 became U+DC80-U+DCFF.
    if bad := _NOT_UTF8.search(text):
        before = text[: bad.start()]
        at_line = before.count("\n")
        at_column = bad.start() - before.rfind("\n") - 1 + (column if at_line == 0 else 1)
        where = _where(None if line is None else line + at_line, at_column)
        return InvalidRecord(location, f"not UTF-8 text: byte 0x{ord(bad.group()) - 0xDC00:02x} at {where}")
    try:
        return location, json.loads(text)
    except json.JSONDecodeError as exc:
        at_column = exc.colno + (column - 1 if exc.lineno == 1 else 0)
        where = _where(None if line is None else line + exc.lineno - 1, at_column)
        return InvalidRecord(location, f"not valid JSON: {exc.msg} ({where})")
    except RecursionError:
        return InvalidRecord(location, TOO_DEEP)


def _where(line: int | None, column: int) -> str:
    return f"column {column}" if line is None else f"line {line}, column {column}"


class _Buffer:
    """Text decoded ahead from a stream, dropped from the front as it is used, with line numbers."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.data = ""
        self.offset = 0  # of data[0] in the decoded text
        self._counted = 0  # newlines are counted up to this offset...
        self._line = 1  # ...which is on this line...
        self._line_start = 0  # ...which starts at this offset.

    def more(self) -> bool:
        chunk = self.stream.read(READ_SIZE)
        text = self.decoder.decode(chunk, final=not chunk)
        self.data += text
        return bool(chunk or text)

    def drop(self, upto: int) -> None:
        """Forget data[:upto]; indexes into `data` shift down by `upto`."""
        self.position(upto)
        self.data = self.data[upto:]
        self.offset += upto

    def position(self, index: int) -> tuple[int, int]:
        """Line and column (1-based) of data[index]; `index` never goes backwards."""
        end = self.offset + index
        if end > self._counted:
            lo, hi = self._counted - self.offset, index
            newlines = self.data.count("\n", lo, hi)
            if newlines:
                self._line += newlines
                self._line_start = self.offset + self.data.rfind("\n", lo, hi) + 1
            self._counted = end
        return self._line, end - self._line_start + 1

    def skip_whitespace(self, index: int) -> int | None:
        """Index of the next character that is not whitespace, None at the end of the stream."""
        while True:
            found = _NOT_WHITESPACE.search(self.data, index)
            if found:
                return found.start()
            index = len(self.data)
            if not self.more():
                return None


def _array_elements(stream: BinaryIO, name: str) -> Iterator[Record | InvalidRecord]:
    buffer = _Buffer(stream)
    index = buffer.skip_whitespace(0)
    assert index is not None and buffer.data[index] == "["
    index += 1
    element = 0
    after_comma = False
    while True:
        found = buffer.skip_whitespace(index)
        location = f"{name}[{element}]"
        if found is None:
            yield InvalidRecord(location, "not valid JSON: the file ends before the array's closing ]")
            return
        if found > READ_SIZE:
            buffer.drop(found)
            found = 0
        line, column = buffer.position(found)
        char = buffer.data[found]
        if char == "]":
            if after_comma:
                reason = f"not valid JSON: a comma after the last element (line {line}, column {column})"
                yield InvalidRecord(location, reason)
            yield from _after_array(buffer, found + 1, name)
            return
        if char == ",":
            yield InvalidRecord(location, f"not valid JSON: an empty element (line {line}, column {column})")
            element, index, after_comma = element + 1, found + 1, True
            continue
        parsed = _parse_in_place(buffer, found)
        if parsed is not None:
            value, end = parsed
            yield location, value
        else:
            scanned = _scan_element(buffer, found)
            if scanned is None:
                yield InvalidRecord(
                    location,
                    f"not valid JSON: the element starting at line {line}, column {column} has a string or bracket "
                    "that is never closed, so the array's remaining elements cannot be told apart; nothing after "
                    "it was read",
                )
                return
            start, end = scanned
            if start is None:
                yield InvalidRecord(location, TOO_LARGE)
            else:
                yield _parse_text(location, buffer.data[start:end].rstrip(), line, column)
        element += 1
        after_comma = buffer.data[end : end + 1] == ","
        index = end + 1 if after_comma else end


def _parse_in_place(buffer: _Buffer, start: int) -> tuple[Any, int] | None:
    """The element at `start` parsed where it is, and the index of the `,` or `]` after it; None when
    it does not parse so (an error, or the element goes on past the text read so far), which leaves
    the element to the scanner. The common case, at the speed of the C parser.
    """
    try:
        value, end = _DECODER.raw_decode(buffer.data, start)
    except (json.JSONDecodeError, RecursionError):
        return None
    if end - start > MAX_RECORD_BYTES:
        return None
    after = buffer.skip_whitespace(end)
    if after is None or buffer.data[after] not in ",]" or _NOT_UTF8.search(buffer.data, start, end):
        return None
    return value, after


def _scan_element(buffer: _Buffer, start: int) -> tuple[int | None, int] | None:
    """Where the element at `start` ends: (start, index of the `,` or `]` after it).

    The start is None for an element larger than `MAX_RECORD_BYTES`, whose text was dropped while
    scanning; the result is None when the stream ends inside the element.
    """
    index, depth, in_string, too_large = start, 0, False, False
    while True:
        if not too_large and index - start > MAX_RECORD_BYTES:
            too_large = True
        if too_large and index > READ_SIZE:
            buffer.drop(index)
            start, index = 0, 0
        if in_string:
            index = _STRING_PART.match(buffer.data, index).end()  # type: ignore[union-attr]
            if buffer.data[index : index + 1] == '"':
                index, in_string = index + 1, False
            elif not buffer.more():  # the data ended inside the string, or right after a backslash
                return None
            continue
        found = _STRUCTURE.search(buffer.data, index)
        if found is None:
            index = len(buffer.data)
            if not buffer.more():
                return None
            continue
        char, index = found.group(), found.end()
        if char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif depth > 0 and char in "]}":
            depth -= 1
        elif depth == 0 and char in ",]":
            return (None if too_large else start), found.start()
        # A `}` at depth 0 closes no bracket: the element is invalid, which parsing it will say.


def _after_array(buffer: _Buffer, index: int, name: str) -> Iterator[InvalidRecord]:
    found = buffer.skip_whitespace(index)
    if found is not None:
        line, column = buffer.position(found)
        yield InvalidRecord(
            name, f"not valid JSON: more data after the array's closing ] (line {line}, column {column}); not read"
        )
