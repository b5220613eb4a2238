"""Wires the webhook's transformer and client to the standard selectors."""

from event_importer.integrations.webhook.client import WebhookClient
from event_importer.integrations.webhook.settings import WebhookSettings
from event_importer.integrations.webhook.transformer import WebhookTransformer
from event_importer.sdk import BaseClient, BaseSubmitter, BaseTransformer, Lifecycle, sends


class WebhookSubmitter(BaseSubmitter):
    settings_class = WebhookSettings
    settings: WebhookSettings
    lifecycle = Lifecycle(
        update=sends("delivered as event.updated"),
        cancel=sends("delivered as event.cancelled"),
        remove=sends("delivered as event.deleted"),
    )

    def _create_client(self) -> BaseClient:
        url, secret = self.settings.url, self.settings.secret
        assert url is not None and secret is not None  # required settings: create_client checked them
        return WebhookClient(service_name=self.service_name, url=url, secret=secret, options=self.client_options)

    def _create_transformer(self) -> BaseTransformer:
        return WebhookTransformer()
