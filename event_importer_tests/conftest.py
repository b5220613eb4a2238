"""Shared fixtures: isolated settings, real SQLite files, and PostgreSQL where one is reachable.

PostgreSQL tests use `EVENT_IMPORTER_TEST_POSTGRES_URL` (default: the local server's `test`
database). Where it is unreachable they skip with the reason, unless
`EVENT_IMPORTER_REQUIRE_POSTGRES=1` (set by .ci/run), where they fail instead.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from event_importer import definitions
from event_importer.db.engine import Database, _databases
from event_importer.db.models import Base
from event_importer.framework.discovery import discover
from event_importer.settings import get_settings
from event_importer_tests.standin import StandInServer

# Real destinations (a webhook receiver, a Radicale server) that several test folders use.
pytest_plugins = ("event_importer_tests.integrations.destinations",)

POSTGRES_ADMIN_URL = os.environ.get(
    "EVENT_IMPORTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("EVENT_IMPORTER_REQUIRE_POSTGRES") == "1"
# Redis and RabbitMQ: tests needing them skip, saying why, when they are unreachable; CI requires them.
REQUIRE_SERVICES = os.environ.get("EVENT_IMPORTER_REQUIRE_SERVICES") == "1"
REDIS_URL = os.environ.get("EVENT_IMPORTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _integration_prefixes() -> tuple[str, ...]:
    """The settings prefix of every discovered integration (built-in folders and installed plugins)."""
    prefixes = (
        str(integration.submitter_class.settings_class.model_config.get("env_prefix") or "")
        for integration in discover().integrations.values()
    )
    return tuple(sorted({prefix.upper() for prefix in prefixes if prefix}))


def reset_process_state() -> None:
    """Forget what this process derived from its environment and installation, so that the next use
    reads them again: the settings, the discovered integrations, the Dagster definitions built from
    both, and the open database engines. Call it after changing a variable or the integrations' path
    in the middle of a test; every test starts and ends with it."""
    get_settings.cache_clear()
    discover.cache_clear()
    definitions._built.clear()
    for database in _databases.values():
        database.dispose()
    _databases.clear()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own data folder and no settings from the developer's environment.

    The environment is restored whole afterwards, since the code under test sets variables itself
    (`DAGSTER_HOME`, the values of a `.env`).
    """
    saved = dict(os.environ)
    prefixes = ("EVENT_IMPORTER_", "DAGSTER_HOME", *_integration_prefixes())
    for name in list(os.environ):
        ours = name.startswith(prefixes)
        test_setting = name.startswith(("EVENT_IMPORTER_TEST_", "EVENT_IMPORTER_REQUIRE_"))
        if ours and not test_setting:
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("EVENT_IMPORTER_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    reset_process_state()
    yield home
    reset_process_state()
    os.environ.clear()
    os.environ.update(saved)


def _postgres_unavailable() -> str | None:
    try:
        engine = create_engine(make_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL not reachable at {make_url(POSTGRES_ADMIN_URL).render_as_string()}: {type(exc).__name__}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    reason = _postgres_unavailable()
    if reason:
        if REQUIRE_POSTGRES:
            pytest.fail(reason + " (EVENT_IMPORTER_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    name = f"event_importer_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _code_servers() -> list[psutil.Process]:
    """The code servers (`dagster api grpc`) this test process started, directly or through a child."""
    servers = []
    for process in psutil.Process().children(recursive=True):
        try:
            command = process.cmdline()
        except psutil.Error:
            continue
        if "dagster" in command and "api" in command and "grpc" in command:
            servers.append(process)
    return servers


def wait_for_code_servers(servers: list[psutil.Process], timeout: float = 60.0) -> None:
    """Wait until these code servers have exited, failing after `timeout` seconds."""
    _, alive = psutil.wait_procs(servers, timeout=timeout)
    assert not alive, f"code servers still running after {timeout:g} s: {[p.pid for p in alive]}"


@pytest.fixture(scope="session", autouse=True)
def no_code_server_left() -> Iterator[None]:
    """Every code server the tests started has exited by the end of the session (none is left orphaned)."""
    yield
    wait_for_code_servers(_code_servers())


@pytest.fixture
def dagster_postgres_url(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for Dagster's storage, dropped once the test's code servers have exited.

    A code server outlives the dispatcher that stopped it by a moment: once its runs have ended it opens
    the Dagster instance a last time to check them, then exits. Dropping the instance's database before
    that kills the thread that would stop the server, which then serves on, orphaned.
    dagster-postgres binds NOTIFY parameters client-side, which needs psycopg2 (its own dependency).
    """
    name = f"event_importer_dagster_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(drivername="postgresql+psycopg2", database=name)
    running = {server.pid for server in _code_servers()}
    yield url.render_as_string(hide_password=False)
    wait_for_code_servers([server for server in _code_servers() if server.pid not in running])
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service is unreachable, or fail it where CI requires the services."""
    if REQUIRE_SERVICES:
        pytest.fail(reason + " (EVENT_IMPORTER_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server's URL (`EVENT_IMPORTER_TEST_REDIS_URL`, default the local one)."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        skip_or_fail(f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}")
    return REDIS_URL


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with an empty schema: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cache.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    engine.dispose()
    yield url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'cache.db'}")
    yield db
    db.dispose()


# A distinctive value, so a search for it in logs, rows and output cannot match by accident.
TEST_API_KEY = "tf-test-key-9f8e7d6c5b4a"


@pytest.fixture
def stand_in() -> Iterator[StandInServer]:
    """A real HTTP server on 127.0.0.1 standing in for the destination."""
    with StandInServer(api_key=TEST_API_KEY) as server:
        yield server
