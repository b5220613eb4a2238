"""What an integration needs is declared once, on its settings class: the variables still missing,
whether it is configured and the error a real run stops with all follow from `required` and
`required_together`, read from the environment as every setting is."""

import pytest
from pydantic import Field, SecretStr

from event_importer.errors import ConfigurationError
from event_importer.framework.submitter import BaseSubmitter
from event_importer.sdk import IntegrationSettings
from event_importer_tests.factories import (
    SVC,
    PlainClient,
    PlainSubmitter,
    PlainTransformer,
    add_events,
    event_data,
    submission_rows,
)


class DemoSettings(IntegrationSettings, env_prefix="CONTRACT_DEMO_"):
    required = ("url", "token")
    required_together = (("username", "password"),)

    url: str | None = Field(default=None)
    token: SecretStr | None = Field(default=None)
    username: str | None = Field(default=None)
    password: SecretStr | None = Field(default=None)


class DemoSubmitter(BaseSubmitter):
    settings_class = DemoSettings

    def _create_client(self) -> PlainClient:
        return PlainClient(options=self.client_options)

    def _create_transformer(self) -> PlainTransformer:
        return PlainTransformer()


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, ["CONTRACT_DEMO_URL", "CONTRACT_DEMO_TOKEN"]),
        ({"CONTRACT_DEMO_URL": "https://x.example.org"}, ["CONTRACT_DEMO_TOKEN"]),
        # An empty value is no value, a secret included.
        ({"CONTRACT_DEMO_URL": "https://x.example.org", "CONTRACT_DEMO_TOKEN": ""}, ["CONTRACT_DEMO_TOKEN"]),
        ({"CONTRACT_DEMO_URL": "https://x.example.org", "CONTRACT_DEMO_TOKEN": "t0k"}, []),
        # Together or not at all: either one alone asks for the other.
        (
            {"CONTRACT_DEMO_URL": "u", "CONTRACT_DEMO_TOKEN": "t", "CONTRACT_DEMO_USERNAME": "alice"},
            ["CONTRACT_DEMO_PASSWORD"],
        ),
        ({"CONTRACT_DEMO_PASSWORD": "pw"}, ["CONTRACT_DEMO_URL", "CONTRACT_DEMO_TOKEN", "CONTRACT_DEMO_USERNAME"]),
        (
            {
                "CONTRACT_DEMO_URL": "u",
                "CONTRACT_DEMO_TOKEN": "t",
                "CONTRACT_DEMO_USERNAME": "a",
                "CONTRACT_DEMO_PASSWORD": "p",
            },
            [],
        ),
    ],
)
def test_missing_and_configured_come_from_the_declaration(monkeypatch, env, missing):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = DemoSettings()
    assert settings.missing() == missing
    assert settings.configured is (missing == [])
    assert DemoSubmitter(settings).missing_settings() == missing


def test_a_real_run_stops_before_anything_is_recorded_naming_variables_never_values(sqlite_database, monkeypatch):
    monkeypatch.setenv("CONTRACT_DEMO_URL", "https://x.example.org")
    monkeypatch.setenv("CONTRACT_DEMO_USERNAME", "alice-the-user")
    add_events(sqlite_database, event_data())
    submitter = DemoSubmitter()
    with pytest.raises(ConfigurationError) as info:
        submitter.submit_events(sqlite_database, "unsubmitted")
    message = str(info.value)
    assert message == (
        "framework: CONTRACT_DEMO_TOKEN, CONTRACT_DEMO_PASSWORD not set; "
        "set it (environment or .env) or make this a dry run"
    )
    assert "alice-the-user" not in message and "x.example.org" not in message
    with pytest.raises(ConfigurationError, match="CONTRACT_DEMO_TOKEN"):
        submitter.create_client()
    assert submission_rows(sqlite_database) == []
    # A dry run needs none of it.
    assert submitter.submit_events(sqlite_database, "unsubmitted", dry_run=True).counts["dry_run"] == 1


def test_a_declared_name_that_is_no_field_fails_when_the_class_is_made():
    with pytest.raises(TypeError, match="required setting.* api_kye are not fields of the class"):

        class Misspelt(IntegrationSettings, env_prefix="MISSPELT_"):
            required = ("api_kye",)

            api_key: SecretStr | None = None


def test_the_service_name_is_the_package_folder_unless_discovery_gives_one():
    # Defined in the module `event_importer_tests.framework.test_integration_settings`, a module
    # of the package `event_importer_tests.framework`: a built-in integration's submitter in
    # `integrations/<folder>/submitter.py` is named by that folder the same way.
    assert DemoSubmitter.service_name == "framework"

    # A subclass is the same integration as its parent, wherever it is defined.
    class Variant(PlainSubmitter):
        pass

    assert Variant.service_name == PlainSubmitter.service_name == SVC
