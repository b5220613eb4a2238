"""`.env` is read one way: each entry point (the command, the API app, the code location) loads it into
the environment, and the settings read the environment only. A variable set in the environment wins.

The installed command in a fresh process, with the run it launches, is tested in `test_cli_submit.py`
(`test_the_installed_command_loads_dotenv_and_never_prints_the_key`); the API served by that command,
with its runs, in `test_api.py` (`test_event_importer_api_serves_over_http`).
"""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
from fastapi.testclient import TestClient

from event_importer.environment import load_env_file
from event_importer.settings import Settings, get_settings
from event_importer_tests.conftest import reset_process_state

TOKEN = "dotenv-token-3e8a1f"


def write_env(folder: Path, **values: str) -> None:
    (folder / ".env").write_text("".join(f"{name}={value}\n" for name, value in values.items()))


def test_the_settings_read_the_environment_only(tmp_path):
    write_env(tmp_path, EVENT_IMPORTER_MAX_ATTEMPTS="7")
    assert Settings().max_attempts == Settings.model_fields["max_attempts"].default

    load_env_file()

    assert get_settings().max_attempts == 7


def test_a_variable_set_in_the_environment_wins_over_dotenv(tmp_path, monkeypatch):
    write_env(tmp_path, EVENT_IMPORTER_MAX_ATTEMPTS="7", EVENT_IMPORTER_MAX_CONCURRENCY="3")
    monkeypatch.setenv("EVENT_IMPORTER_MAX_ATTEMPTS", "2")

    load_env_file()

    settings = get_settings()
    assert (settings.max_attempts, settings.max_concurrency) == (2, 3)


def test_the_api_app_loads_dotenv(tmp_path):
    from event_importer.api import create_app

    write_env(tmp_path, EVENT_IMPORTER_API_TOKEN=TOKEN)
    with TestClient(create_app()) as client:
        assert client.get("/openapi.json").status_code == 401
        assert client.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_the_code_location_loads_dotenv_and_binds_its_secrets_by_name(tmp_path):
    from event_importer.definitions import load_definitions

    secret = "tf-dotenv-location-5d4c3b2a"
    write_env(tmp_path, TICKETFAIRY_API_KEY=secret)
    reset_process_state()

    resource = load_definitions().resources["ticketfairy_client"]

    assert isinstance(resource.api_key, dg.EnvVar) and resource.api_key.env_var_name == "TICKETFAIRY_API_KEY"
    assert resource.api_key.get_value() == secret


def test_a_variable_set_both_ways_with_other_values_is_named_by_the_command(tmp_path):
    """Dagster's code server loads `.env` over the environment, so such a variable would mean one
    thing to the command and another to its runs: the command names it, never its values."""
    write_env(
        tmp_path,
        TICKETFAIRY_API_URL="https://dotenv.example.org/api",
        EVENT_IMPORTER_MAX_ATTEMPTS="3",
        TICKETFAIRY_API_KEY="tf-dotenv-conflict-9a8b",
    )
    env = {
        **os.environ,
        "TICKETFAIRY_API_URL": "https://shell.example.org/api",
        "EVENT_IMPORTER_MAX_ATTEMPTS": "3",
        "TICKETFAIRY_API_KEY": "tf-shell-conflict-1c2d",
        "EVENT_IMPORTER_HOME": str(tmp_path / "home"),
    }
    command = Path(sys.executable).parent / "event-importer"
    done = subprocess.run(
        [str(command), "integrations", "list"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1, done.stderr
    assert "TICKETFAIRY_API_KEY, TICKETFAIRY_API_URL set in the environment" in warning[0]
    # The same value both ways is no conflict; no value is ever printed.
    assert "EVENT_IMPORTER_MAX_ATTEMPTS" not in warning[0]
    for value in ("dotenv.example.org", "shell.example.org", "tf-dotenv-conflict-9a8b", "tf-shell-conflict-1c2d"):
        assert value not in done.stderr + done.stdout


def test_no_warning_when_the_environment_and_dotenv_agree(tmp_path, monkeypatch):
    write_env(tmp_path, EVENT_IMPORTER_MAX_ATTEMPTS="3", EVENT_IMPORTER_MAX_CONCURRENCY="5")
    monkeypatch.setenv("EVENT_IMPORTER_MAX_ATTEMPTS", "3")

    assert load_env_file() == []
