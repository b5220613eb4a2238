"""The event cache and the submission ledger tables, and how to reach them."""

from event_importer.db.engine import Database
from event_importer.db.models import Base, EventCache, Submission, SubmissionStatus

__all__ = ["Base", "Database", "EventCache", "Submission", "SubmissionStatus"]
