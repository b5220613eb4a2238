"""The built-in integrations: one package per destination, found by `event_importer.framework.discovery`."""
