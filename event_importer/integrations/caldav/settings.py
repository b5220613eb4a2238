"""The CalDAV integration's settings (prefix `CALDAV_`): the calendar collection and its credentials."""

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from event_importer.sdk import IntegrationSettings, check_http_url


class CalDavSettings(IntegrationSettings, env_prefix="CALDAV_"):
    # The URL always; a user name and password together or not at all (a server without
    # authentication needs neither).
    required = ("url",)
    required_together = (("username", "password"),)

    url: str | None = Field(
        default=None,
        description="URL of the calendar collection (e.g. https://dav.example.org/alice/events/); required.",
    )
    username: str | None = Field(
        default=None, description="User name for HTTP basic auth; unset for a server without authentication."
    )
    password: SecretStr | None = Field(
        default=None, description="Password (or app password); required with CALDAV_USERNAME."
    )
    # Each event is PUT to the same resource every time, so a resend overwrites rather than duplicates.
    idempotent_writes: bool = Field(
        default=True, description="Whether the destination deduplicates resubmissions itself."
    )

    removal: Literal["cancel", "delete"] = Field(
        default="cancel",
        description="What an event removed from its source becomes: 'cancel' keeps the entry with "
        "STATUS:CANCELLED (calendar apps show it struck through), 'delete' deletes it.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        checked = check_http_url(value)
        # Credentials in the URL would be stored with every answer's href and shown in messages.
        if checked and urlsplit(checked).password is not None:
            raise ValueError("must not contain a password: set CALDAV_USERNAME and CALDAV_PASSWORD instead")
        return checked
