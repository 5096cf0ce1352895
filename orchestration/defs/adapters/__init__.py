"""Source-system adapters as Dagster assets, upstream of ingestion (``docs/adapters.md``,
"Running adapters").

- :mod:`.registry`: the adapters there are (``stripe``, ``salesforce``, ``hubspot``,
  ``segment``): their function, mapping class and the contract tables each writes;
- :mod:`.config`: the deployment's ``CSW_ADAPTERS`` YAML, read and validated;
- :mod:`.assets`: one asset ``adapters/<system>`` per configured adapter, its
  ``no_rejected_rows`` check, and the ingestion assets made to depend on it.
"""
