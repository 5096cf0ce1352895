"""The marts' descriptions and column names keep to docs/marts.md, read from the dbt manifest.

No dbt build: only ``dbt parse`` (when the manifest is stale). The descriptions are what BI users
read (they are persisted as table and column comments in the serving copy), so they must state
the grain the mart has now: company totals apart from per-segment rows, never a segment ``all``.
Column names must follow docs/marts.md's naming convention for dates, months, moments and yes/no
columns; the exceptions are listed once, in docs/marts.md's "Exceptions" list, which this test
reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestration.defs.dbt.project import mart_names, prepared_manifest

MARTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "marts.md"
#: Wording of the old mixed shape: a segment called all.
ALL_SEGMENT = re.compile(r"`all`|'all'|\"all\"|segment all\b", re.IGNORECASE)
#: A grain per segment, said of a mart that has no segment column.
PER_SEGMENT = re.compile(r"\band segments?\b|\bper segment\b|\beach segment\b", re.IGNORECASE)
TOTALS = re.compile(r"\btotals\b|\bcompany total\b", re.IGNORECASE)


@dataclass(frozen=True)
class Mart:
    name: str
    description: str
    grain: tuple[str, ...]
    #: column name -> (declared data type, description)
    columns: dict[str, tuple[str, str]]


@pytest.fixture(scope="module")
def marts() -> list[Mart]:
    manifest = json.loads(prepared_manifest().read_text(encoding="utf-8"))
    names = set(mart_names())
    found = [
        Mart(
            name=node["name"],
            description=" ".join(node["description"].split()),
            grain=tuple(node["meta"].get("grain") or ()),
            columns={
                column: (
                    (spec.get("data_type") or "").lower(),
                    " ".join(spec["description"].split()),
                )
                for column, spec in node["columns"].items()
            },
        )
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["name"] in names
    ]
    assert found and {m.name for m in found} == names
    return found


def first_sentence(text: str) -> str:
    """Up to the first full stop followed by a space (or the end)."""
    return re.split(r"(?<=\.)\s", text, maxsplit=1)[0]


def names_column(text: str, column: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(column)}(?!\w)", text) is not None


def test_no_description_speaks_of_a_segment_all(marts: list[Mart]) -> None:
    stale = [m.name for m in marts if ALL_SEGMENT.search(m.description)] + [
        f"{m.name}.{column}"
        for m in marts
        for column, (_, text) in m.columns.items()
        if ALL_SEGMENT.search(text)
    ]
    assert stale == [], f"descriptions still describe a segment 'all' (issue 15 split it): {stale}"


def test_totals_marts_describe_no_per_segment_grain(marts: list[Mart]) -> None:
    totals = [m for m in marts if "segment" not in m.columns]
    stale = [
        m.name
        for m in totals
        if PER_SEGMENT.search(m.description) and not TOTALS.search(m.description)
    ] + [
        f"{m.name}.{column}"
        for m in totals
        for column, (_, text) in m.columns.items()
        if re.search(r"\bsegment", text) and not TOTALS.search(text)
    ]
    assert stale == [], f"marts without a segment column described per segment: {stale}"


def test_first_sentence_names_the_grain(marts: list[Mart]) -> None:
    missing = {
        m.name: [c for c in m.grain if not names_column(first_sentence(m.description), c)]
        for m in marts
    }
    assert all(m.grain for m in marts)
    assert {name: cols for name, cols in missing.items() if cols} == {}


def naming_exceptions() -> set[str]:
    """`mart.column` entries of docs/marts.md's "Exceptions" list (the one place they are kept)."""
    text = MARTS_DOC.read_text(encoding="utf-8")
    section = re.search(r"^\*\*Exceptions\*\*.*?(?=^\s*$)", text, re.MULTILINE | re.DOTALL)
    assert section, "docs/marts.md has no **Exceptions** paragraph under its naming convention"
    entries = set(re.findall(r"`(\w+\.\w+)`", section.group(0)))
    assert entries, "docs/marts.md's Exceptions list names no `mart.column`"
    return entries


def breaks_convention(column: str, data_type: str) -> bool:
    """True when the name and the declared type disagree with docs/marts.md's convention."""
    is_month = column == "month" or column.endswith("_month")
    kind = data_type.split("(")[0].strip()
    named = {
        "date": column.endswith("_date") or is_month,
        "timestamp": column.endswith("_at"),
        "boolean": column.startswith(("is_", "has_")),
    }
    if kind in ("timestamp", "timestamptz", "timestamp with time zone"):
        kind = "timestamp"
    if kind in named:
        return not named[kind]
    return any(named.values())  # a name of a date, moment or yes/no on a column of another type


def test_dated_and_yes_no_columns_follow_the_naming_convention(marts: list[Mart]) -> None:
    breaking = {
        f"{m.name}.{column}"
        for m in marts
        for column, (data_type, _) in m.columns.items()
        if breaks_convention(column, data_type)
    }
    exceptions = naming_exceptions()
    assert breaking - exceptions == set(), "add to docs/marts.md's Exceptions, or rename"
    assert exceptions - breaking == set(), "docs/marts.md lists exceptions that are not (any more)"


@pytest.mark.parametrize(
    ("column", "data_type", "breaks"),
    [
        ("renewal_date", "date", False),
        ("start_month", "date", False),
        ("month", "date", False),
        ("period_start", "date", True),
        ("first_built_at", "timestamp", False),
        ("built_on", "timestamp", True),
        ("is_complete", "boolean", False),
        ("reached", "boolean", True),
        ("renewal_date", "varchar", True),
        ("accounts", "bigint", False),
    ],
)
def test_breaks_convention(column: str, data_type: str, breaks: bool) -> None:
    assert breaks_convention(column, data_type) is breaks
