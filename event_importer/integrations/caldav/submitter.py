"""Wires the CalDAV transformer and client to the standard selectors.

`icalendar` comes with the `caldav` extra (`pip install 'event-importer[caldav]'`). Without it the
integration is still discovered, and `integrations list` says what it needs, instead of failing to
load and disappearing from the CLI, the API and Dagster.
"""

import importlib.util
from collections.abc import Iterable

from event_importer.integrations.caldav.client import CalDavClient
from event_importer.integrations.caldav.settings import CalDavSettings
from event_importer.sdk import (
    BaseClient,
    BaseSubmitter,
    BaseTransformer,
    ConfigurationError,
    EventRef,
    Lifecycle,
    Operation,
    Payload,
    sends,
)

INSTALL_HINT = "the icalendar library (pip install 'event-importer[caldav]')"


def icalendar_installed() -> bool:
    return importlib.util.find_spec("icalendar") is not None


class CalDavSubmitter(BaseSubmitter):
    settings_class = CalDavSettings
    settings: CalDavSettings
    lifecycle = Lifecycle(
        update=sends("the entry is rewritten in place, SEQUENCE incremented"),
        cancel=sends("the entry gets STATUS:CANCELLED, SEQUENCE incremented (RFC 5546)"),
        remove=sends("as a cancellation (CALDAV_REMOVAL=cancel)"),
    )

    def lifecycle_rules(self) -> Lifecycle:
        if self.settings.removal == "delete":
            return self.lifecycle.with_rule(
                Operation.REMOVE, sends("the entry is deleted from the calendar (CALDAV_REMOVAL=delete)")
            )
        return self.lifecycle

    def _create_client(self) -> BaseClient:
        assert self.settings.url is not None  # a required setting: create_client checked it
        return CalDavClient(
            service_name=self.service_name,
            url=self.settings.url,
            username=self.settings.username,
            password=self.settings.password,
            options=self.client_options,
        )

    def _create_transformer(self) -> BaseTransformer:
        # Imported here so that the integration loads without icalendar (see the module docstring).
        from event_importer.integrations.caldav.transformer import CalDavTransformer

        return CalDavTransformer(delete_removed=self.settings.removal == "delete")

    def missing_settings(self) -> list[str]:
        return super().missing_settings() + ([] if icalendar_installed() else [INSTALL_HINT])

    def transform(self, events: Iterable[EventRef]) -> list[Payload]:
        # Checked once for the run: otherwise each event would be recorded as failed for it.
        if not icalendar_installed():
            raise ConfigurationError(f"the caldav integration needs {INSTALL_HINT}")
        return super().transform(events)
