"""The code location's definitions, loaded by `dg.load_from_defs_folder` (see `event_importer.definitions`).

Each module here holds `@dg.definitions` functions and nothing else; the code that builds them is
`event_importer.orchestration`.
"""
