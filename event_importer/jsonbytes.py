"""JSON to and from bytes, fast (orjson) where it can be, exactly as Python's json where it cannot.

orjson writes and reads JSON several times faster than the standard library, which matters once per
event on the way out (the request body) and once on the way back (the answer). It refuses integers
beyond 64 bits; Python's json takes over for those values, so no value that json accepts is refused.
"""

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; non-string keys are written as strings, as Python's json writes them.

    Raises:
        TypeError: `value` holds something JSON cannot express (a set, an object).
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def loads(data: bytes | str) -> Any:
    """The value of a JSON document.

    Raises:
        ValueError: `data` is not JSON.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        # What orjson refuses but Python's json reads (e.g. a UTF-8 BOM, NaN) is decided by json.
        return json.loads(data)
