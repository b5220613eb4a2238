"""Finds integrations: packages under `event_importer/integrations/` and entry points of installed
distributions in the group `event_importer.integrations`.

An integration is a package holding exactly one `BaseSubmitter` subclass (in `__init__.py` or
`submitter.py`), optionally with `cli.py` (a click group named `cli`) and `routes.py` (a FastAPI
`router`). Its name is the folder's (or entry point's) name, and it is the one name used everywhere:
discovery gives it to the submitter class as its `service_name`.
An integration that fails to import is reported with its error and leaves the others working.
"""

import importlib
import importlib.util
import inspect
import pkgutil
import re
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from event_importer.errors import EventImporterError, IntegrationNotFoundError
from event_importer.framework.submitter import BaseSubmitter
from event_importer.settings import IntegrationSettings, Settings

BUILTIN_PACKAGE = "event_importer.integrations"
ENTRY_POINT_GROUP = "event_importer.integrations"
# Dagster group, job and op names allow only these characters.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Integration:
    """A discovered integration."""

    name: str
    package: str
    submitter_class: type[BaseSubmitter]
    source: str
    cli_module: str | None = None
    routes_module: str | None = None
    description: str = ""

    def create_submitter(
        self, settings: IntegrationSettings | None = None, app_settings: Settings | None = None
    ) -> BaseSubmitter:
        return self.submitter_class(settings, app_settings)

    def sends_unsent_cancelled(self) -> bool:
        """Whether the destination takes cancelled events it never had, as configured (its class's
        declaration when its settings cannot be read)."""
        try:
            return self.create_submitter().lifecycle_rules().send_unsent_cancelled
        except EventImporterError:
            return self.submitter_class.lifecycle.send_unsent_cancelled

    def load_cli(self) -> Any | None:
        return getattr(importlib.import_module(self.cli_module), "cli", None) if self.cli_module else None

    def load_router(self) -> Any | None:
        return getattr(importlib.import_module(self.routes_module), "router", None) if self.routes_module else None


@dataclass(frozen=True)
class DiscoveryFailure:
    name: str
    source: str
    error: str


@dataclass(frozen=True)
class Discovery:
    integrations: dict[str, Integration] = field(default_factory=dict)
    failures: list[DiscoveryFailure] = field(default_factory=list)

    def get(self, name: str) -> Integration:
        try:
            return self.integrations[name]
        except KeyError:
            known = ", ".join(sorted(self.integrations)) or "none"
            raise IntegrationNotFoundError(f"no integration named {name!r}; known: {known}") from None


def _optional_module(package: str, name: str) -> str | None:
    module = f"{package}.{name}"
    return module if importlib.util.find_spec(module) is not None else None


def _find_submitter(package: ModuleType) -> type[BaseSubmitter]:
    modules = [package]
    if (submitter_module := _optional_module(package.__name__, "submitter")) is not None:
        modules.append(importlib.import_module(submitter_module))
    found = {
        obj
        for module in modules
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseSubmitter)
        and not inspect.isabstract(obj)
        and obj.__module__.startswith(package.__name__)
    }
    if len(found) != 1:
        names = ", ".join(sorted(cls.__name__ for cls in found)) or "none"
        raise TypeError(f"expected exactly one BaseSubmitter subclass in {package.__name__}, found {names}")
    return found.pop()


def load_integration(name: str, package_name: str, source: str) -> Integration:
    """Import one integration package and describe it."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"integration name {name!r} must be lowercase letters, digits and underscores")
    package = importlib.import_module(package_name)
    submitter_class = _find_submitter(package)
    # The one place the name comes from: the submitter does not name itself.
    submitter_class.service_name = name
    return Integration(
        name=name,
        package=package_name,
        submitter_class=submitter_class,
        source=source,
        cli_module=_optional_module(package_name, "cli"),
        routes_module=_optional_module(package_name, "routes"),
        description=(inspect.getdoc(package) or "").split("\n", 1)[0],
    )


def _candidates() -> list[tuple[str, str, str]]:
    builtin = importlib.import_module(BUILTIN_PACKAGE)
    found = [
        (info.name, f"{BUILTIN_PACKAGE}.{info.name}", "built-in")
        for info in sorted(pkgutil.iter_modules(builtin.__path__), key=lambda i: i.name)
        if info.ispkg and not info.name.startswith("_")
    ]
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist else "unknown distribution"
        found.append((ep.name, ep.value, f"plugin: {dist}"))
    return found


@lru_cache(maxsize=1)
def discover() -> Discovery:
    """Every integration this installation has, found once per process."""
    integrations: dict[str, Integration] = {}
    failures: list[DiscoveryFailure] = []
    for name, package, source in _candidates():
        if name in integrations:
            failures.append(DiscoveryFailure(name, source, f"name already taken by {integrations[name].source}"))
            continue
        try:
            integrations[name] = load_integration(name, package, source)
        except Exception as exc:  # noqa: BLE001 - one broken integration must not hide the others
            last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f" ({last.filename}:{last.lineno})" if last else ""
            failures.append(DiscoveryFailure(name, source, f"{type(exc).__name__}: {exc}{where}"))
    return Discovery(integrations, failures)
