"""Imported events: their model, the bundled samples and the loader that fills the event cache."""

from event_importer.events.model import Coordinates, EventData, EventTime, Images, Location

__all__ = ["Coordinates", "EventData", "EventTime", "Images", "Location"]
