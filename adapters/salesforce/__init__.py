"""Salesforce CRM into contract v1: ``adapt_salesforce(source, landing, mapping) -> AdaptResult``.

See ``adapters/salesforce/adapter.py`` for the steps and ``docs/adapters.md`` for the rules.
"""

from adapters.salesforce.adapter import adapt_salesforce
from adapters.salesforce.mapping import SalesforceMapping

__all__ = ["SalesforceMapping", "adapt_salesforce"]
