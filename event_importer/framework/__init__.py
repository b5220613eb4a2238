"""The integration framework: the contracts an integration fills in (`contracts`), the submitter that
runs them (`submitter`, `selectors`, `sending`), the HTTP client most integrations build on (`http`),
and how integrations are found (`discovery`).

Integration authors import from `event_importer.sdk`, the curated public module, not from here.
"""
