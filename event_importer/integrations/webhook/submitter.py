"""Wires the webhook's transformer and client to the standard selectors."""

from event_importer.integrations.webhook.client import SERVICE_NAME, WebhookClient
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

    @property
    def service_name(self) -> str:
        return SERVICE_NAME

    def _create_client(self) -> BaseClient:
        secret = self.settings.secret.get_secret_value() if self.settings.secret else None
        return WebhookClient(
            url=self.settings.url,
            secret=secret,
            options=self.client_options,
        )

    def _create_transformer(self) -> BaseTransformer:
        return WebhookTransformer()
