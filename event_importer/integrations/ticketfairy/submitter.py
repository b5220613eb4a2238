"""Wires TicketFairy's selectors, transformer and client together.

TicketFairy's API, as the Event Importer uses it, only creates draft events (`POST /draft-events`);
it has no call to change, cancel or delete one. So an update, a cancellation or a removal cannot
be sent: each is recorded as skipped with the reason, once per version of the event, for the
promoter to carry out by hand. Earlier releases sent a changed event as a second draft, a duplicate
to clean up; they no longer do.
"""

from event_importer.integrations.ticketfairy.client import TicketFairyClient
from event_importer.integrations.ticketfairy.selectors import UpcomingUnsubmittedSelector
from event_importer.integrations.ticketfairy.settings import TicketFairySettings
from event_importer.integrations.ticketfairy.transformer import TicketFairyTransformer
from event_importer.sdk import BaseClient, BaseSelector, BaseSubmitter, BaseTransformer, Lifecycle, Operation, cannot


class TicketFairySubmitter(BaseSubmitter):
    settings_class = TicketFairySettings
    settings: TicketFairySettings
    lifecycle = Lifecycle(
        update=cannot(Operation.UPDATE), cancel=cannot(Operation.CANCEL), remove=cannot(Operation.REMOVE)
    )

    def _create_client(self) -> BaseClient:
        assert self.settings.api_key is not None  # a required setting: create_client checked it
        return TicketFairyClient(
            service_name=self.service_name,
            api_key=self.settings.api_key,
            api_url=self.settings.api_url,
            origin=self.settings.origin,
            options=self.client_options,
        )

    def _create_transformer(self) -> BaseTransformer:
        return TicketFairyTransformer()

    def _create_selectors(self) -> dict[str, BaseSelector]:
        return {"upcoming": UpcomingUnsubmittedSelector()}
