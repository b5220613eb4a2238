"""Reading routes: one event and its state per destination, and its attempts at one destination.

`GET /events/<id>` and `GET /integrations/<name>/events/<id>/attempts` answer what the CLI's
`events show --json` and `<name> history --json` print. They are mounted for every integration,
including those that bring their own router.
"""

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status

from event_importer.api.security import require_token
from event_importer.db.engine import get_database
from event_importer.errors import EventNotFoundError, IntegrationNotFoundError
from event_importer.history import event_overview, integration_history
from event_importer.integrations.discovery import discover
from event_importer.settings import get_settings

router = APIRouter(dependencies=[Depends(require_token)])


@router.get("/events/{event_id}", tags=["events"])
def show_event(event_id: int) -> dict[str, Any]:
    """The event, and per integration its state, attempt counts and latest attempt."""
    integrations = [found for _, found in sorted(discover().integrations.items())]
    try:
        return event_overview(get_database(get_settings().resolved_database_url), integrations, event_id)
    except EventNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None


@router.get("/integrations/{name}/events/{event_id}/attempts", tags=["events"])
def event_attempts(name: str, event_id: int) -> dict[str, Any]:
    """Every attempt to send the event to the integration, dry runs included: payload, answer, status, error."""
    try:
        integration = discover().get(name)
        return integration_history(get_database(get_settings().resolved_database_url), integration, event_id)
    except (EventNotFoundError, IntegrationNotFoundError) as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
