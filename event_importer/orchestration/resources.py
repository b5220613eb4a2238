"""Resources: the event-cache database, one client resource per integration, and the run-scoped IO manager.

Secrets never pass through run config. A client resource has one field per setting of its
integration; every field defaults to None, meaning "whatever the settings class reads at run time"
(the environment, `.env`, the field's default). A secret field (a pydantic `SecretStr` of the
settings class) is bound to `dg.EnvVar("<PREFIX><FIELD>")` when that variable is set at definitions
load, so the UI shows the variable's name and the value is resolved only inside the run. When it is
not set at load it stays unbound: an unset `EnvVar` would fail every launch, and a dry run must work
without an API key. The database URL, which may hold a password, is treated the same way.

The IO manager is Dagster's `InMemoryIOManager` (values keyed by run, step and output), subclassed
only to turn a missing value into an error saying what to run. It fits because a run's three steps
always execute in one process, the job's in-process executor, wherever the run launcher puts the
run: a subprocess of the code server, or one Celery worker taking the whole run
(`event_importer.workers`). The values are `Packed` chunks (compressed JSON), so holding a run's
events costs little, and they go with the manager when the run ends. The default `fs_io_manager`
would pickle event data under DAGSTER_HOME, one file per asset overwritten by every run, so two runs
of one integration could read each other's events. Re-executing a whole run works (every step
produces its value again); re-executing a downstream step alone finds no input in memory and fails
with that error.
"""

import os
import types
from typing import Any, ClassVar, Union, get_args, get_origin

import dagster as dg
from pydantic import Field, PrivateAttr

from event_importer.db.engine import Database, get_database
from event_importer.framework.contracts import BaseClient
from event_importer.framework.discovery import Integration
from event_importer.framework.submitter import BaseSubmitter
from event_importer.secret_settings import secret_fields
from event_importer.settings import get_settings, load_settings

DATABASE_URL_ENV = "EVENT_IMPORTER_DATABASE_URL"
# Settings used while building the definitions, not by a run.
LOAD_TIME_FIELDS = frozenset({"schedule"})
_CONFIG_SCALARS = (str, int, float, bool)


class DatabaseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The event cache and submission ledger (SQLite or PostgreSQL)."""

    url: str | None = Field(
        default=None,
        description=f"SQLAlchemy URL; unset: {DATABASE_URL_ENV}, else SQLite under EVENT_IMPORTER_HOME.",
    )

    def get_database(self) -> Database:
        """The process-wide `Database` for the URL (schema created on first use)."""
        return get_database(self.url or get_settings().resolved_database_url)


def database_resource() -> DatabaseResource:
    """The resource bound in the definitions: the URL from `EnvVar` only when the variable is set."""
    if os.environ.get(DATABASE_URL_ENV):
        return DatabaseResource(url=dg.EnvVar(DATABASE_URL_ENV))
    return DatabaseResource()


class IntegrationClientResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Base of the per-integration client resources built by `client_resource_class`.

    At run start it builds the integration's settings from its resolved fields (so a bad setting fails
    the run before any step) and the submitter the assets call; `create_client()` gives a new client
    for the run's requests.
    """

    integration: ClassVar[Integration]
    _submitter: BaseSubmitter = PrivateAttr()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._submitter = self.build_submitter()

    def build_submitter(self) -> BaseSubmitter:
        """A submitter whose settings are this resource's fields, with unset ones read as usual."""
        settings_class = self.integration.submitter_class.settings_class
        overrides = {
            name: value
            for name in settings_class.model_fields
            if (value := getattr(self, name, None)) is not None
        }
        return self.integration.create_submitter(load_settings(settings_class, **overrides))

    @property
    def submitter(self) -> BaseSubmitter:
        try:
            return self._submitter
        except AttributeError:
            # Used outside a run (e.g. a direct call in a test): build it on demand.
            self._submitter = self.build_submitter()
            return self._submitter

    def create_client(self) -> BaseClient:
        return self.submitter.create_client()


def client_resource_key(service: str) -> str:
    return f"{service}_client"


def client_resource_class(integration: Integration) -> type[IntegrationClientResource]:
    """A `ConfigurableResource` class with one optional field per setting of the integration.

    Secret fields become `str | None`; fields whose type Dagster's config cannot express (paths,
    nested models) are left out and read by the settings class at run time.
    """
    settings_class = integration.submitter_class.settings_class
    secrets = secret_fields(settings_class)
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    for name, field in settings_class.model_fields.items():
        if name in LOAD_TIME_FIELDS or name.startswith("_"):
            continue
        if name in secrets:
            annotation: Any = str
            origin = f"{secrets[name]} (bound as an EnvVar when set; the value is never shown)"
        else:
            scalar = _config_scalar(field.annotation)
            if scalar is None:
                continue
            annotation = scalar
            origin = f"{settings_class.variable(name)} or the default"
        annotations[name] = annotation | None
        namespace[name] = Field(default=None, description=f"{field.description or name} Unset: {origin}.")
    namespace.update(
        {
            "__module__": __name__,
            "__annotations__": annotations,
            "__doc__": f"Settings and client of the {integration.name} integration.",
            "integration": integration,
        }
    )
    class_name = "".join(part.capitalize() for part in integration.name.split("_")) + "ClientResource"
    return type(class_name, (IntegrationClientResource,), namespace)


def client_resource(integration: Integration) -> IntegrationClientResource:
    """The integration's client resource, its secrets bound to `EnvVar`s that are set right now."""
    cls = client_resource_class(integration)
    bound = {
        name: dg.EnvVar(variable)
        for name, variable in secret_fields(integration.submitter_class.settings_class).items()
        if os.environ.get(variable)
    }
    return cls(**bound)


def _config_scalar(annotation: Any) -> type | None:
    """`str`, `int`, `float` or `bool` when the annotation is one of them, optionally `| None`."""
    if annotation in _CONFIG_SCALARS:
        return annotation  # type: ignore[no-any-return]
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and args[0] in _CONFIG_SCALARS:
            return args[0]  # type: ignore[no-any-return]
    return None


class RunMemoryIOManager(dg.InMemoryIOManager):
    """Dagster's in-memory IO manager, with a clear error when a step's input is not in this run.

    A value read by a step that its run did not produce (a re-execution of `submission_results`
    alone, say) is missing from memory: Dagster's own manager raises a bare `KeyError` on its tuple
    key, this one a `dg.Failure` saying what to run instead.
    """

    def load_input(self, context: dg.InputContext) -> Any:
        try:
            return super().load_input(context)
        except KeyError:
            asset = context.asset_key.to_user_string() if context.has_asset_key else "its input"
            raise dg.Failure(
                description=(
                    f"{asset} is only passed within one run: materialize the integration's whole group "
                    "(its <service>_submit_job) rather than a downstream asset on its own."
                )
            ) from None


@dg.io_manager(description="Passes values between the steps of one run in memory; writes no files.")
def run_memory_io_manager(_context: dg.InitResourceContext) -> RunMemoryIOManager:
    # Initialised once per run: a new manager each time, so nothing outlives the run.
    return RunMemoryIOManager()  # type: ignore[no-untyped-call]
