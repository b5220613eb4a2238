"""A submission run in its own process, for tests that need real concurrency or a real SIGKILL.

    python -m event_importer_tests.reliability.worker SELECTOR RUN_ID

Settings (database, TicketFairy URL and key) come from the environment, as for the CLI. It waits
for the file named by WORKER_START_FILE, if set, so that several workers start at the same moment.
"""

import json
import os
import sys
import time
from pathlib import Path

from event_importer.db.engine import get_database
from event_importer.framework.discovery import discover
from event_importer.settings import get_settings


def main() -> None:
    selector, run_id = sys.argv[1], sys.argv[2]
    database = get_database(get_settings().resolved_database_url)
    submitter = discover().get("ticketfairy").create_submitter()
    start = os.environ.get("WORKER_START_FILE")
    print("READY", flush=True)
    while start and not Path(start).exists():
        time.sleep(0.005)
    report = submitter.submit_events(database, selector, run_id=run_id)
    print(json.dumps(report.counts), flush=True)


if __name__ == "__main__":
    main()
