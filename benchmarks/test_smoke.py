"""Smoke tests of the benchmark harness: `pytest benchmarks/test_smoke.py` (not part of `make test`).

Why: the harness's figures are only worth something if its data and baselines are what they claim.
These check that the synthetic events are what the loader would store, that the selection database's
expected counts match what the selectors return, and that a quick run produces a table and JSON.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.common import REPO_ROOT, sqlite_url
from benchmarks.data import Expected, data_hash, selection_sqlite, synthetic_event
from benchmarks.selection import SELECTORS, worker


def test_synthetic_events_are_stored_as_the_loader_stores_them() -> None:
    from event_importer.events.loader import data_hash as loader_hash
    from event_importer.events.model import EventData

    for i in range(1, 201):
        event = synthetic_event(i)
        assert EventData.model_validate(event).to_json() == event
        assert data_hash(event) == loader_hash(event)


def test_every_synthetic_event_transforms() -> None:
    from event_importer.integrations.ticketfairy.transformer import TicketFairyTransformer

    transformer = TicketFairyTransformer()
    for i in range(1, 101):
        assert transformer.transform(synthetic_event(i))["data"]["attributes"]["title"]


def test_selectors_return_the_generated_counts(tmp_path: Path) -> None:
    path, expected = selection_sqlite(3_000, directory=tmp_path, log=lambda _: None)
    # A second call reuses the cached file.
    assert selection_sqlite(3_000, directory=tmp_path, log=lambda _: None) == (path, expected)
    assert isinstance(expected, Expected) and expected.submissions > expected.events * 0.9
    result = worker(sqlite_url(path), SELECTORS, 100, "https://events.example.org/e/1500", True)
    for name in SELECTORS:
        entry = result["selectors"][name]
        assert entry["count"] == expected.for_selector(name), name
        assert entry["first_count"] == min(100, expected.for_selector(name)), name
        assert entry["plan"], name


@pytest.mark.slow
def test_quick_run_writes_a_table_and_json(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "overhead", "loading", "--output", str(output)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "zero-event run" in completed.stdout
    document = json.loads(output.read_text())
    assert not document["errors"]
    assert document["machine"]["nproc"] >= 1
    assert any(row["section"] == "loading" for row in document["rows"])
