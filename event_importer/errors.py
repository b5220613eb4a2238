"""Every error the project raises on purpose, so callers can tell a bad event from a broken system.

    EventImporterError
    ├── ConfigurationError          a setting is missing or invalid; nothing was sent
    ├── IntegrationNotFoundError    no integration has that name
    ├── EventNotFoundError          no cached event has that id or source URL
    ├── UnknownSelectorError        the integration has no selector of that name
    ├── UsageError                  a request that cannot become a run (e.g. 'url' selector, no url)
    ├── TransformError              one event cannot be mapped to the destination's format
    ├── SharedLimitError            the store of a destination's shared limits is unreachable: stop sending
    └── SubmissionError             one event could not be delivered
        ├── RetryableSubmissionError   timeouts, connection errors, 429, 5xx: worth trying again
        └── RejectedSubmissionError    other 4xx, empty or non-JSON answers: the destination said no

A `TransformError` or `SubmissionError` concerns one event: it is recorded on that event's
`Submission` row and the run goes on. A `ConfigurationError` stops the run before anything is sent. A
`SharedLimitError` stops the run where it is: nothing more is sent, since no process could then know
whether it stays within the destination's limits.
"""


class EventImporterError(Exception):
    """Base class of the project's own errors."""


class ConfigurationError(EventImporterError):
    """A setting is missing or invalid. The message names the setting, never its value."""


class IntegrationNotFoundError(EventImporterError):
    """No discovered integration has the requested name."""


class EventNotFoundError(EventImporterError):
    """No cached event has the requested id or source URL."""


class UnknownSelectorError(EventImporterError):
    """The integration has no selector with the requested name."""

    def __init__(self, name: str, valid: list[str]) -> None:
        self.name = name
        self.valid = valid
        super().__init__(f"unknown selector {name!r}; valid selectors: {', '.join(valid)}")


class UsageError(EventImporterError):
    """The request cannot become a run: e.g. the 'url' selector without a url, or a limit below 1."""


class TransformError(EventImporterError):
    """The event lacks something the destination needs, or holds something it cannot take."""


class SharedLimitError(EventImporterError):
    """The store holding a destination's limits for every worker (Redis) cannot be reached.

    Raised before the request it concerns is sent; the run stops rather than send faster than allowed.
    """


class SubmissionError(EventImporterError):
    """Sending one event failed.

    Attributes:
        status: the HTTP status of the answer, or None when there was no answer.
        api_message: the destination's own explanation, when it gave one.
    """

    def __init__(self, message: str, *, status: int | None = None, api_message: str | None = None) -> None:
        self.status = status
        self.api_message = api_message
        super().__init__(message)


class RetryableSubmissionError(SubmissionError):
    """A transient failure: the same request may succeed later.

    Attributes:
        retry_after: seconds the destination asked us to wait (from `Retry-After`), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        api_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, api_message=api_message)
        self.retry_after = retry_after


class RejectedSubmissionError(SubmissionError):
    """The destination refused the event or answered with something unusable; retrying will not help."""
