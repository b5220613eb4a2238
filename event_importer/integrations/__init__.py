"""Integrations: one package per destination, found by `discovery`, built on `base`."""
