"""Tables line up in a terminal whatever the titles hold: CJK (two columns a character), emoji,
combining accents (none), measured as display width, in `table` itself and in `events list`."""

import json

from click.testing import CliRunner
from wcwidth import wcswidth

from event_importer.cli.main import build_cli
from event_importer.cli.output import display_width, table

WIDE = ["東京 Night 🎧", "Plain night", "Cafe\u0301 Ñoño", "🎉🎉🎉", "서울 클럽"]


def column_starts(line: str, marker: str) -> int:
    """The display column where `marker` starts in `line`."""
    return wcswidth(line[: line.index(marker)])


def test_columns_start_at_the_same_display_column_on_every_row():
    rows = [[i, title, f"city{i}"] for i, title in enumerate(WIDE)]
    lines = table(["id", "title", "city"], rows).splitlines()
    starts = {column_starts(line, f"city{i}") for i, line in enumerate(lines[2:])}
    assert len(starts) == 1, lines
    assert column_starts(lines[0], "city") == starts.pop()
    # The rule under each header is as wide as the widest cell, in columns.
    assert len(lines[1].split("  ")[1]) == max(display_width(t) for t in WIDE)


def test_long_wide_cells_are_cut_to_the_column_limit():
    [_, _, row] = table(["title"], [["長い" * 40]], max_width=11).splitlines()
    assert display_width(row) <= 11 and row.endswith("…") and row.startswith("長い長い長")


def test_events_list_aligns_wide_titles(tmp_path):
    source = tmp_path / "events.jsonl"
    events = [
        {"title": title, "date": "2027-03-14", "source_url": f"https://e.example/{i}", "location": {"city": "C"}}
        for i, title in enumerate(WIDE)
    ]
    source.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in events) + "\n", encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(build_cli(), ["events", "load", str(source)]).exit_code == 0
    result = runner.invoke(build_cli(), ["events", "list"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if "https://e.example/" in line]
    assert len(lines) == len(WIDE)
    assert len({column_starts(line, "https://") for line in lines}) == 1, result.stdout
