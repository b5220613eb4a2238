"""A submission run in its own process, for tests that need real concurrency or a real SIGKILL.

    python -m event_importer_tests.reliability.worker SELECTOR RUN_ID

Settings (database, TicketFairy URL and key) come from the environment, as for the CLI. It waits
for the file named by WORKER_START_FILE, if set, so that several workers start at the same moment;
with WORKER_SEND_FILE it selects, says SELECTED, and waits for that file before it claims and sends,
so that another run can select the same events first (a stale selection, on purpose).
"""

import json
import os
import sys
import time
from pathlib import Path

from event_importer.db.engine import get_database
from event_importer.framework.discovery import discover
from event_importer.framework.packed import Packed
from event_importer.framework.records import EventRef, SubmissionReport
from event_importer.settings import get_settings


def main() -> None:
    selector, run_id = sys.argv[1], sys.argv[2]
    database = get_database(get_settings().resolved_database_url)
    submitter = discover().get("ticketfairy").create_submitter()
    start = os.environ.get("WORKER_START_FILE")
    print("READY", flush=True)
    if start:
        _wait_for(Path(start))
    send = os.environ.get("WORKER_SEND_FILE")
    if send:
        with database.session() as session:
            events = Packed.of(EventRef, submitter.select(session, selector))
        print(f"SELECTED {len(events)}", flush=True)
        _wait_for(Path(send))
        payloads = submitter.transform_packed(events)
        results = submitter.submit(payloads, database=database, run_id=run_id)
        invalid = sum(not p.valid for p in payloads)
        report = SubmissionReport(submitter.service_name, selector, run_id, False, len(events), invalid, results)
    else:
        report = submitter.submit_events(database, selector, run_id=run_id)
    print(json.dumps(report.counts), flush=True)


def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.005)


if __name__ == "__main__":
    main()
