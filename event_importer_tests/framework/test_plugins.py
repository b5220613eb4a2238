"""Integrations from other packages: an installed distribution with an entry point in the group
`event_importer.integrations` is discovered like a built-in one, and gets the same CLI group, API
routes and Dagster asset graph (plus its own extra command and route) with no edit to this repository.

The plugin is a real wheel that pip installs into a temporary folder, put on `sys.path` (and on
`PYTHONPATH`, for the code server and run processes the CLI and API start) for one test at a time, so
nothing is installed into the project's environment and every test starts clean. The test writes the
wheel itself (a zip in the layout the wheel spec fixes) rather than building it from a `pyproject.toml`:
the environment's setuptools cannot build wheels without the `wheel` package, and build isolation would
fetch one from the network. What pip installs, and what discovery reads back through
`importlib.metadata`, is the same either way: a package and a `.dist-info` with `entry_points.txt`.
"""

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from event_importer.framework.discovery import ENTRY_POINT_GROUP, discover
from event_importer_tests.conftest import reset_process_state
from event_importer_tests.factories import add_events, event_data

DIST_NAME = "eventimp-plugin-demo"
VERSION = "0.1.0"
PACKAGE = "eventimp_plugin_demo"
NAME = "plugin_demo"
TOKEN = "demo-token-3c9a71e2f5"
STEPS = ("selected_events", "payloads", "submission_results")

PLUGIN_FILES = {
    "__init__.py": '"""Plugin demo: posts events to a URL, from an installed package."""\n',
    "settings.py": '''
        """The demo's settings (prefix `PLUGIN_DEMO_`)."""

        from pydantic import Field, SecretStr, field_validator

        from event_importer.sdk import IntegrationSettings, check_http_url


        class DemoSettings(IntegrationSettings, env_prefix="PLUGIN_DEMO_"):
            required = ("url", "token")

            url: str | None = Field(default=None, description="Base URL events are POSTed under.")
            token: SecretStr | None = Field(default=None, description="Bearer token.")

            @field_validator("url")
            @classmethod
            def _http_url(cls, value: str | None) -> str | None:
                return check_http_url(value)
        ''',
    "transformer.py": '''
        from typing import Any

        from event_importer.sdk import BaseTransformer, TransformError


        class DemoTransformer(BaseTransformer):
            def transform(self, event_data: dict[str, Any]) -> dict[str, Any]:
                event = self.parse(event_data)
                if not event.title:
                    raise TransformError("no title")
                return {"name": event.title, "source_url": event.source_url}
        ''',
    "client.py": '''
        import base64
        import hashlib
        from collections.abc import Mapping
        from typing import Any

        from event_importer.sdk import HttpClient


        class DemoClient(HttpClient):
            async def submit(self, data: dict[str, Any]) -> dict[str, Any]:
                return await self.post_json("/events", data)

            def request_headers(self, content: bytes | None) -> Mapping[str, str]:
                digest = base64.b64encode(hashlib.sha256(content or b"").digest()).decode()
                return {"Content-Digest": f"sha-256=:{digest}:"}
        ''',
    "submitter.py": '''
        from event_importer.sdk import BaseClient, BaseSubmitter, BaseTransformer

        from eventimp_plugin_demo.client import DemoClient
        from eventimp_plugin_demo.settings import DemoSettings
        from eventimp_plugin_demo.transformer import DemoTransformer


        class DemoSubmitter(BaseSubmitter):
            settings_class = DemoSettings
            settings: DemoSettings

            def _create_client(self) -> BaseClient:
                assert self.settings.url is not None and self.settings.token is not None
                return DemoClient(
                    service_name=self.service_name,
                    base_url=self.settings.url,
                    headers={"Authorization": f"Bearer {self.settings.token.get_secret_value()}"},
                    options=self.client_options,
                    secrets=[self.settings.token],
                )

            def _create_transformer(self) -> BaseTransformer:
                return DemoTransformer()
        ''',
    "cli.py": '''
        import click

        from event_importer.sdk import integration_group
        from eventimp_plugin_demo.settings import DemoSettings

        cli = integration_group("plugin_demo")


        @cli.command("ping")
        def ping() -> None:
            """Say whether the demo destination is configured."""
            missing = DemoSettings().missing()
            click.echo("pong: " + ("configured" if not missing else "needs " + ", ".join(missing)))
        ''',
    "routes.py": '''
        from fastapi import APIRouter, Depends

        from event_importer.api.security import require_token
        from event_importer.framework.discovery import discover
        from event_importer.sdk import integration_router

        router: APIRouter = integration_router(discover().get("plugin_demo"))


        @router.get("/ping", dependencies=[Depends(require_token)])
        def ping() -> dict[str, str]:
            return {"pong": "plugin_demo"}
        ''',
}


def build_wheel(package_dir: Path, out_dir: Path, *, dist_name: str, version: str, entry_points: str) -> Path:
    """A pure-Python wheel of `package_dir` declaring `entry_points` (the text of `entry_points.txt`)."""
    stem = f"{dist_name.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    files = {
        f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}": path.read_bytes()
        for path in sorted(package_dir.rglob("*.py"))
    }
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: test_plugins\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/entry_points.txt"] = entry_points.encode()
    record = [f"{name},sha256={_digest(data)},{len(data)}" for name, data in files.items()] + [f"{info}/RECORD,,"]
    wheel = out_dir / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def install_plugin(root: Path, package: str, files: dict[str, str], *, dist_name: str, entry_point: str) -> Path:
    """Write `files` as the package `package`, build its wheel with the entry point `entry_point` (the
    integration's name) and pip-install it into `root / "site"`, which is returned."""
    package_dir = root / "src" / package
    package_dir.mkdir(parents=True)
    for filename, text in files.items():
        (package_dir / filename).write_text(text)
    wheel = build_wheel(
        package_dir, root, dist_name=dist_name, version=VERSION,
        entry_points=f"[{ENTRY_POINT_GROUP}]\n{entry_point} = {package}\n",
    )
    site = root / "site"
    # --isolated and --no-index: no user configuration, no index; the wheel is all there is.
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--isolated", "--no-index", "--no-deps", "--no-compile",
         "--quiet", "--target", str(site), str(wheel)],
        check=True, timeout=120,
    )
    return site


@contextmanager
def plugin_installed(site: Path, package: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plugin in `site` installed (on `sys.path`, and on `PYTHONPATH` for child processes) until the
    block ends, discovery and the root CLI group left clean."""
    from event_importer.cli.main import cli

    # Also invalidates the import system's caches; importlib.metadata scans sys.path on each call.
    monkeypatch.syspath_prepend(str(site))
    # Runs are created from a code server and executed in run worker processes, both children of this
    # process: they must see the same installation, as they see one in the environment's site-packages.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    # build_cli() adds each integration's group to the module-level root group: undo that afterwards.
    monkeypatch.setattr(cli, "commands", dict(cli.commands))
    # The code under test sets DAGSTER_HOME in os.environ; setenv first so that monkeypatch restores it.
    monkeypatch.setenv("DAGSTER_HOME", "unset-by-the-fixture")
    monkeypatch.delenv("DAGSTER_HOME")
    reset_process_state()
    try:
        yield site
    finally:
        reset_process_state()
        for module in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            del sys.modules[module]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the plugin's wheel is pip-installed into, as into any site-packages (built once per module)."""
    files = {filename: textwrap.dedent(text).lstrip() for filename, text in PLUGIN_FILES.items()}
    return install_plugin(
        tmp_path_factory.mktemp("plugin"), PACKAGE, files, dist_name=DIST_NAME, entry_point=NAME
    )


@pytest.fixture
def plugin(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plugin installed (on `sys.path`, and on `PYTHONPATH` for child processes) for this test only,
    discovery and the root CLI group left clean."""
    with plugin_installed(plugin_site, PACKAGE, monkeypatch) as site:
        yield site


@pytest.fixture
def configured(plugin: Path, stand_in, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PLUGIN_DEMO_URL", stand_in.url)
    monkeypatch.setenv("PLUGIN_DEMO_TOKEN", TOKEN)
    monkeypatch.setenv("PLUGIN_DEMO_MAX_ATTEMPTS", "1")
    return stand_in


def _cache_db():
    from event_importer.db.engine import get_database
    from event_importer.settings import get_settings

    return get_database(get_settings().resolved_database_url)


def invoke(*args: str):
    from event_importer.cli.main import build_cli

    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


def test_the_plugin_is_discovered_like_a_built_in(plugin):
    found = discover()
    assert not [f for f in found.failures if f.name == NAME], found.failures
    integration = found.get(NAME)
    assert integration.source == f"plugin: {DIST_NAME}"
    assert integration.package == PACKAGE
    assert integration.description == "Plugin demo: posts events to a URL, from an installed package."
    assert (integration.cli_module, integration.routes_module) == (f"{PACKAGE}.cli", f"{PACKAGE}.routes")
    standard = {"unsubmitted", "failed", "pending", "changed", "all", "url"}
    submitter = integration.create_submitter()
    assert set(submitter.selectors) >= standard
    # Named by its entry point, not by its package (eventimp_plugin_demo).
    assert submitter.service_name == NAME
    # The built-in ones are all still there.
    assert {"ticketfairy", "webhook", "caldav"} <= set(found.integrations)

    listed = json.loads(invoke("integrations", "list", "--json").stdout)
    [row] = [r for r in listed["integrations"] if r["name"] == NAME]
    assert row["source"] == f"plugin: {DIST_NAME}"
    assert row["configured"] is False and row["missing"] == ["PLUGIN_DEMO_URL", "PLUGIN_DEMO_TOKEN"]


def test_without_the_distribution_there_is_no_plugin(plugin_site):
    # The counterpart of every other test: the plugin comes from the installed distribution alone.
    reset_process_state()
    assert NAME not in discover().integrations


def test_the_cli_has_its_group_with_the_standard_and_its_own_commands(plugin):
    group_help = invoke(NAME, "--help")
    assert group_help.exit_code == 0, group_help.output
    commands = set(re.findall(r"^  (\S+)", group_help.stdout.split("Commands:", 1)[1], re.MULTILINE))
    assert commands == {"submit", "status", "retry-failed", "history", "ping"}
    assert "--selector" in invoke(NAME, "submit", "--help").stdout
    assert invoke(NAME, "ping").stdout == "pong: needs PLUGIN_DEMO_URL, PLUGIN_DEMO_TOKEN\n"


# Starlette 1.x warns (a UserWarning subclass, which setup.cfg's DeprecationWarning filter misses) that
# its TestClient will move to `httpx2`; the client works as it is.
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_the_api_has_its_standard_and_own_routes(plugin):
    from fastapi.testclient import TestClient

    from event_importer.api.app import create_app

    app = create_app()
    # The OpenAPI schema lists every route, whichever way FastAPI keeps included routers.
    routes = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    assert {
        ("POST", f"/integrations/{NAME}/submit"),
        ("GET", f"/integrations/{NAME}/status"),
        ("GET", f"/integrations/{NAME}/ping"),
    } <= routes
    with TestClient(app) as client:
        assert NAME in client.get("/health").json()["integrations"]
        assert client.get(f"/integrations/{NAME}/ping").json() == {"pong": NAME}
        assert client.get(f"/integrations/{NAME}/status").json()["service"] == NAME
        add_events(_cache_db(), event_data())
        # `?wait=true`: answer (200) with the counts once the run has ended, rather than 202 with its URL.
        answer = client.post(f"/integrations/{NAME}/submit", params={"wait": "true"}, json={"dry_run": True})
        assert answer.status_code == 200, answer.text
        assert answer.json()["success"] is True and answer.json()["counts"]["dry_run"] == 1


def test_the_dagster_definitions_have_its_asset_graph(plugin):
    from event_importer.orchestration import build_defs

    defs = build_defs()
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    for step in STEPS:
        assert graph.get(dg.AssetKey([NAME, step])).group_name == NAME
    job = defs.resolve_job_def(f"{NAME}_submit_job")
    assert {node.name for node in job.graph.nodes} == {f"{NAME}__{step}" for step in STEPS}
    defs.resolve_schedule_def(f"{NAME}_submit_schedule")
    defs.resolve_sensor_def(f"{NAME}_new_events_sensor")
    assert dg.AssetKey(["ticketfairy", "payloads"]) in graph.get_all_asset_keys()


def test_submit_through_the_cli_reaches_the_destination(configured):
    event = event_data()
    add_events(_cache_db(), event)

    result = invoke(NAME, "submit", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["success"] is True and report["counts"]["submitted"] == 1
    [accepted] = configured.accepted
    assert accepted["path"] == "/api/events"
    assert accepted["body"] == {"name": event["title"], "source_url": event["source_url"]}
    headers = {name.lower(): value for name, value in accepted["headers"].items()}
    assert headers["authorization"] == "<redacted>"  # the stand-in redacts it; it was sent
    assert re.fullmatch(r"sha-256=:[A-Za-z0-9+/]+=*:", headers["content-digest"])

    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(report["run_id"])
        assert run is not None and run.job_name == f"{NAME}_submit_job"
        assert run.tags["event-importer/trigger"] == "cli"

    again = json.loads(invoke(NAME, "submit", "--json").stdout)
    assert again["counts"]["selected"] == 0
    assert json.loads(invoke(NAME, "status", "--json").stdout)["success"] == 1
