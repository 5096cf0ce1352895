"""Renders ``docs/extract-contract.md`` from the contract schemas, so the page cannot drift.

Regenerate with ``python -m ingestion.contract_doc > docs/extract-contract.md``; a test fails when
the committed page differs from what the code says.
"""

from __future__ import annotations

from ingestion.contract import (
    CONTRACT_VERSION,
    EXTRACT_SUFFIXES,
    SYSTEMS,
    Column,
    ColumnType,
    TableSchema,
    tables_of,
)

_SYSTEM_TITLES = {"crm": "CRM", "product": "Product analytics", "billing": "Billing"}

_PREAMBLE = f"""# Extract contract v{CONTRACT_VERSION}

<!-- Generated from ingestion/contract.py by `python -m ingestion.contract_doc`; do not edit. -->

The canonical shape of the extracts cs-warehouse ingests. Source-system exports (Salesforce,
HubSpot, Stripe, Segment, ...) are mapped onto this shape by adapters; the warehouse reads only
this shape. The schemas below live in code (`ingestion/contract.py`): ingestion compiles them into
DuckDB SQL rules and great-expectations suites. Columns may be added as optional columns; the
columns below are never renamed or dropped.

## Landing directory

```
<landing>/<system>/<table>/<any-name>.<{"|".join(s.lstrip(".") for s in EXTRACT_SUFFIXES)}>
```

- `<system>` is one of {", ".join(f"`{s}`" for s in SYSTEMS)}; `<table>` is a table below. A table
  folder may hold many files (daily drops, backfills, re-sends); every file is one extract.
- CSV: UTF-8 (a BOM is tolerated), header row, comma separated, RFC 4180 quoting, empty field = null.
- Dates and timestamps: ISO 8601, `YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM]`: `T` or a space,
  seconds optional, up to 9 fraction digits (truncated to microseconds), offsets `±HH:MM`,
  `±HHMM` or `±HH`. An offset is converted to UTC; without one the time is UTC. A `date` column
  takes a timestamp as its UTC date (`2024-03-01T23:30:00-05:00` is 2024-03-02), a `timestamp`
  column a date as midnight UTC. Both take epoch numbers, the unit told by the size of the whole
  part: 9-10 digits seconds, 12-13 milliseconds, 15-16 microseconds, 18-19 nanoseconds (each
  1973-03-03 to 2286-11-20); other sizes (`20240301`, 11 digits) are ambiguous and quarantined.
  Parquet `TIMESTAMP` (any unit, with or without a time zone), `DATE` and integer columns are
  read as such. Anything else (`03/01/2024`, zone names such as `EST`) is quarantined.
- Booleans: `true/false` (also `1/0`, `yes/no`, any case).
- Money: decimal in major units (`1200.50`) plus an ISO 4217 `currency` column; stored as DECIMAL,
  never as a float.
- Files directly under the landing directory or a system folder, and files in unknown system or
  table folders, are not loaded: they are listed as ignored (`raw.ingest_ignored`) and fail the
  check `landing/unrecognised_files:no_blocking_files`. Hidden (`.name`) and marker (`_SUCCESS`)
  files are listed too, without failing it.
- Column names (CSV headers, Parquet columns, JSON keys) are matched to the contract trimmed and
  case-insensitively, in every format; two names of one file meaning the same column refuse it.
  Key values are trimmed (`' a1 '` is `a1`); a blank key is quarantined (`required`).
- **Entity** tables carry `updated_at`: the row with the latest `updated_at` for a key wins, whichever
  file it came from and within one file too (equal `updated_at`: the later row), and a re-sent
  file changes nothing. **Event** tables are append-only and deduplicated on their key (the first
  row wins).
- A row that breaks a rule below is quarantined with the rule and the original values; a file that
  cannot be read or lacks a required column is refused whole (see `docs/ingestion.md`).

Column types: `string`, `integer`, `money` (DECIMAL(18,4)), `percent` (DECIMAL(9,4)), `rate`
(DECIMAL(18,8)), `date`, `timestamp` (stored as UTC), `boolean`, `json` (an object or null).
"""

_TYPE_NAMES = {
    ColumnType.STRING: "string",
    ColumnType.INTEGER: "integer",
    ColumnType.MONEY: "money",
    ColumnType.PERCENT: "percent",
    ColumnType.RATE: "rate",
    ColumnType.DATE: "date",
    ColumnType.TIMESTAMP: "timestamp",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.JSON: "json",
}


def _rules(column: Column) -> str:
    rules: list[str] = []
    if column.accepted_values:
        rules.append("one of " + ", ".join(f"`{v}`" for v in column.accepted_values))
    if column.min_value is not None and column.max_value is not None:
        rules.append(f"{column.min_value:g} to {column.max_value:g}")
    elif column.min_value is not None:
        rules.append(f">= {column.min_value:g}")
    if column.is_currency:
        rules.append("ISO 4217")
    return "; ".join(rules)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_table(schema: TableSchema) -> str:
    key = ", ".join(f"`{k}`" for k in schema.key)
    lines = [
        f"### `{schema.asset_path}`",
        "",
        f"{schema.description} Key: {key}. Kind: {schema.kind}.",
        "",
        "| column | type | required | rules | description |",
        "|---|---|---|---|---|",
    ]
    for c in schema.columns:
        required = "yes" if c.required else ""
        lines.append(
            f"| `{c.name}` | {_TYPE_NAMES[c.type]} | {required} | {_escape(_rules(c))} "
            f"| {_escape(c.description)} |"
        )
    if schema.row_rules:
        lines += ["", "Row rules: " + "; ".join(r.description for r in schema.row_rules) + "."]
    header = ",".join(schema.column_names)
    example = ",".join(_csv_field(c.example) for c in schema.columns)
    lines += ["", "Example (CSV):", "", "```csv", header, example, "```", ""]
    return "\n".join(lines)


def _csv_field(value: str) -> str:
    if any(ch in value for ch in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def render_contract() -> str:
    parts = [_PREAMBLE]
    for system in SYSTEMS:
        parts.append(f"## {_SYSTEM_TITLES[system]} (`{system}/`)\n")
        parts.extend(render_table(t) for t in tables_of(system))
    return "\n".join(parts).rstrip() + "\n"


if __name__ == "__main__":
    print(render_contract(), end="")
