"""HubSpot CRM into contract v1: ``adapt_hubspot(source, landing, mapping) -> AdaptResult``.

See ``adapters/hubspot/adapter.py`` for the steps and ``docs/adapters.md`` for the rules.
"""

from adapters.hubspot.adapter import adapt_hubspot
from adapters.hubspot.mapping import HubSpotMapping

__all__ = ["HubSpotMapping", "adapt_hubspot"]
