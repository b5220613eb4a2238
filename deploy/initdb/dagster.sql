-- Dagster's storage lives in its own database beside the event cache.
CREATE DATABASE dagster OWNER events;
