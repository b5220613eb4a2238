"""Reading routes: one event and its state per destination, and its attempts at one destination.

`GET /events/<id>` and `GET /integrations/<name>/events/<id>/attempts` answer what the CLI's
`events show --json` and `<name> history --json` print. They are mounted for every integration,
including those that bring their own router.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status

from event_importer.api.models import UNAUTHORIZED, answer
from event_importer.api.security import require_token
from event_importer.db.engine import configured_database
from event_importer.errors import EventNotFoundError, IntegrationNotFoundError
from event_importer.framework.discovery import discover
from event_importer.history import event_overview, integration_history

router = APIRouter(
    dependencies=[Depends(require_token)],
    responses={**UNAUTHORIZED, 404: answer("No event has that id, or no integration has that name.")},
)
# Ids are the database's 64-bit integers; a larger number names no event rather than overflowing.
EventId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The event's id in the cache (`events list`).")]


@router.get("/events/{event_id}", tags=["events"])
def show_event(event_id: EventId) -> dict[str, Any]:
    """The event, and per integration its state, attempt counts and latest attempt."""
    integrations = [found for _, found in sorted(discover().integrations.items())]
    try:
        return event_overview(configured_database(), integrations, event_id)
    except EventNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None


@router.get("/integrations/{name}/events/{event_id}/attempts", tags=["events"])
def event_attempts(name: str, event_id: EventId) -> dict[str, Any]:
    """Every attempt to send the event to the integration, dry runs included: payload, answer, status, error."""
    try:
        integration = discover().get(name)
        return integration_history(configured_database(), integration, event_id)
    except (EventNotFoundError, IntegrationNotFoundError) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
