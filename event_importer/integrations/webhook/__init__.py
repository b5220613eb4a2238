"""Webhook: POST each event as JSON, signed as Standard Webhooks specifies, to any HTTP endpoint."""

from event_importer.integrations.webhook.client import verify_signature

__all__ = ["verify_signature"]
