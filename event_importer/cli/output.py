"""Small helpers the commands share: tables, JSON and error exits."""

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click
from wcwidth import wcswidth, wcwidth

USAGE_ERROR = 2


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def display_width(text: str) -> int:
    """Terminal columns `text` takes: CJK characters and most emoji take two, combining marks none."""
    width = wcswidth(text)
    # -1: a character with no defined width (a control character); count the rest one by one.
    return width if width >= 0 else sum(max(0, wcwidth(char)) for char in text)


def fit(text: str, max_width: int) -> str:
    """`text` cut with an ellipsis so it takes at most `max_width` columns."""
    if display_width(text) <= max_width:
        return text
    kept, used = [], 1  # the ellipsis takes one column
    for char in text:
        used += max(0, wcwidth(char))
        if used > max_width:
            break
        kept.append(char)
    return "".join(kept) + "…"


def pad(text: str, width: int) -> str:
    """`text` padded with spaces to `width` columns (`str.ljust` counts characters, not columns)."""
    return text + " " * max(0, width - display_width(text))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, max_width: int = 60) -> str:
    """A plain-text table aligned by display width; long cells are cut with an ellipsis so a row stays one line."""

    def cell(value: Any) -> str:
        return fit(" ".join(str("" if value is None else value).split()), max_width)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([display_width(h)] + [display_width(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def fail(message: str, code: int = USAGE_ERROR) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
