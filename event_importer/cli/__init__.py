"""The `event-importer` command line."""
