"""The contract's rules compiled to DuckDB SQL: the fast path that splits a file's rows.

:func:`checked_rows_sql` turns a :class:`~ingestion.readers.FileSource` (text columns) into one
set-based SELECT with, per row:

* every contract column typed per ``ColumnType.duckdb_type`` (``TRY_CAST`` of the text; enums
  lower-cased, currencies upper-cased, booleans from true/false/1/0/yes/no in any case, JSON
  objects validated; dates and timestamps by :func:`timestamp_from_text`: ISO 8601 with or
  without an offset, or an epoch number, as naive UTC, a date column taking the UTC date), and
* ``_violations``: a list of ``{rule, column_name, reason}`` structs, empty for a good row.

Rules, in the order they are reported:

``required``               a required column is empty
``type``                   the text does not parse as the column's type
``accepted_values``        an enum value outside the contract's list (compared lower-case)
``currency``               not an ISO 4217 code
``min_value``/``max_value`` outside the contract's range
``<row rule name>``        a contract row rule (a DuckDB predicate on the typed columns) is false
``duplicate_key_in_file``  the key repeats another valid row of the same file. Entity tables
                           (a ``version_column``, ``updated_at``) keep the row with the latest
                           ``updated_at`` (equal: the later row of the file); event tables keep
                           the first row. The other rows are quarantined.

Key columns (``TableSchema.key``) are trimmed of surrounding whitespace before use, and a blank
key breaks ``required`` whether or not the contract marks the column required.

``_raw_values`` holds the row's original text as a JSON object, for quarantined rows only.
No Python touches the rows: DuckDB evaluates the whole statement, in parallel.
"""

from __future__ import annotations

import re

from ingestion.contract import ISO_4217_CURRENCIES, Column, ColumnType, RowRule, TableSchema
from ingestion.readers import EPOCH_TYPES, FileSource
from ingestion.sql import ident, literal

#: Prefix of the original-text columns inside the generated statement.
TEXT_PREFIX = "__text__"

DUPLICATE_KEY_RULE = "duplicate_key_in_file"

_INTEGER_TEXT = r"[+-]?[0-9]+(\.0*)?"
_TRUE_TEXT = ("true", "1", "yes")
_FALSE_TEXT = ("false", "0", "no")
_SHOWN_CHARS = 120

_TYPE_LABELS: dict[ColumnType, str] = {
    ColumnType.STRING: "text",
    ColumnType.INTEGER: "a whole number",
    ColumnType.MONEY: "a decimal amount",
    ColumnType.PERCENT: "a decimal percentage",
    ColumnType.RATE: "a decimal rate",
    ColumnType.BOOLEAN: "a boolean (true/false, 1/0, yes/no)",
    ColumnType.JSON: "a JSON object",
}


_TEMPORAL = (ColumnType.DATE, ColumnType.TIMESTAMP)

#: The ISO 8601 shapes a date or timestamp column reads: a date, optionally followed by ``T`` or
#: a space and HH:MM, HH:MM:SS or HH:MM:SS.f (1 to 9 digits), optionally followed by ``Z`` or
#: an offset (+HH:MM, +HHMM or +HH). DuckDB's own cast then reads the value (and refuses
#: 2024-02-30); on its own it would also take ``infinity``, ``epoch``, ``2024/03/01``,
#: ``2024 03 01`` and zone names (``10:00:00 EST``), which the contract does not.
ISO_8601_TEXT = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?"
)
_EPOCH_TEXT = r"[0-9]+(\.[0-9]{1,9})?"
#: Epoch numbers by magnitude: (lower bound, upper bound, microseconds per unit). Each unit
#: covers 1973-03-03 to 2286-11-20 (9-10 digits seconds, 12-13 milliseconds, 15-16
#: microseconds, 18-19 nanoseconds); the sizes between (and below 100000000) would name two
#: plausible instants (``20240301``: a compact date, or 1970-08-23 in seconds) and are refused.
EPOCH_UNITS: tuple[tuple[int, int, str], ...] = (
    (10**8, 10**10, "1000000"),
    (10**11, 10**13, "1000"),
    (10**14, 10**16, "1"),
    (10**17, 10**19, "0.001"),
)
NOT_A_TIMESTAMP = (
    " is not an ISO 8601 date or timestamp (YYYY-MM-DD[THH:MM:SS[.fff][Z|±HH:MM]])"
    " or epoch seconds/ms/µs/ns"
)
AMBIGUOUS_EPOCH = (
    " is ambiguous as an epoch number: seconds have 9-10 digits, milliseconds 12-13,"
    " microseconds 15-16, nanoseconds 18-19 (1973-03-03 to 2286-11-20);"
    " send an ISO 8601 date or timestamp instead"
)


def text_column(column: str) -> str:
    """The identifier of a column's original text inside :func:`checked_rows_sql`."""
    return ident(TEXT_PREFIX + column)


def _in_list(values: list[str]) -> str:
    return ", ".join(literal(v) for v in values)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


#: Characters trimmed from key values: ``' a1 '`` and ``'a1'`` are the same key.
_KEY_WHITESPACE = " \t\r\n"


def _trimmed_key(text: str) -> str:
    return f"NULLIF(trim({text}, {literal(_KEY_WHITESPACE)}), '')"


def epoch_timestamp(number: str) -> str:
    """SQL: naive UTC TIMESTAMP from an epoch number (a DECIMAL(38,9)), its unit told by its
    magnitude (:data:`EPOCH_UNITS`), truncated to microseconds; NULL when ambiguous."""
    cases = " ".join(
        f"WHEN {number} >= {low} AND {number} < {high}"
        f" THEN make_timestamp(CAST(floor({number} * {micros}) AS BIGINT))"
        for low, high, micros in EPOCH_UNITS
    )
    return f"CASE {cases} END"


def timestamp_from_text(text: str) -> str:
    """SQL: naive UTC TIMESTAMP from trimmed text, NULL when it is neither ISO 8601
    (:data:`ISO_8601_TEXT`) nor an epoch number of an unambiguous magnitude.

    An offset is converted to UTC; without one (or with ``Z``) the time is UTC: the cast reads
    it in the session's time zone, which :func:`ingestion.loader.prepare_connection` sets to
    UTC. Digits past microseconds are dropped (DuckDB's cast truncates: ``.9999999`` is
    ``.999999``). The epoch pattern is tried only on the rows that are not ISO 8601.
    """
    iso = f"timezone('UTC', TRY_CAST({text} AS TIMESTAMPTZ))"
    number = f"TRY_CAST({text} AS DECIMAL(38,9))"
    return (
        f"CASE WHEN regexp_full_match({text}, {literal(ISO_8601_TEXT)}) THEN {iso}"
        f" WHEN regexp_full_match({text}, {literal(_EPOCH_TEXT)})"
        f" THEN {epoch_timestamp(number)} END"
    )


def _floor_div(number: str, divisor: int) -> str:
    return f"({number} // {divisor} - CASE WHEN {number} % {divisor} < 0 THEN 1 ELSE 0 END)"


def _native_temporal(column: Column, value: str, native_type: str) -> str:
    """SQL: a Parquet timestamp, date or integer as the contract's DATE or TIMESTAMP.

    A time zone is converted to UTC; nanoseconds are truncated to microseconds (DuckDB's cast
    rounds them, unlike its text parsing); a date column takes the UTC date; integers are epoch
    numbers (:func:`epoch_timestamp`)."""
    if native_type in EPOCH_TYPES:
        timestamp = epoch_timestamp(f"CAST({value} AS DECIMAL(38,9))")
    elif native_type in ("TIMESTAMP_NS", "TIMESTAMPTZ_NS"):
        timestamp = f"make_timestamp({_floor_div(f'epoch_ns({value})', 1000)})"
    elif native_type == "TIMESTAMP WITH TIME ZONE":
        timestamp = f"timezone('UTC', {value})"
    else:  # TIMESTAMP or DATE: a plain cast, midnight for a date, the date of a timestamp
        return f"CAST({value} AS {column.type.duckdb_type})"
    return timestamp if column.type is ColumnType.TIMESTAMP else f"CAST({timestamp} AS DATE)"


def native_may_fail(column: Column, native_type: str | None) -> bool:
    """Whether a natively read column can still break the type rule: an epoch integer of an
    ambiguous magnitude."""
    return native_type in EPOCH_TYPES and column.type in _TEMPORAL


def blank(
    column: Column, text: str, native_type: str | None = None, *, is_key: bool = False
) -> str:
    """SQL: the text stands for 'no value' (null, empty or blank; JSON ``null`` for JSON).

    A natively typed column (``native_type``, see :func:`ingestion.readers.native_type_for`)
    is blank when it is NULL. A key column is blank when only whitespace.
    """
    if native_type is not None:
        return f"({text} IS NULL)"
    if is_key:
        return f"({_trimmed_key(text)} IS NULL)"
    if column.type is ColumnType.JSON:
        return f"(NULLIF(trim({text}), '') IS NULL OR trim({text}) = 'null')"
    if column.type is ColumnType.STRING and not (column.accepted_values or column.is_currency):
        return f"({text} IS NULL OR {text} = '')"
    return f"(NULLIF(trim({text}), '') IS NULL)"


def typed_value(
    column: Column, text: str, native_type: str | None = None, *, is_key: bool = False
) -> str:
    """SQL: the column's typed value from its text, NULL when blank or unparseable.

    A natively typed Parquet column (``native_type``) is converted, not parsed: it cannot fail,
    and 150 million timestamps do not go through text and back. A key column's text is trimmed
    of surrounding whitespace first (``is_key``).
    """
    if native_type is not None:
        if column.type in _TEMPORAL:
            return _native_temporal(column, text, native_type)
        return f"CAST({text} AS {column.type.duckdb_type})"
    if is_key:
        text = _trimmed_key(text)
    trimmed = f"NULLIF(trim({text}), '')"
    match column.type:
        case ColumnType.STRING if column.accepted_values:
            return f"lower({trimmed})"
        case ColumnType.STRING if column.is_currency:
            return f"upper({trimmed})"
        case ColumnType.STRING:
            return f"NULLIF({text}, '')"
        case ColumnType.INTEGER:
            return (
                f"CASE WHEN regexp_full_match({trimmed}, {literal(_INTEGER_TEXT)})"
                f" THEN TRY_CAST({trimmed} AS BIGINT) END"
            )
        case ColumnType.DATE:
            return f"CAST({timestamp_from_text(trimmed)} AS DATE)"
        case ColumnType.TIMESTAMP:
            return timestamp_from_text(trimmed)
        case ColumnType.BOOLEAN:
            return (
                f"CASE WHEN lower({trimmed}) IN ({_in_list(list(_TRUE_TEXT))}) THEN true"
                f" WHEN lower({trimmed}) IN ({_in_list(list(_FALSE_TEXT))}) THEN false END"
            )
        case ColumnType.JSON:
            return (
                f"CASE WHEN json_valid({trimmed}) THEN CASE WHEN json_type({trimmed}) = 'OBJECT'"
                f" THEN CAST({trimmed} AS JSON) END END"
            )
        case _:
            return f"TRY_CAST({trimmed} AS {column.type.duckdb_type})"


def _violation(rule: str, column: str, reason_sql: str) -> str:
    return f"{{'rule': {literal(rule)}, 'column_name': {literal(column)}, 'reason': {reason_sql}}}"


def _shown(text: str) -> str:
    """SQL: the original text quoted for a reason message (long values are cut; a natively
    typed Parquet value is shown as text)."""
    return f"'''' || left(CAST({text} AS VARCHAR), {_SHOWN_CHARS}) || ''''"


def _type_reason(column: Column, text: str) -> str:
    """SQL: why the text does not parse as the column's type."""
    if column.type not in _TEMPORAL:
        return f"{_shown(text)} || ' is not {_TYPE_LABELS[column.type]}'"
    number = f"regexp_full_match(trim(CAST({text} AS VARCHAR)), {literal(_EPOCH_TEXT)})"
    return (
        f"{_shown(text)} || CASE WHEN {number} THEN {literal(AMBIGUOUS_EPOCH)}"
        f" ELSE {literal(NOT_A_TIMESTAMP)} END"
    )


def column_violations(
    column: Column, text: str, typed: str, native_type: str | None = None, *, is_key: bool = False
) -> list[str]:
    """SQL expressions, one per rule on ``column``: a violation struct, or NULL when it holds."""
    checks: list[tuple[str, str, str]] = []  # (rule, condition, reason)
    is_blank = blank(column, text, native_type, is_key=is_key)
    if is_key:
        checks.append(("required", is_blank, "'key value is missing or blank'"))
    elif column.required:
        checks.append(("required", is_blank, "'required value is missing'"))
    if column.accepted_values:
        values = list(column.accepted_values)
        checks.append(
            (
                "accepted_values",
                f"{typed} IS NOT NULL AND {typed} NOT IN ({_in_list(values)})",
                f"{_shown(text)} || {literal(' is not one of: ' + ', '.join(values))}",
            )
        )
    elif column.is_currency:
        checks.append(
            (
                "currency",
                f"{typed} IS NOT NULL AND {typed} NOT IN ({_in_list(sorted(ISO_4217_CURRENCIES))})",
                f"{_shown(text)} || ' is not an ISO 4217 currency code'",
            )
        )
    elif column.type is not ColumnType.STRING and (
        native_type is None or native_may_fail(column, native_type)
    ):
        checks.append(("type", f"NOT {is_blank} AND {typed} IS NULL", _type_reason(column, text)))
    if column.min_value is not None:
        bound = _number(column.min_value)
        checks.append(
            (
                "min_value",
                f"{typed} < {bound}",
                f"{_shown(text)} || ' is below the minimum {bound}'",
            )
        )
    if column.max_value is not None:
        bound = _number(column.max_value)
        checks.append(
            (
                "max_value",
                f"{typed} > {bound}",
                f"{_shown(text)} || ' is above the maximum {bound}'",
            )
        )
    return [
        f"CASE WHEN {condition} THEN {_violation(rule, column.name, reason)} END"
        for rule, condition, reason in checks
    ]


def referenced_columns(rule: RowRule, table: TableSchema) -> tuple[str, ...]:
    """Contract columns a row rule's predicate mentions, in contract order."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", rule.predicate_sql))
    return tuple(c for c in table.column_names if c in words)


def row_rule_passes(rule: RowRule) -> str:
    """SQL: the row rule holds. NULL (an input the rule cannot judge) passes: missing or
    unparseable inputs are reported by their own ``required``/``type`` rules."""
    return f"coalesce(({rule.predicate_sql}), true)"


def row_rule_violation(rule: RowRule, table: TableSchema) -> str:
    columns = referenced_columns(rule, table)
    values = " || ', ' || ".join(
        f"{literal(c + '=')} || coalesce(CAST({ident(c)} AS VARCHAR), 'null')" for c in columns
    )
    reason = literal(f"expected {rule.description}")
    if values:
        reason = f"{reason} || ' (' || {values} || ')'"
    return (
        f"CASE WHEN NOT {row_rule_passes(rule)} THEN "
        f"{_violation(rule.name, ', '.join(columns), reason)} END"
    )


def _text_or_null(source: FileSource, column: str) -> str:
    return ident(column) if column in source.columns else "CAST(NULL AS VARCHAR)"


def _typed_columns(table: TableSchema, source: FileSource) -> str:
    return ",\n        ".join(
        typed_value(
            c,
            _text_or_null(source, c.name),
            source.native_types.get(c.name),
            is_key=c.name in table.key,
        )
        + f" AS {ident(c.name)}"
        for c in table.columns
    )


def typed_rows_sql(table: TableSchema, source: FileSource) -> str:
    """``_file_index``, ``_source_row`` and the typed contract columns, no checks: what the load
    inserts once :func:`checked_rows_sql` has said which rows are good."""
    return f"""
SELECT
    _file_index,
    _source_row,
    {_typed_columns(table, source)}
FROM ({source.relation_sql}) AS src"""


def checked_rows_sql(table: TableSchema, source: FileSource) -> str:
    """One SELECT over the source (one file or a batch of files, told apart by ``_file_index``):
    ``_file_index``, ``_source_row``, the typed contract columns, ``_violations``,
    ``_raw_values`` and ``_repeated`` (the key appears more than once in the source: the rows
    where a batch's files may repeat each other's keys).

    The CTEs are inlined (``NOT MATERIALIZED``): a materialised copy of every checked row cost
    more than evaluating the rules again for the few rows whose key repeats.
    """
    texts = ",\n        ".join(
        f"{_text_or_null(source, c.name)} AS {text_column(c.name)}" for c in table.columns
    )
    extra_texts = "".join(
        f",\n        {ident(c)} AS {text_column(c)}"
        for c in source.columns
        if c not in table.column_names
    )
    violations = [
        v
        for c in table.columns
        for v in column_violations(
            c,
            text_column(c.name),
            ident(c.name),
            source.native_types.get(c.name),
            is_key=c.name in table.key,
        )
    ] + [row_rule_violation(r, table) for r in table.row_rules]
    key = [ident(k) for k in table.key]
    key_list = ", ".join(key)
    key_join = " AND ".join(f"c.{k} = d.{k}" for k in key)
    repeated_join = " AND ".join(f"c.{k} = r.{k}" for k in key)
    key_shown = " || ', ' || ".join(
        f"{literal(k + '=')} || CAST(c.{ident(k)} AS VARCHAR)" for k in table.key
    )
    kept_row, kept_columns, duplicate = _kept_row(table, key_shown)
    raw_json = ", ".join(
        f"{literal(c)}, CAST({text_column(c)} AS VARCHAR)" for c in _raw_columns(table, source)
    )
    contract_columns = ", ".join(ident(c) for c in table.column_names)
    return f"""
WITH src AS NOT MATERIALIZED (
    {source.relation_sql}
),
typed AS NOT MATERIALIZED (
    SELECT
        _file_index,
        _source_row,
        {_typed_columns(table, source)},
        {texts}{extra_texts}
    FROM src
),
checked AS NOT MATERIALIZED (
    SELECT *, list_filter([
        {("," + chr(10) + "        ").join(violations)}
    ], lambda v: v IS NOT NULL) AS _row_violations
    FROM typed
),
repeated AS (
    SELECT {key_list} FROM typed GROUP BY {key_list} HAVING count(*) > 1
),
kept AS (
    SELECT c._file_index, {", ".join(f"c.{k}" for k in key)}, {kept_row} AS _kept_row{kept_columns}
    FROM checked AS c
    SEMI JOIN repeated AS r ON {repeated_join}
    WHERE len(c._row_violations) = 0
    GROUP BY ALL
    HAVING count(*) > 1
),
final AS (
    SELECT c.*,
        CASE WHEN c._source_row <> d._kept_row
            THEN list_append(c._row_violations, {duplicate})
            ELSE c._row_violations END AS _violations,
        r.{key[0]} IS NOT NULL AS _repeated
    FROM checked AS c
    LEFT JOIN kept AS d
        ON c._file_index = d._file_index AND {key_join} AND len(c._row_violations) = 0
    LEFT JOIN repeated AS r ON {repeated_join}
)
SELECT
    _file_index,
    _source_row,
    {contract_columns},
    _violations,
    CASE WHEN len(_violations) > 0 THEN CAST(json_object({raw_json}) AS VARCHAR) END
        AS _raw_values,
    _repeated
FROM final"""


def _kept_row(table: TableSchema, key_shown: str) -> tuple[str, str, str]:
    """Which valid row of a repeated key a file keeps, as SQL over ``checked AS c`` grouped by
    file and key: the aggregate giving the kept row, extra aggregates (``, expr AS name``), and
    the violation struct of the other rows (``d`` is the aggregate, ``c`` the row).

    Entity tables keep the latest version (``version_column``; equal versions: the later row),
    as staging picks the latest across files; event tables keep the first row.
    """
    version = table.version_column
    columns = ", ".join(table.key)
    if version is None:
        reason = (
            f"'key ' || {key_shown} || ' already appears at row ' || d._kept_row"
            " || ' of this file; the first valid row is kept'"
        )
        return "min(c._source_row)", "", _violation(DUPLICATE_KEY_RULE, columns, reason)
    v = ident(version)
    reason = (
        f"'key ' || {key_shown} || CASE WHEN d._kept_version > c.{v}"
        f" THEN ' has a newer version at row ' || d._kept_row || ' of this file ({version} '"
        f" || CAST(d._kept_version AS VARCHAR) || ' there, ' || CAST(c.{v} AS VARCHAR)"
        f" || ' here); the row with the latest {version} is kept'"
        " ELSE ' appears again at row ' || d._kept_row || ' of this file with the same"
        f" {version} ' || CAST(c.{v} AS VARCHAR) || '; of equal versions the later row is kept'"
        " END"
    )
    return (
        f"arg_max(c._source_row, (c.{v}, c._source_row))",
        f", max(c.{v}) AS _kept_version",
        _violation(DUPLICATE_KEY_RULE, columns, reason),
    )


def _raw_columns(table: TableSchema, source: FileSource) -> list[str]:
    """The columns shown in ``_raw_values``: what the file has, contract columns first."""
    present = [c for c in table.column_names if c in source.columns]
    return present + [c for c in source.columns if c not in table.column_names]
