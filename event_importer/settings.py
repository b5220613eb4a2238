"""Typed settings, read from the environment (into which each entry point first loads `.env`: see
`event_importer.environment`).

`Settings` holds what the whole project shares (prefix `EVENT_IMPORTER_`); each integration declares
its own `IntegrationSettings` subclass with its own prefix (e.g. `TICKETFAIRY_`). A bad value fails at
start with a `ConfigurationError` that names the variable and never echoes its value, since it may be a
secret.
"""

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from event_importer.errors import ConfigurationError

ENV_FILE = ".env"
# The most shards a submission may have: more would mostly wait in the run queue, at a run each.
MAX_SHARDS = 64


class Settings(BaseSettings):
    """Project-wide settings."""

    model_config = SettingsConfigDict(
        env_prefix="EVENT_IMPORTER_", extra="ignore", validate_default=True
    )

    home: Path = Field(default=Path(".event-importer"), description="Data folder: database, Dagster instance.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the event cache; default: SQLite file in the data folder."
    )
    request_timeout: float = Field(default=30.0, gt=0, le=600, description="Seconds before one request times out.")
    max_concurrency: int = Field(default=32, ge=1, le=1024, description="Requests in flight per integration.")
    max_attempts: int = Field(default=4, ge=1, le=20, description="Tries per event for transient failures.")
    stale_claim_after: float = Field(
        default=3600.0, gt=0, description="Seconds after which a pending claim from another host is stale."
    )
    failure_rate_threshold: float = Field(
        default=0.5, ge=0, le=1, description="Asset check: fail when more than this share of a run failed."
    )
    retry_attempts: int = Field(
        default=5,
        ge=1,
        le=50,
        description="Attempts an event gets (the first included) when its failures are transient, "
        "before later runs stop retrying it automatically ('exhausted').",
    )
    retry_delay: float = Field(
        default=300.0, gt=0, description="Seconds after the first transient failure before a run retries it; "
        "doubles after each further failure."
    )
    retry_max_delay: float = Field(default=21600.0, gt=0, description="Longest wait between automatic retries.")
    ui_url: str = Field(
        default="http://127.0.0.1:3000", description="Base URL of the Dagster UI, for the run links in alerts."
    )
    alert_webhook_url: SecretStr | None = Field(
        default=None, description="Alerts: URL taking a Slack incoming-webhook JSON body (it holds a token)."
    )
    alert_smtp_host: str | None = Field(default=None, description="Alerts by email: the SMTP server.")
    alert_smtp_port: int = Field(default=587, ge=1, le=65535, description="Alerts by email: the SMTP port.")
    alert_smtp_starttls: bool = Field(default=True, description="Alerts by email: upgrade with STARTTLS.")
    alert_smtp_user: SecretStr | None = Field(default=None, description="Alerts by email: SMTP login.")
    alert_smtp_password: SecretStr | None = Field(default=None, description="Alerts by email: SMTP password.")
    alert_email_from: str | None = Field(default=None, description="Alerts by email: the sender address.")
    alert_email_to: str | None = Field(default=None, description="Alerts by email: recipients, comma-separated.")
    alert_interval: int = Field(
        default=30, ge=1, le=3600, description="Seconds between the alerts sensor's looks at finished runs."
    )
    alert_timeout: float = Field(default=10.0, gt=0, le=60, description="Seconds per alert delivery attempt.")
    alert_attempts: int = Field(default=3, ge=1, le=10, description="Tries per alert and target.")
    api_token: SecretStr | None = Field(default=None, description="Bearer token the HTTP API requires.")
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis holding every destination's rate and in-flight limits for all workers together; "
        "unset: each process keeps its own limits.",
    )
    api_max_body_bytes: int = Field(default=10_000_000, ge=1_000, description="Largest request body the API takes.")
    api_wait_timeout: float = Field(
        default=300.0, gt=0, le=3600, description="Longest a submit with ?wait=true holds the request, in seconds."
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value and not value.split(":", 1)[0].startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value or None

    @field_validator("alert_email_to")
    @classmethod
    def _addresses(cls, value: str | None) -> str | None:
        if value and any("@" not in address for address in _split(value)):
            raise ValueError("must be email addresses separated by commas")
        return value or None

    @property
    def alert_recipients(self) -> list[str]:
        return _split(self.alert_email_to or "")

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home.resolve() / 'event-importer.db'}"

    @property
    def dagster_home(self) -> Path:
        return self.home.resolve() / "dagster"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class IntegrationSettings(BaseSettings):
    """Base of every integration's settings; subclasses set `env_prefix` and add their own fields.

    What an integration needs before it can send is declared once, on its class, by field name:
    `required` lists the fields that must be set, `required_together` the groups of fields set
    together or not at all (a user name and its password: a server without authentication needs
    neither). Everything else follows from that: `missing()` (the variables still needed),
    `configured`, and the `ConfigurationError` a real run stops with (`not_configured`). Such fields
    default to `None`, so that the integration loads, and dry runs work, without them.

    The tuning fields fall back to the project-wide value when unset.
    """

    model_config = SettingsConfigDict(extra="ignore", validate_default=True)

    #: Fields that must be set (not empty) before anything is sent.
    required: ClassVar[tuple[str, ...]] = ()
    #: Groups of fields that are set together or not at all.
    required_together: ClassVar[tuple[tuple[str, ...], ...]] = ()

    max_concurrency: int | None = Field(default=None, ge=1, le=1024, description="Requests in flight.")
    rate_limit: float | None = Field(default=None, gt=0, description="Requests per second; unset: no limit.")
    request_timeout: float | None = Field(default=None, gt=0, le=600, description="Seconds per request.")
    max_attempts: int | None = Field(default=None, ge=1, le=20, description="Tries for transient failures.")
    schedule: str = Field(default="0 * * * *", description="Cron of the submission schedule (UTC).")
    idempotent_writes: bool = Field(
        default=False, description="Whether the destination deduplicates resubmissions itself."
    )

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # A misspelt name would make a required setting silently optional: fail when the class is made.
        declared = [*cls.required, *(name for group in cls.required_together for name in group)]
        unknown = [name for name in declared if name not in cls.model_fields]
        if unknown:
            raise TypeError(f"{cls.__name__}: required setting(s) {', '.join(unknown)} are not fields of the class")

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of a field: `url` of `WEBHOOK_` is `WEBHOOK_URL`."""
        return (str(cls.model_config.get("env_prefix", "")) + field).upper()

    def missing(self) -> list[str]:
        """The variables this integration still needs before it can send anything, in declaration order."""
        names = [name for name in self.required if not self._is_set(name)]
        for group in self.required_together:
            unset = [name for name in group if not self._is_set(name)]
            if len(unset) < len(group):
                names += unset
        return [self.variable(name) for name in dict.fromkeys(names)]

    @property
    def configured(self) -> bool:
        """Whether nothing is missing (the destination itself is not contacted)."""
        return not self.missing()

    def _is_set(self, field: str) -> bool:
        value = getattr(self, field)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return value is not None and value != ""


def not_configured(service: str, missing: list[str]) -> ConfigurationError:
    """The error a real run stops with when `missing` (variable names, never values) are not set."""
    return ConfigurationError(
        f"{service}: {', '.join(missing)} not set; set it (environment or .env) or make this a dry run"
    )


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build a settings object, turning pydantic's error into one that names the variables, not values."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(describe_settings_error(cls, exc)) from None


def describe_settings_error(cls: type[BaseSettings], exc: ValidationError) -> str:
    prefix = str(cls.model_config.get("env_prefix", ""))
    problems = []
    for item in exc.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        problems.append(f"{(prefix + field).upper()}: {item['msg'].removeprefix('Value error, ')}")
    return "invalid setting: " + "; ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The project-wide settings, read once per process."""
    return load_settings(Settings)
