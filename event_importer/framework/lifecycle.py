"""What happens at a destination over an event's life: created, updated, cancelled, removed.

Each selected event gets one `Operation` when it is selected, from its state in the event cache
and what the destination last settled for it (see `operation_for`). Each integration declares,
with a `Lifecycle`, what it does for an update, a cancellation and a removal: send it (and how,
in words for the CLI, API and UI), or not, because the destination has no way to. An operation the
destination cannot carry out is never sent and never silently dropped: it is recorded in the
ledger as `skipped`, with the reason (`skip_reason`), and shown as such wherever outcomes are.
"""

import enum
from dataclasses import dataclass, field, replace
from typing import Any

from event_importer.events.status import EventStatus


class Operation(enum.StrEnum):
    """What one attempt is for the destination; recorded as `Submission.operation`."""

    CREATE = "create"
    UPDATE = "update"
    CANCEL = "cancel"
    REMOVE = "remove"


# How the operations read in messages ("the destination cannot cancel events").
_VERBS = {op: op.value for op in Operation}


@dataclass(frozen=True)
class Rule:
    """What a destination does for one operation.

    Args:
        supported: whether the operation is sent at all; when not, each case is recorded as skipped.
        does: what the destination does, in a few words, for `integrations list`, the API and the UI.
    """

    supported: bool
    does: str

    def to_json(self) -> dict[str, Any]:
        return {"supported": self.supported, "does": self.does}


def sends(does: str) -> Rule:
    """A rule for an operation the destination carries out, as `does` says."""
    return Rule(True, does)


def cannot(operation: Operation) -> Rule:
    """A rule for an operation the destination has no way to carry out."""
    return Rule(False, f"skipped: the destination cannot {_VERBS[operation]} events")


@dataclass(frozen=True)
class Lifecycle:
    """An integration's declaration of what its destination does over an event's life.

    Set it as the submitter's `lifecycle` class attribute; override `BaseSubmitter.lifecycle_rules`
    when a setting chooses (as CalDAV's removal does).

    Args:
        update: for a changed event the destination already has.
        cancel: for an event whose status became cancelled, once the destination has it.
        remove: for an event removed from its source (`events load --mirror`, `events remove`).
        send_unsent_cancelled: whether an event cancelled before it ever reached the destination is
            sent all the same (as a creation, carrying its status); by default it is not sent at all.
    """

    update: Rule
    cancel: Rule
    remove: Rule
    send_unsent_cancelled: bool = False
    _rules: dict[Operation, Rule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rules = {Operation.CREATE: sends("created"), Operation.UPDATE: self.update}
        rules |= {Operation.CANCEL: self.cancel, Operation.REMOVE: self.remove}
        object.__setattr__(self, "_rules", rules)

    def rule(self, operation: Operation) -> Rule:
        return self._rules[operation]

    def with_rule(self, operation: Operation, rule: Rule) -> "Lifecycle":
        """The same declaration with one rule replaced (for a setting that chooses it)."""
        if operation is Operation.UPDATE:
            return replace(self, update=rule)
        if operation is Operation.CANCEL:
            return replace(self, cancel=rule)
        if operation is Operation.REMOVE:
            return replace(self, remove=rule)
        raise ValueError(f"a creation is always sent; there is no rule to replace for {operation}")

    def skip_reason(self, operation: Operation, *, at_destination: bool) -> str | None:
        """Why an event with this operation is not sent (None: it is sent).

        Args:
            operation: the event's operation (`operation_for`).
            at_destination: whether the destination has the event (its latest success was not a removal).
        """
        if operation is Operation.REMOVE and not at_destination:
            return "skipped: removed from the source, and this destination does not have it"
        if operation is Operation.CANCEL and not at_destination and not self.send_unsent_cancelled:
            return "skipped: cancelled before it was ever sent to this destination"
        rule = self._rules[operation]
        return None if rule.supported else rule.does

    def describe(self) -> dict[str, dict[str, Any]]:
        """`{"update": {"supported", "does"}, "cancel": ..., "remove": ...}`, for listings."""
        return {op.value: self._rules[op].to_json() for op in (Operation.UPDATE, Operation.CANCEL, Operation.REMOVE)}


# For integrations that declare nothing: what the framework did before there were lifecycles.
# A changed or cancelled event goes through the transformer again (its data carries the status);
# a removal has no representation, so it is recorded as skipped.
DEFAULT_LIFECYCLE = Lifecycle(
    update=sends("sent again through the transformer"),
    cancel=sends("sent again through the transformer, with status cancelled in the data"),
    remove=cannot(Operation.REMOVE),
)


def operation_for(data: Any, *, removed: bool, at_destination: bool) -> Operation:
    """The operation an event needs at a destination.

    Args:
        data: the event's data as cached (`EventData` JSON; anything else counts as scheduled).
        removed: whether the event is removed from its source.
        at_destination: whether the destination has the event (see `Lifecycle.skip_reason`).
    """
    if removed:
        return Operation.REMOVE
    status = data.get("status") if isinstance(data, dict) else None
    if status == EventStatus.CANCELLED:
        return Operation.CANCEL
    return Operation.UPDATE if at_destination else Operation.CREATE
