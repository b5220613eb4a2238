"""Webhook: POST each event as JSON, signed with HMAC-SHA256, to any HTTP endpoint."""

from event_importer.integrations.webhook.client import verify_signature

__all__ = ["verify_signature"]
