"""Small helpers the commands share: tables, JSON and error exits."""

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

USAGE_ERROR = 2


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, max_width: int = 60) -> str:
    """A plain-text table; long cells are cut with an ellipsis so a row stays one line."""

    def cell(value: Any) -> str:
        text = " ".join(str("" if value is None else value).split())
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def fail(message: str, code: int = USAGE_ERROR) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
