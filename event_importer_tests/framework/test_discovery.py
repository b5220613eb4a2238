"""Discovery: a new integration is one folder, found with no edit anywhere else; a broken one is
reported with its error and leaves the others working."""

import json
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import event_importer.integrations as integrations_package
from event_importer.framework.discovery import discover
from event_importer_tests.conftest import reset_process_state

NEW_INTEGRATION = {
    "__init__.py": '"""Echo: a test destination that posts events to a URL."""\n',
    "submitter.py": textwrap.dedent(
        '''
        from typing import Any

        from pydantic import Field

        from event_importer.sdk import BaseClient, BaseSubmitter, BaseTransformer, HttpClient, IntegrationSettings


        class EchoSettings(IntegrationSettings, env_prefix="ECHO_TEST_"):
            required = ("url",)

            url: str | None = Field(default=None)


        class EchoTransformer(BaseTransformer):
            def transform(self, event_data: dict[str, Any]) -> dict[str, Any]:
                return {"name": self.parse(event_data).title}


        class EchoClient(HttpClient):
            async def submit(self, data: dict[str, Any]) -> dict[str, Any]:
                return await self.post_json("/echo", data)


        class EchoSubmitter(BaseSubmitter):
            settings_class = EchoSettings

            def _create_client(self) -> BaseClient:
                return EchoClient(service_name=self.service_name, base_url=self.settings.url or "")

            def _create_transformer(self) -> BaseTransformer:
                return EchoTransformer()
        '''
    ),
}


@pytest.fixture
def extra_integrations_dir(tmp_path, monkeypatch):
    """A folder added to the integrations package's search path, as if it were inside it."""
    folder = tmp_path / "more_integrations"
    folder.mkdir()
    monkeypatch.setattr(integrations_package, "__path__", [*integrations_package.__path__, str(folder)])
    reset_process_state()
    yield folder
    reset_process_state()
    for name in [m for m in sys.modules if m.startswith("event_importer.integrations.echo_")]:
        del sys.modules[name]


def add_integration(folder: Path, name: str, files: dict[str, str]) -> None:
    package = folder / name
    package.mkdir()
    for filename, content in files.items():
        (package / filename).write_text(content.replace("{name}", name))


def test_a_new_folder_is_a_new_integration(extra_integrations_dir):
    add_integration(extra_integrations_dir, "echo_one", NEW_INTEGRATION)
    found = discover()
    assert "echo_one" in found.integrations
    integration = found.get("echo_one")
    assert integration.description == "Echo: a test destination that posts events to a URL."
    submitter = integration.create_submitter()
    # Named by its folder, without naming itself.
    assert submitter.service_name == "echo_one"
    assert set(submitter.selectors) >= {"unsubmitted", "failed", "pending", "changed", "all", "url"}

    from event_importer.cli.main import build_cli

    listed = CliRunner().invoke(build_cli(), ["integrations", "list", "--json"])
    rows = {r["name"]: r for r in json.loads(listed.stdout)["integrations"]}
    assert rows["echo_one"]["configured"] is False
    assert rows["echo_one"]["missing"] == ["ECHO_TEST_URL"]
    commands = CliRunner().invoke(build_cli(), ["echo_one", "--help"])
    assert commands.exit_code == 0
    assert all(name in commands.output for name in ("submit", "status", "retry-failed"))

    from event_importer.api import create_app

    paths = create_app().openapi()["paths"]
    assert "post" in paths["/integrations/echo_one/submit"]
    assert "get" in paths["/integrations/echo_one/status"]

    import dagster as dg

    from event_importer.orchestration import build_defs

    defs = build_defs()
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert {"echo_one/selected_events", "echo_one/payloads", "echo_one/submission_results"} <= keys
    assert defs.resolve_job_def("echo_one_submit_job").name == "echo_one_submit_job"
    assert any(s.name.startswith("echo_one_") for s in defs.schedules or [])
    assert any(s.name.startswith("echo_one_") for s in defs.sensors or [])
    dg.Definitions.validate_loadable(defs)


def test_a_broken_integration_is_reported_and_the_others_still_load(extra_integrations_dir):
    add_integration(extra_integrations_dir, "echo_ok", NEW_INTEGRATION)
    add_integration(
        extra_integrations_dir,
        "echo_broken",
        {**NEW_INTEGRATION, "submitter.py": "import a_module_that_does_not_exist\n"},
    )
    found = discover()
    assert "echo_ok" in found.integrations
    [failure] = [f for f in found.failures if f.name == "echo_broken"]
    assert "ModuleNotFoundError" in failure.error and "a_module_that_does_not_exist" in failure.error

    from event_importer.cli.main import build_cli

    listed = CliRunner().invoke(build_cli(), ["integrations", "list"])
    assert listed.exit_code == 0
    assert "failed to load echo_broken" in listed.stderr


def test_a_folder_without_a_submitter_is_reported(extra_integrations_dir):
    add_integration(extra_integrations_dir, "echo_empty", {"__init__.py": ""})
    [failure] = [f for f in discover().failures if f.name == "echo_empty"]
    assert "exactly one BaseSubmitter subclass" in failure.error
