"""event-importer: publish a catalogue of imported events to external services, once and traceably."""

__version__ = "0.1.0"
