"""The event-importer benchmark harness: `python -m benchmarks` (see benchmarks/README.md)."""
