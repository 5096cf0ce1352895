"""Dagster definitions by area: ``ingestion`` (extracts into ``raw``), ``dbt`` (the models)."""
