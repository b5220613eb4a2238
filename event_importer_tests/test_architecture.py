"""The shape of the code: the public module integrations are written with, the import contracts in
`pyproject.toml`, and no import cycle anywhere in the package."""

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import event_importer.sdk as sdk

ROOT = Path(__file__).resolve().parents[1]

# The public API of `event_importer.sdk`. Adding a name is a decision, removing one breaks plugins:
# either way this list changes with it, in the same commit.
EXPORTED = [
    "DEFAULT_OPTIONS",
    "BaseClient",
    "BaseSelector",
    "BaseSubmitter",
    "BaseTransformer",
    "ClientOptions",
    "ConfigurationError",
    "EventCache",
    "EventData",
    "EventRef",
    "EventStatus",
    "HttpClient",
    "Images",
    "IntegrationSettings",
    "Lifecycle",
    "Location",
    "Operation",
    "Payload",
    "RejectedSubmissionError",
    "RetryableSubmissionError",
    "SubmissionError",
    "TransformError",
    "cannot",
    "check_http_url",
    "data_hash",
    "integration_group",
    "integration_router",
    "minimum_age_label",
    "overnight_end",
    "place_line",
    "report_http_status",
    "resolve_event_timezone",
    "sends",
    "source_url_id",
    "unsubmitted",
]
# Module-level names of the SDK that are not part of its API.
_PLUMBING = {"TYPE_CHECKING", "Any"}


def test_sdk_exports_exactly_its_public_names() -> None:
    assert sdk.__all__ == EXPORTED
    public = {name for name in vars(sdk) if not name.startswith("_")} - _PLUMBING
    # Every public name defined in the module is exported; the lazy ones are exported but not yet defined.
    assert public == set(EXPORTED) - set(sdk._LAZY)
    for name in EXPORTED:
        assert getattr(sdk, name) is not None, name


def test_sdk_lazy_names_resolve_to_the_cli_and_api_helpers() -> None:
    from event_importer.api.routes import integration_router
    from event_importer.cli.integration import integration_group

    assert sdk.integration_group is integration_group
    assert sdk.integration_router is integration_router
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = sdk.nothing_here


def test_import_contracts_hold() -> None:
    """`lint-imports` with the contracts of `pyproject.toml`: integrations use the SDK alone, the
    framework knows nothing of Dagster, the CLI or the API.

    Run as a command, as `make check` runs it: in this process, its `logging.config.dictConfig`
    would disable every logger that exists already, the project's among them, and the tests after
    this one would see none of their log records."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_package_has_no_import_cycle() -> None:
    """Every import counts, those inside functions too (a cycle hidden there is still a cycle);
    imports only for type checkers do not (they never run)."""
    graph = grimp.build_graph("event_importer", exclude_type_checking_imports=True, cache_dir=None)
    cycles = _cycles({module: graph.find_modules_directly_imported_by(module) for module in graph.modules})
    assert cycles == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(edges) == [["a", "b", "c"]]
