"""The Segment mapping: where the account, role and dates of a product user come from.

Every field has a default, so ``SegmentMapping()`` works for a tracking plan that follows
Segment's B2B spec (``company.id`` on identify traits); a deployment overrides fields in YAML
(``SegmentMapping.from_yaml(path)``), for example::

    account_source: group
    anonymous: map
    role_map: {owner: admin, guest: viewer}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

CONTRACT_ROLES: tuple[str, ...] = ("admin", "member", "viewer")


def snake_case(name: str) -> str:
    """Segment's warehouse column name of a trait or property (``createdAt`` -> ``created_at``,
    ``company.id`` -> ``company_id``: nested objects are flattened with ``_``)."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_").lower()


def camel_case(name: str) -> str:
    head, *rest = snake_case(name).split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


@dataclass(frozen=True)
class SegmentMapping:
    #: Where an event's account comes from: ``trait`` (the user's identify traits, below) or
    #: ``group`` (the user's group calls: userId -> groupId), in both cases the latest one at or
    #: before the event.
    account_source: Literal["trait", "group"] = "trait"
    #: Identify traits holding the account id, first non-empty wins. A dotted name is a nested
    #: trait (``company.id``, Segment's reserved company object); in the warehouse form it is the
    #: flattened column (``company_id``).
    account_traits: tuple[str, ...] = ("account_id", "company.id", "company_id")
    #: An event's own ``context.groupId`` (warehouse column ``context_group_id``), which the
    #: Spec offers for attributing any call to an account, wins over the resolved account.
    use_context_group_id: bool = True
    #: Events with an anonymousId and no userId: ``skip`` (excluded, counted) or ``map`` (the
    #: userId of the earliest call carrying both ids, usually the identify at sign-up; never
    #: identified = excluded).
    anonymous: Literal["skip", "map"] = "skip"
    #: Identify trait with the product role, its values mapped through ``role_map`` (after
    #: lower-casing) to admin, member or viewer.
    role_trait: str = "role"
    role_map: dict[str, str] = field(default_factory=dict)
    #: Role of a user no identify gives one; None = such users (and their identifies) rejected.
    default_role: str | None = "member"
    #: Identify trait with when the user was created (Segment's reserved ``createdAt``); without
    #: it provisioned_at is the user's first seen call.
    created_at_trait: str = "createdAt"
    #: Identify trait with when the user was removed; Segment has no such reserved trait, so by
    #: default users are never deprovisioned.
    deprovisioned_at_trait: str | None = None
    #: Event names: ``snake`` (``Dashboard Viewed`` -> ``dashboard_viewed``, as Segment's
    #: warehouse ``event`` column) or ``as_sent``; then renamed through ``event_name_map``.
    event_name_case: Literal["snake", "as_sent"] = "snake"
    event_name_map: dict[str, str] = field(default_factory=dict)
    #: Format of the users file (events are always Parquet, one file per day).
    output_format: Literal["csv", "parquet"] = "csv"
    #: File name (without ending) of the users file; events files are ``<stem>-<day>.parquet``.
    file_stem: str = "segment"

    def __post_init__(self) -> None:
        roles = [self.default_role, *self.role_map.values()]
        bad = sorted({r for r in roles if r is not None and r not in CONTRACT_ROLES})
        if bad:
            raise ValueError(
                f"role(s) {', '.join(bad)} are not contract roles ({', '.join(CONTRACT_ROLES)})"
            )
        if not self.account_traits and self.account_source == "trait":
            raise ValueError("account_traits is empty but account_source is trait")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.file_stem):
            raise ValueError(f"file_stem {self.file_stem!r}: use letters, digits, _ . - only")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentMapping:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown Segment mapping field(s) {', '.join(unknown)}; the fields are:"
                f" {', '.join(sorted(known))}"
            )
        values = dict(data)
        if "account_traits" in values:
            traits = values["account_traits"]
            values["account_traits"] = (traits,) if isinstance(traits, str) else tuple(traits)
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: Path) -> SegmentMapping:
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a Segment mapping must be a YAML mapping of fields")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
