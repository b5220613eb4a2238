"""Wires TicketFairy's selectors, transformer and client together."""

from event_importer.integrations.base import BaseClient, BaseSelector, BaseSubmitter, BaseTransformer
from event_importer.integrations.ticketfairy.client import TicketFairyClient
from event_importer.integrations.ticketfairy.selectors import UpcomingUnsubmittedSelector
from event_importer.integrations.ticketfairy.settings import TicketFairySettings
from event_importer.integrations.ticketfairy.transformer import TicketFairyTransformer


class TicketFairySubmitter(BaseSubmitter):
    settings_class = TicketFairySettings
    settings: TicketFairySettings

    @property
    def service_name(self) -> str:
        return "ticketfairy"

    def _create_client(self) -> BaseClient:
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else None
        return TicketFairyClient(
            api_key=key,
            api_url=self.settings.api_url,
            origin=self.settings.origin,
            options=self.client_options,
        )

    def _create_transformer(self) -> BaseTransformer:
        return TicketFairyTransformer()

    def _create_selectors(self) -> dict[str, BaseSelector]:
        return {"upcoming": UpcomingUnsubmittedSelector()}
