"""What the CRM adapters (Salesforce, HubSpot) share: finding the company's own fields in a
source table, value maps as SQL, building one contract CRM table with a disposition for every
source row, and accounting for lookup tables (users, owners, pipeline stages, associations).

A contract table is built in three steps (:func:`build_contract`):

1. ``computed``: one SQL expression per contract column (``o_<column>``) over a relation that
   unions the source tables feeding it (each row carrying ``_source_table``, ``_source_file``,
   ``_source_row``);
2. ``excluded`` / ``rejected``: ordered ``(condition, reason)`` pairs; the first true condition
   decides the row (exclusions first: a deleted row is excluded even when it would not map);
3. of the rows left, one per contract key is written: the active history-mode row, else the
   latest version (``updated_at``), else the last row read; the others are excluded as
   superseded versions.

Every source row thereby ends ``written`` (with lineage), ``rejected`` or ``excluded``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import duckdb
import yaml

from adapters import core
from adapters.core import AdapterInputError, SourceTable, quote
from ingestion.contract import ColumnType
from ingestion.contract import table as contract_table

CRM_TABLES = ("accounts", "contacts", "opportunities", "activities", "support_tickets")

#: Contract role precedence when a contact has several roles (a multi-select property).
ROLE_PRECEDENCE = ("executive_sponsor", "champion", "admin", "user", "other")


def norm(name: str) -> str:
    """A field or table name compared loosely: ``Role__c``, ``role_c`` and ``ROLE_C`` are one
    name, as are ``AccountId`` (Salesforce API) and ``account_id`` (Fivetran)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def find_table(tables: Mapping[str, SourceTable], *names: str) -> SourceTable | None:
    by_norm = {norm(t): s for t, s in tables.items()}
    return next((by_norm[norm(n)] for n in names if norm(n) in by_norm), None)


def find_column(table: SourceTable | None, *names: str) -> str | None:
    """The source column holding the first of ``names`` present (compared by :func:`norm`)."""
    if table is None:
        return None
    by_norm = {norm(c): c for c in table.columns}
    return next((by_norm[norm(n)] for n in names if norm(n) in by_norm), None)


def col(table: SourceTable | None, *names: str) -> str:
    """SQL for the first present column of ``names`` (trimmed, blank = NULL), else NULL."""
    found = find_column(table, *names)
    return f"nullif(trim(\"{found}\"), '')" if found else "CAST(NULL AS VARCHAR)"


def required_field(table: SourceTable, label: str, *names: str) -> str:
    """Like :func:`col`, but a field the mapping names must exist: else the run stops."""
    if find_column(table, *names) is None:
        raise AdapterInputError(
            f"{', '.join(table.files)}: the mapping names {label} {names[0]!r}, but the table"
            f" has no such column (looked for {', '.join(names)}). Fix the field name in the"
            " mapping, or add the field to the export, and run again; nothing was written."
        )
    return col(table, *names)


def map_sql(expr: str, mapping: Mapping[str, str | None]) -> str:
    """``expr`` through a value map (keys compared trimmed and lower-cased); NULL if absent."""
    whens = " ".join(
        f"WHEN {quote(k.strip().lower())} THEN {quote(v) if v is not None else 'NULL'}"
        for k, v in mapping.items()
    )
    return f"(CASE lower(trim({expr})) {whens} END)" if whens else "CAST(NULL AS VARCHAR)"


def in_map_sql(expr: str, mapping: Mapping[str, Any]) -> str:
    keys = ", ".join(quote(k.strip().lower()) for k in mapping)
    return f"(lower(trim({expr})) IN ({keys}))" if keys else "false"


def map_keys(mapping: Mapping[str, Any]) -> str:
    return ", ".join(str(k) for k in mapping) or "(empty)"


def date_sql(expr: str) -> str:
    """A date from a date or a timestamp text (its UTC date), NULL if blank or unparseable."""
    return f"CAST(csw_ts({expr}) AS DATE)"


def bad_ts(label: str, expr: str) -> tuple[str, str]:
    return (
        f"{expr} IS NOT NULL AND csw_ts({expr}) IS NULL",
        f"'{label}: ' || {expr} || {core.timestamp_reason(expr)}",
    )


def missing(label: str, expr: str, advice: str = "") -> tuple[str, str]:
    return (f"{expr} IS NULL", quote(f"{label}: missing{advice}"))


MissingAmount = Literal["reject", "exclude", "zero"]
MISSING_AMOUNT: tuple[str, ...] = get_args(MissingAmount)


@dataclass(frozen=True)
class AmountRules:
    """How a deal's amount is written and checked under a ``missing_amount`` policy."""

    #: SQL of the contract amount.
    value: str
    excluded: list[tuple[str, str]]
    rejected: list[tuple[str, str]]


def amount_rules(policy: MissingAmount, label: str, expr: str) -> AmountRules:
    """A blank amount (``expr`` is NULL) is rejected, excluded (the contract requires an
    amount) or written as 0 (``zero``: the deal's stage and dates are kept); a present amount
    must be a non-negative number whatever the policy."""
    if policy not in MISSING_AMOUNT:
        raise ValueError(f"missing_amount: {policy!r} is not one of {', '.join(MISSING_AMOUNT)}")
    bad = (
        f"{expr} IS NOT NULL AND (csw_dec({expr}) IS NULL OR csw_dec({expr}) < 0)",
        f"'{label}: ' || {expr} || ' is not a non-negative number'",
    )
    if policy == "zero":
        return AmountRules(f"CASE WHEN {expr} IS NULL THEN 0 ELSE csw_dec({expr}) END", [], [bad])
    if policy == "exclude":
        excluded = (
            f"{expr} IS NULL",
            quote(
                f"{label}: missing (missing_amount: exclude; set missing_amount: zero to keep"
                " the deal with amount 0)"
            ),
        )
        return AmountRules(f"csw_dec({expr})", [excluded], [bad])
    return AmountRules(f"csw_dec({expr})", [], [missing(label, expr), bad])


def missing_amount_warning(con: duckdb.DuckDBPyConnection, label: str) -> list[str]:
    """The warning when deals were excluded for a missing amount (``missing_amount: exclude``),
    naming how many and the other options; none otherwise."""
    row = con.execute(
        "SELECT count(*) FROM chk_opportunities WHERE starts_with(excl, ?)",
        [f"{label}: missing (missing_amount: exclude"],
    ).fetchone()
    n = int(row[0]) if row else 0
    if not n:
        return []
    deals = (
        "opportunity without an amount was" if n == 1 else "opportunities without an amount were"
    )
    return [
        f"crm/opportunities: {n} {deals} excluded (missing_amount: exclude); set"
        " missing_amount: zero to keep such deals (their stage and contract dates) with amount 0,"
        " or reject to stop on them"
    ]


def common_exclusions(table: SourceTable, what: str) -> list[tuple[str, str]]:
    """Deleted rows and earlier history-mode versions, for any connector's columns."""
    out: list[tuple[str, str]] = []
    for label in ("is_deleted", "_fivetran_deleted", "deleted", "archived"):
        found = find_column(table, label)
        if found and not any(found in c for c, _ in out):
            out.append(
                (
                    f'coalesce(csw_bool("{found}"), false)',
                    quote(f"deleted {what} ({found} is true)"),
                )
            )
    active = find_column(table, "_fivetran_active")
    if active:
        out.append(
            (
                f'csw_bool("{active}") = false',
                quote(
                    f"an earlier version of the {what} (Fivetran history mode, _fivetran_active"
                    " false); the active version is written"
                ),
            )
        )
    return out


def active_sql(table: SourceTable) -> str:
    active = find_column(table, "_fivetran_active")
    return f'coalesce(csw_bool("{active}"), true)' if active else "CAST(true AS BOOLEAN)"


def canon_select(table: SourceTable, what: str, cols: Mapping[str, str], joins: str = "") -> str:
    """One source table as canonical columns (``cols``: name -> SQL over its columns, which
    are unqualified; joined tables must not reuse source column names), plus
    ``_common_excl`` (deleted / earlier history version), ``_active`` and the source
    position."""
    whens = " ".join(f"WHEN {c} THEN {r}" for c, r in common_exclusions(table, what))
    select = ", ".join(f"{expr} AS {name}" for name, expr in cols.items())
    return f"""SELECT {select}, CASE WHEN false THEN NULL {whens} END AS _common_excl,
                      {active_sql(table)} AS _active, {quote(table.name)} AS _source_table,
                      s._source_file, s._source_row
               FROM "{table.sql_name}" s {joins}"""


def parent_status(con: duckdb.DuckDBPyConnection, contract: str) -> None:
    """``status_<contract>`` (p_key, p_status, p_reason): what became of each key of a built
    contract table, so a child row can say why its parent is missing."""
    key = contract_table(contract).key[0]
    con.execute(
        f"""CREATE OR REPLACE TABLE status_{contract} AS
            SELECT DISTINCT ON (o_{key}) o_{key} AS p_key,
                   CASE WHEN rn = 1 THEN 'written' WHEN excl IS NOT NULL OR rn > 1
                        THEN 'excluded' ELSE 'rejected' END AS p_status,
                   coalesce(excl, rej) AS p_reason
            FROM chk_{contract} WHERE o_{key} IS NOT NULL
            ORDER BY o_{key}, CASE WHEN rn = 1 THEN 0 WHEN excl IS NULL THEN 1 ELSE 2 END"""
    )


def join_parent(contract: str, alias: str, key_expr: str) -> str:
    return f"LEFT JOIN status_{contract} {alias} ON {alias}.p_key = {key_expr}"


def parent_checks(
    alias: str, key: str, label: str, what: str, source_table: str, required: bool = True
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(exclusions, rejections) of a child row by the fate of its parent; the canonical row
    carries ``<alias>_status`` / ``<alias>_reason`` and the parent key ``key``."""
    excl = [
        (
            f"{alias}_status = 'excluded'",
            f"'its {what} ' || {key} || ' is excluded (' || coalesce({alias}_reason, '') || ')'",
        )
    ]
    rej = [
        (
            f"{key} IS NOT NULL AND {alias}_status = 'rejected'",
            f"'{label}: {what} ' || {key} || ' was rejected (' || {alias}_reason || ')'",
        ),
        (
            f"{key} IS NOT NULL AND {alias}_status IS NULL",
            f"'{label}: ' || {key} || ' is not in the {source_table} table'",
        ),
    ]
    if required:
        rej.insert(0, (f"{key} IS NULL", quote(f"{label}: missing (no {what})")))
    return excl, rej


def build_contract(
    con: duckdb.DuckDBPyConnection,
    contract: str,
    relation: str,
    sources: Sequence[SourceTable],
    computed: Mapping[str, str],
    excluded: Sequence[tuple[str, str]],
    rejected: Sequence[tuple[str, str]],
    source_id: str,
    active: str = "true",
) -> None:
    """Build ``out_<contract>`` from ``relation`` and record what happened to each source row.

    ``computed`` holds an expression per contract column (conditions may use them as
    ``o_<column>``); ``source_id`` is the SQL of the row's own id (for the reports);
    ``active`` marks the history-mode row to prefer.
    """
    schema = contract_table(contract)
    key = schema.key[0]
    cols = ", ".join(f"{expr} AS o_{name}" for name, expr in computed.items())
    excl = " ".join(f"WHEN {c} THEN {r}" for c, r in excluded)
    rej = " ".join(f"WHEN {c} THEN {r}" for c, r in rejected)
    version = "o_updated_at" if "updated_at" in computed else "NULL"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE chk_{contract} AS
        WITH base AS (
            SELECT r.*, {cols}, {source_id} AS o__source_id, {active} AS o__active
            FROM ({relation}) r
        ),
        decided AS (
            SELECT *, CASE WHEN false THEN NULL {excl} END AS excl,
                   CASE WHEN false THEN NULL {rej} END AS rej
            FROM base
        )
        SELECT *, CASE WHEN excl IS NULL AND rej IS NULL THEN row_number() OVER (
                    PARTITION BY excl IS NULL AND rej IS NULL, o_{key}
                    ORDER BY o__active DESC, {version} DESC NULLS LAST, _source_file DESC,
                             _source_row DESC) END AS rn
        FROM decided
        """
    )
    typed = ", ".join(
        f'CAST(o_{c.name} AS {c.type.duckdb_type}) AS "{c.name}"'
        if c.type is not ColumnType.JSON
        else f'o_{c.name} AS "{c.name}"'
        for c in schema.columns
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE out_{contract} AS
            SELECT {typed}, _source_table, _source_file, _source_row, o__source_id AS source_id
            FROM chk_{contract} WHERE rn = 1"""
    )
    for t in sources:
        core.record(
            con,
            t.name,
            f"""SELECT _source_file, _source_row, o__source_id,
                       CASE WHEN excl IS NOT NULL OR rn > 1 THEN 'excluded' ELSE 'rejected' END,
                       coalesce(excl, rej, 'superseded: a later version of ' || o_{key}
                                || ' is written (history or a repeated row)')
                FROM chk_{contract}
                WHERE _source_table = {quote(t.name)}
                  AND (excl IS NOT NULL OR rej IS NOT NULL OR rn > 1)""",
        )
        core.record_lineage(
            con,
            contract,
            t.name,
            f"""SELECT "{key}", _source_file, _source_row, source_id FROM out_{contract}
                WHERE _source_table = {quote(t.name)}""",
        )


def account_lookup(
    con: duckdb.DuckDBPyConnection,
    table: SourceTable | None,
    key_expr: str,
    uses_sql: str,
    what: str,
) -> None:
    """A lookup or association table: each row a written contract row used is ``written``
    (lineage to that row); the others are ``excluded`` (no written row needed them).

    ``uses_sql`` yields (lookup_key, contract_table, contract_key) for written rows.
    """
    if table is None:
        return
    con.execute(
        f"""
        INSERT INTO _lineage
        SELECT DISTINCT u.contract_table, u.contract_key, {quote(table.name)}, l._source_file,
               l._source_row, {key_expr}
        FROM "{table.sql_name}" l
        JOIN ({uses_sql}) AS u(lookup_key, contract_table, contract_key)
          ON u.lookup_key = {key_expr}
        """
    )
    core.record(
        con,
        table.name,
        f"""SELECT l._source_file, l._source_row, {key_expr},
                   CASE WHEN EXISTS (SELECT 1 FROM _lineage x WHERE x.source_table
                        = {quote(table.name)} AND x.source_file = l._source_file
                        AND x.source_row = l._source_row) THEN 'written' ELSE 'excluded' END,
                   CASE WHEN NOT EXISTS (SELECT 1 FROM _lineage x WHERE x.source_table
                        = {quote(table.name)} AND x.source_file = l._source_file
                        AND x.source_row = l._source_row)
                        THEN {quote(f"no written row uses this {what}")} END
            FROM "{table.sql_name}" l""",
    )


def write_crm(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    names: Sequence[str],
    stem: str,
    output_format: core.OutputFormat,
) -> tuple[list[Path], dict[str, int]]:
    files, rows = [], {}
    for name in names:
        schema = contract_table(name)
        path, n = core.write_contract_table(
            con, schema, f"out_{name}", landing, stem, output_format
        )
        files.append(path)
        rows[schema.asset_path] = n
    return files, rows


# --- mappings ------------------------------------------------------------------------------------

M = TypeVar("M")


def mapping_from_dict(
    cls: type[M], data: Mapping[str, Any], system: str, checks: Mapping[str, Sequence[str]]
) -> M:
    """Build a mapping dataclass: unknown fields are an error naming the known ones; value maps
    (dict fields) are merged over their defaults; ``checks`` names, per value-map field, the
    contract values its targets must be (``null`` allowed where the field's doc says so)."""
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(
            f"unknown {system} mapping field(s) {', '.join(unknown)}; the fields are:"
            f" {', '.join(sorted(known))}"
        )
    defaults = cls()
    values: dict[str, Any] = {}
    for name, value in data.items():
        default = getattr(defaults, name)
        if isinstance(default, dict):
            if value is not None and not isinstance(value, dict):
                raise ValueError(f"{name}: must be a mapping of source value -> contract value")
            values[name] = {**default, **{str(k): v for k, v in (value or {}).items()}}
        else:
            values[name] = value
    hints = get_type_hints(cls)
    for name, value in values.items():
        allowed = get_args(hints[name]) if get_origin(hints[name]) is Literal else ()
        if allowed and value not in allowed:
            raise ValueError(
                f"{name}: {value!r} is not one of {', '.join(str(a) for a in allowed)}"
            )
    mapping = cls(**values)
    for name, allowed in checks.items():
        for k, v in getattr(mapping, name).items():
            if v is not None and str(v) not in allowed:
                raise ValueError(
                    f"{name}: {k!r} maps to {v!r}, which is not one of {', '.join(allowed)}"
                )
    return mapping


def mapping_from_yaml(
    cls: type[M], path: Path, system: str, checks: Mapping[str, Sequence[str]]
) -> M:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a {system} mapping must be a YAML mapping of fields")
    try:
        return mapping_from_dict(cls, data, system, checks)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
