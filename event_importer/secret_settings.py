"""Which settings are secret, the environment variables that hold them, and keeping their values out of text.

A secret setting is a pydantic `SecretStr` field of a settings class: an integration's (its API key)
or the project's (an alert webhook URL). The Dagster layer binds each one as a `dg.EnvVar` by the
variable's name, never by value (`event_importer.orchestration.resources`); whoever reports a run's
failure (`event_importer.runs`, the alerts sensor) passes the text through `redact` first.
"""

import os
from typing import Any, get_args

from pydantic import SecretStr

from event_importer.framework.discovery import Integration
from event_importer.settings import IntegrationSettings, get_settings

# Shorter values would match ordinary words in the text; no real key is that short.
MIN_REDACTED_LENGTH = 4
REDACTED = "***"


def secret_fields(settings_class: type[IntegrationSettings]) -> dict[str, str]:
    """Each `SecretStr` field of the settings class and its environment variable."""
    return {
        name: settings_class.variable(name)
        for name, field in settings_class.model_fields.items()
        if _mentions(field.annotation, SecretStr)
    }


def redact(text: str, integration: Integration) -> str:
    """`text` with the value of every secret setting (the integration's, the project's) as `***`."""
    settings_class = integration.submitter_class.settings_class
    values = [os.environ.get(variable) for variable in secret_fields(settings_class).values()]
    project = get_settings()
    values += [
        value.get_secret_value()
        for name in type(project).model_fields
        if isinstance(value := getattr(project, name), SecretStr)
    ]
    for value in values:
        if value and len(value) >= MIN_REDACTED_LENGTH:
            text = text.replace(value, REDACTED)
    return text


def _mentions(annotation: Any, wanted: type) -> bool:
    if annotation is wanted:
        return True
    return any(_mentions(arg, wanted) for arg in get_args(annotation))
