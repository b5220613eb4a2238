"""`docs/INTEGRATIONS.md` is executed: the example integration it builds step by step is taken from
the page itself and run end to end, so the guide cannot drift from the framework it describes.

Every fenced block preceded by `<!-- file: myservice/<path> -->` is one file of the example's
package, and `<!-- example: myservice/event.json -->` and `<!-- example: myservice/payload.json -->`
are the event the page loads and the payload it says MyService receives. The files are installed as
a plugin (a wheel with the entry point `myservice`, as "Packaging as a plugin" describes, through
`test_plugins`' helpers); then the documented event is loaded and submitted through the CLI, a
Dagster run, to the stand-in server on 127.0.0.1, which must receive exactly the documented payload,
and the ledger must hold the success.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from event_importer.db.models import Submission
from event_importer.framework.discovery import discover
from event_importer_tests.framework.test_plugins import install_plugin, plugin_installed

DOC = Path(__file__).resolve().parents[2] / "docs" / "INTEGRATIONS.md"
NAME = "myservice"
PACKAGE = "event_importer_myservice"
DIST_NAME = "event-importer-myservice"
TOKEN = "myservice-key-5d81c0"
# The files the guide's steps create; the optional ones it shows without a marker are not executed.
FILES = {"__init__.py", "settings.py", "transformer.py", "client.py", "submitter.py", "cli.py"}
MARKED = re.compile(r"^<!-- (file|example): myservice/(\S+) -->\n```[^\n]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def marked_blocks(kind: str) -> dict[str, str]:
    blocks: dict[str, str] = {}
    for found_kind, path, text in MARKED.findall(DOC.read_text()):
        if found_kind == kind:
            assert path not in blocks, f"{DOC.name}: two blocks marked {kind}: myservice/{path}"
            blocks[path] = text
    return blocks


def test_the_guide_marks_every_file_of_its_example():
    assert set(marked_blocks("file")) == FILES
    assert set(marked_blocks("example")) == {"event.json", "payload.json"}


@pytest.fixture(scope="module")
def doc_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_plugin(
        tmp_path_factory.mktemp("doc_plugin"), PACKAGE, marked_blocks("file"), dist_name=DIST_NAME, entry_point=NAME
    )


@pytest.fixture
def doc_plugin(doc_plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with plugin_installed(doc_plugin_site, PACKAGE, monkeypatch) as site:
        yield site


def invoke(*args: str):
    from event_importer.cli.main import build_cli

    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


def ledger_rows() -> list[Submission]:
    from event_importer.db.engine import get_database
    from event_importer.settings import get_settings

    database = get_database(get_settings().resolved_database_url)
    with database.session() as session:
        return list(session.scalars(select(Submission).where(Submission.service_name == NAME)))


def test_the_guides_integration_sends_the_documented_payload(doc_plugin, stand_in, tmp_path, monkeypatch):
    integration = discover().get(NAME)
    assert integration.source == f"plugin: {DIST_NAME}"
    assert integration.description == "MyService: publish events as listings through MyService's API."
    # Named by its entry point, as the guide says: the submitter does not name itself.
    assert integration.create_submitter().service_name == NAME

    # Unconfigured: the declared requirement is what is missing, and nothing can be sent.
    listed = json.loads(invoke("integrations", "list", "--json").stdout)["integrations"]
    [row] = [r for r in listed if r["name"] == NAME]
    assert row["configured"] is False and row["missing"] == ["MYSERVICE_API_KEY"]
    assert invoke(NAME, "config").stdout == "needs MYSERVICE_API_KEY\n"

    event = json.loads(marked_blocks("example")["event.json"])
    events_file = tmp_path / "events.jsonl"
    events_file.write_text(json.dumps(event) + "\n")
    loaded = invoke("events", "load", str(events_file))
    assert loaded.exit_code == 0, loaded.output

    refused = invoke(NAME, "submit", "--json")
    assert refused.exit_code == 2 and "MYSERVICE_API_KEY not set" in refused.output
    assert stand_in.requests_seen == 0

    monkeypatch.setenv("MYSERVICE_API_KEY", TOKEN)
    monkeypatch.setenv("MYSERVICE_API_URL", stand_in.url)
    assert invoke(NAME, "config").stdout == "configured\n"
    result = invoke(NAME, "submit", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["success"] is True and report["counts"]["submitted"] == 1

    [accepted] = stand_in.accepted
    assert accepted["path"] == "/api/listings"
    assert accepted["body"] == json.loads(marked_blocks("example")["payload.json"])
    headers = {name.lower(): value for name, value in accepted["headers"].items()}
    assert headers["authorization"] == "<redacted>"  # sent; the stand-in keeps no credentials

    [submission] = ledger_rows()
    assert (submission.status, submission.http_status, submission.run_id) == ("success", 200, report["run_id"])
    assert submission.response["payload"] == accepted["body"]
    assert TOKEN not in json.dumps(submission.response)
    # Sent once: a second submission selects nothing.
    assert json.loads(invoke(NAME, "submit", "--json").stdout)["counts"]["selected"] == 0
