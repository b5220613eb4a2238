"""The code location: every discovered integration gets its asset graph, job, checks, schedule and sensor
with no Dagster code of its own; loading touches no secret; `dagster definitions validate` passes."""

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

import event_importer.integrations as integrations_package
from event_importer.errors import ConfigurationError
from event_importer.framework.discovery import discover
from event_importer.orchestration import build_defs, submission_job, submitted_config
from event_importer.orchestration.config import build_config_class
from event_importer.orchestration.resources import client_resource
from event_importer.secret_settings import secret_fields
from event_importer_tests.conftest import TEST_API_KEY, reset_process_state

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STEPS = ("selected_events", "payloads", "submission_results")
CHECKS = {"outcomes_recorded", "failure_rate", "no_duplicate_submissions"}

NEW_INTEGRATION = {
    "__init__.py": '"""Parrot: a test destination added as one folder."""\n',
    "submitter.py": textwrap.dedent(
        '''
        from typing import Any

        from pydantic import Field, SecretStr
        from pydantic_settings import SettingsConfigDict

        from event_importer.framework.contracts import BaseClient, BaseTransformer
        from event_importer.framework.submitter import BaseSubmitter
        from event_importer.framework.http import HttpClient
        from event_importer.settings import IntegrationSettings


        class ParrotSettings(IntegrationSettings):
            model_config = SettingsConfigDict(env_prefix="PARROT_TEST_")
            url: str = Field(default="http://127.0.0.1:9")
            token: SecretStr | None = Field(default=None)


        class ParrotTransformer(BaseTransformer):
            def transform(self, event_data: dict[str, Any]) -> dict[str, Any]:
                return {"name": self.parse(event_data).title}


        class ParrotClient(HttpClient):
            async def submit(self, data: dict[str, Any]) -> dict[str, Any]:
                return await self.post_json("/parrot", data)


        class ParrotSubmitter(BaseSubmitter):
            settings_class = ParrotSettings

            @property
            def service_name(self) -> str:
                return "parrot_test"

            def _create_client(self) -> BaseClient:
                return ParrotClient(service_name=self.service_name, base_url=self.settings.url)

            def _create_transformer(self) -> BaseTransformer:
                return ParrotTransformer()
        '''
    ),
}


@pytest.fixture
def defs() -> dg.Definitions:
    return build_defs()


def test_every_discovered_integration_has_its_graph(defs):
    found = discover()
    assert not found.failures, found.failures
    assert "ticketfairy" in found.integrations
    dg.Definitions.validate_loadable(defs)
    keys = set(defs.resolve_all_asset_keys())
    graph = defs.resolve_asset_graph()
    for name in found.integrations:
        expected = {dg.AssetKey([name, step]) for step in STEPS}
        assert expected <= keys
        for key in expected:
            node = graph.get(key)
            assert node.group_name == name
            assert node.description, key
            assert "python" in node.kinds
        # The lineage starts at the event cache, which events are loaded into outside Dagster.
        assert graph.get(dg.AssetKey([name, "selected_events"])).parent_keys == {dg.AssetKey("event_cache")}
        assert graph.get(dg.AssetKey([name, "payloads"])).parent_keys == {dg.AssetKey([name, "selected_events"])}
        assert graph.get(dg.AssetKey([name, "submission_results"])).parent_keys == {dg.AssetKey([name, "payloads"])}
        job = defs.resolve_job_def(f"{name}_submit_job")
        assert {node.name for node in job.graph.nodes} >= {f"{name}__{step}" for step in STEPS}
        assert job.tags["event-importer/integration"] == name
        assert job.tags["event-importer/lane"] == f"{name}/0"
        assert job.executor_def is dg.in_process_executor
        checks = {key.name for key in job.asset_layer.asset_graph.asset_check_keys if key.asset_key.path[0] == name}
        assert checks == CHECKS
        assert defs.resolve_schedule_def(f"{name}_submit_schedule").default_status is dg.DefaultScheduleStatus.STOPPED
        assert defs.resolve_sensor_def(f"{name}_new_events_sensor").default_status is dg.DefaultSensorStatus.STOPPED


def test_the_code_location_module_builds_defs_on_access_only():
    code = textwrap.dedent(
        """
        import sys
        import event_importer.definitions as module
        assert "defs" not in vars(module)
        # Importing built nothing: no integration settings were read.
        assert not any(name.startswith("event_importer.integrations.ticketfairy") for name in sys.modules)
        import dagster as dg
        assert isinstance(module.defs, dg.Definitions)
        from event_importer.definitions import defs
        assert defs is module.defs
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFAIRY_")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=PROJECT_ROOT, timeout=60)


def test_a_new_integration_folder_gets_assets_job_schedule_and_sensor(tmp_path, monkeypatch):
    folder = tmp_path / "more_integrations"
    (folder / "parrot_test").mkdir(parents=True)
    for filename, content in NEW_INTEGRATION.items():
        (folder / "parrot_test" / filename).write_text(content)
    monkeypatch.setattr(integrations_package, "__path__", [*integrations_package.__path__, str(folder)])
    reset_process_state()
    try:
        defs = build_defs()
        dg.Definitions.validate_loadable(defs)
        assert {dg.AssetKey(["parrot_test", step]) for step in STEPS} <= set(defs.resolve_all_asset_keys())
        defs.resolve_job_def("parrot_test_submit_job")
        defs.resolve_schedule_def("parrot_test_submit_schedule")
        defs.resolve_sensor_def("parrot_test_new_events_sensor")
        resource = defs.resources["parrot_test_client"]
        assert resource.token is None and resource.url is None
    finally:
        reset_process_state()
        for name in [m for m in sys.modules if m.startswith("event_importer.integrations.parrot_test")]:
            del sys.modules[name]


def test_secrets_are_bound_as_env_vars_only_when_set(monkeypatch):
    ticketfairy = discover().get("ticketfairy")
    assert secret_fields(ticketfairy.submitter_class.settings_class) == {"api_key": "TICKETFAIRY_API_KEY"}

    monkeypatch.delenv("TICKETFAIRY_API_KEY", raising=False)
    assert client_resource(ticketfairy).api_key is None

    monkeypatch.setenv("TICKETFAIRY_API_KEY", TEST_API_KEY)
    resource = client_resource(ticketfairy)
    assert isinstance(resource.api_key, dg.EnvVar) and resource.api_key.env_var_name == "TICKETFAIRY_API_KEY"
    # Nothing the definitions hold, as the UI would show them, carries the value.
    defs = build_defs()
    job = defs.resolve_job_def("ticketfairy_submit_job")
    snapshot = dg.serialize_value(job.get_job_snapshot())
    assert "TICKETFAIRY_API_KEY" in snapshot
    assert TEST_API_KEY not in snapshot


def test_the_selector_config_lists_the_valid_names():
    config_class = build_config_class("demo", ["unsubmitted", "failed"])
    assert config_class(selector="failed").selector == "failed"

    @dg.asset
    def first(config: config_class) -> None:  # type: ignore[valid-type]
        pass

    job = dg.Definitions(assets=[first], jobs=[dg.define_asset_job("demo_job", selection=[first])]).resolve_job_def(
        "demo_job"
    )
    result = dg.validate_run_config(job, {"ops": {"first": {"config": {"selector": "failed"}}}})
    assert result["ops"]["first"]["config"]["selector"] == "failed"
    with pytest.raises(dg.DagsterInvalidConfigError) as raised:
        dg.validate_run_config(job, {"ops": {"first": {"config": {"selector": "bogus"}}}})
    assert "'failed'" in str(raised.value) and "'unsubmitted'" in str(raised.value) and "bogus" in str(raised.value)


def test_the_schedule_follows_the_setting(monkeypatch):
    monkeypatch.setenv("TICKETFAIRY_SCHEDULE", "*/15 * * * *")
    defs = build_defs()
    assert defs.resolve_schedule_def("ticketfairy_submit_schedule").cron_schedule == "*/15 * * * *"


def test_an_invalid_schedule_leaves_only_that_integration_out(monkeypatch, caplog):
    monkeypatch.setenv("TICKETFAIRY_SCHEDULE", "every hour")
    defs = build_defs()
    assert dg.AssetKey(["ticketfairy", "payloads"]) not in set(defs.resolve_all_asset_keys())
    assert "ticketfairy is misconfigured" in caplog.text and "every hour" in caplog.text
    from event_importer.orchestration import integration_defs

    with pytest.raises(ConfigurationError, match="not a valid cron expression"):
        integration_defs(discover().get("ticketfairy"))


def test_dagster_definitions_validate_passes_without_warnings_from_our_code(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFAIRY_")}
    env["DAGSTER_HOME"] = str(tmp_path / "dagster")
    Path(env["DAGSTER_HOME"]).mkdir()
    env["PYTHONWARNINGS"] = "default"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr
    ours = [line for line in done.stderr.splitlines() if "event_importer" in line and "Warning" in line]
    assert not ours, ours



def definition_names(defs: dg.Definitions) -> dict[str, set[str]]:
    return {
        "assets": {key.to_user_string() for key in defs.resolve_all_asset_keys()},
        "jobs": {job.name for job in defs.jobs or []},
        "sensors": {sensor.name for sensor in defs.sensors or []},
        "schedules": {schedule.name for schedule in defs.schedules or []},
        "resources": set(defs.resources or {}),
    }


def test_the_defs_folder_is_what_dagster_loads_from_the_project_config():
    """`defs/` is Dagster's definitions folder: `dg.load_from_defs_folder` finds it through `[tool.dg]`
    in pyproject.toml and loads what the code location serves, and what `build_defs` builds."""
    from event_importer.definitions import load_defs_folder

    by_dagster = dg.load_from_defs_folder(path_within_project=PROJECT_ROOT / "event_importer")
    ours = load_defs_folder()
    assert definition_names(by_dagster) == definition_names(ours) == definition_names(build_defs())
    assert {"event_cache", "ticketfairy/submission_results"} <= definition_names(ours)["assets"]


def test_the_defs_folder_holds_definitions_only():
    folder = PROJECT_ROOT / "event_importer" / "defs"
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        functions = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)]
        for node in functions:
            decorators = [ast.unparse(d) for d in getattr(node, "decorator_list", [])]
            assert decorators == ["dg.definitions"], f"{path.name}: {node.name} is not a @dg.definitions function"


def test_the_run_config_names_the_op_dagster_gave_the_first_asset(defs):
    """Whoever starts or reads a run (sensors, schedules, the CLI and API) learns where its config goes
    from the built asset, not from Dagster's naming rule written out by hand."""
    for integration in discover().integrations.values():
        submission = submission_job(integration)
        job = defs.resolve_job_def(submission.name)
        first = defs.resolve_assets_def(dg.AssetKey([integration.name, "selected_events"]))
        assert submission.config_op == first.op.name and job.graph.has_node_named(submission.config_op)
        config = submission.config_class(selector="all", dry_run=True, limit=3)
        run_config = submission.run_config(config)
        dg.validate_run_config(job, run_config)
        assert submitted_config(integration.name, run_config) == {"selector": "all", "dry_run": True, "limit": 3}
        assert submission.tags(config, "cli")["event-importer/integration"] == integration.name
