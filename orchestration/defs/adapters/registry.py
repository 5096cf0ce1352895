"""The adapters there are, by system name: what runs them and which contract tables they write.

The adapters themselves (``adapters/<system>/``) are imported only when one is used, so the
definitions of a deployment without adapters load nothing more than before.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.core import AdaptResult

_CRM = ("accounts", "contacts", "opportunities", "activities", "support_tickets")


@dataclass(frozen=True)
class AdapterSystem:
    name: str
    #: ``adapters.<module>`` holding ``adapt_<name>`` and the mapping class.
    module: str
    mapping_class: str
    #: Contract tables (``<system>/<table>``) the adapter may write: their ingestion assets
    #: depend on the adapter's asset.
    writes: tuple[str, ...]

    def _module(self) -> Any:
        return importlib.import_module(f"adapters.{self.module}")

    def load_mapping(self, path: Path | None) -> Any:
        """The mapping in ``path`` (fields left out keep their defaults), else the defaults.
        Raises ValueError naming the file and the field."""
        cls = getattr(self._module(), self.mapping_class)
        return cls() if path is None else cls.from_yaml(path)

    @property
    def adapt(self) -> Callable[[Path, Path, Any], AdaptResult]:
        adapt: Callable[[Path, Path, Any], AdaptResult] = getattr(
            self._module(), f"adapt_{self.name}"
        )
        return adapt


SYSTEMS: dict[str, AdapterSystem] = {
    s.name: s
    for s in (
        AdapterSystem(
            "stripe",
            "stripe",
            "StripeMapping",
            tuple(
                f"billing/{t}"
                for t in ("customers", "plans", "subscriptions", "subscription_items", "invoices")
            ),
        ),
        AdapterSystem(
            "salesforce",
            "salesforce",
            "SalesforceMapping",
            tuple(f"crm/{t}" for t in (*_CRM, "nps_responses")),
        ),
        AdapterSystem("hubspot", "hubspot", "HubSpotMapping", tuple(f"crm/{t}" for t in _CRM)),
        AdapterSystem("segment", "segment", "SegmentMapping", ("product/users", "product/events")),
    )
}
