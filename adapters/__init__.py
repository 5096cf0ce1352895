"""Adapters: real source-system shapes into the extract contract v1 (``ingestion/contract.py``).

An adapter reads one system's files as its connectors deliver them (Fivetran, Airbyte, the
vendor's own CSV export), writes contract files into a landing directory and accounts for every
source row: written (with lineage to the contract row it became), or rejected / excluded with a
reason in a rejects file. ``docs/adapters.md`` documents each system.

- ``adapters.core``: the shared part (reading a source directory, row accounting, writing the
  contract files and the rejects and lineage files, the result type);
- ``adapters.crm``: what the CRM adapters share (value maps, one contract table per step,
  ``missing_amount``);
- ``adapters.stripe``: Stripe billing (``adapt_stripe``, ``StripeMapping``);
- ``adapters.salesforce`` / ``adapters.hubspot``: CRM (``adapt_salesforce``, ``adapt_hubspot``);
- ``adapters.segment``: product users and events (``adapt_segment``).

Dates and timestamps are read by the contract's own rule (``ingestion.rules``), see
``adapters.core``.
"""

from adapters.core import AdaptResult, TableAccount

__all__ = ["AdaptResult", "TableAccount"]
