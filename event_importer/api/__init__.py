"""The HTTP API: load events, trigger and watch submissions. `create_app()` builds it."""

from event_importer.api.app import create_app

__all__ = ["create_app"]
