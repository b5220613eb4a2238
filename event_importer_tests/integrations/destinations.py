"""Real destinations on 127.0.0.1, shared by the integrations' own tests and the end-to-end tests:
a webhook receiver and a Radicale calendar server, each with the integration's settings pointing at it.

Registered for the whole suite through `pytest_plugins` in the top-level conftest, so tests request
them by name and never import them.
"""

from collections.abc import Iterator

import pytest

from event_importer_tests.integrations.caldav.radicale_server import PASSWORD, USERNAME, RadicaleServer
from event_importer_tests.integrations.webhook.test_webhook import SECRET, Receiver


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A webhook receiver, and the WEBHOOK_* settings pointing at it."""
    with Receiver() as server:
        monkeypatch.setenv("WEBHOOK_URL", server.url)
        monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
        yield server


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    """One Radicale server for the whole session; each test gets its own calendar in it."""
    with RadicaleServer(tmp_path_factory.mktemp("radicale")) as server:
        yield server


@pytest.fixture
def calendar_url(radicale: RadicaleServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh calendar collection, and the CALDAV_* settings pointing at it."""
    url = radicale.new_calendar()
    monkeypatch.setenv("CALDAV_URL", url)
    monkeypatch.setenv("CALDAV_USERNAME", USERNAME)
    monkeypatch.setenv("CALDAV_PASSWORD", PASSWORD)
    return url
