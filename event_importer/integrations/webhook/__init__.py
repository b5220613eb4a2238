"""Webhook: POST each event as Standard Webhooks-signed JSON to any HTTP endpoint."""

from event_importer.integrations.webhook.client import verify_signature

__all__ = ["verify_signature"]
