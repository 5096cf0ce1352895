"""Ingestion assets and their contract checks; see :mod:`orchestration.defs.ingestion.assets`."""

from orchestration.defs.ingestion.assets import ingestion_asset_checks, ingestion_assets

__all__ = ["ingestion_asset_checks", "ingestion_assets"]
