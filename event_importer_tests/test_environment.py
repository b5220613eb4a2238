"""`.env` is read one way: each entry point (the command, the API app, the code location) loads it into
the environment, and the settings read the environment only. A variable set in the environment wins.

The installed command in a fresh process, with the run it launches, is tested in `test_cli_submit.py`
(`test_the_installed_command_loads_dotenv_and_never_prints_the_key`); the API served by that command,
with its runs, in `test_api.py` (`test_event_importer_api_serves_over_http`).
"""

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
