"""The part every adapter shares: reading a source directory, accounting for every source row,
writing contract files, the rejects and lineage files, and the result.

Source directory: one table per file (``customer.csv``, ``invoice.parquet``) or per folder of
files (``customer/part-0001.parquet``), as connectors and exports land them. Every file is read
as text (Parquet timestamps become ISO 8601 UTC, nested values JSON text) into a DuckDB table
``src_<table>`` with ``_source_file`` (relative to the source directory) and ``_source_row``
(1-based data row of that file). The adapter maps with SQL on these tables.

Accounting: every source row ends with exactly one disposition, recorded in ``_disposition``:

- ``written``: it became (part of) at least one contract row; ``_lineage`` names the contract
  table and key of each row it fed;
- ``rejected``: it could not be mapped (the reason names the column and value); the result is
  not ok, and the user is told what to fix;
- ``excluded``: a documented rule leaves it out on purpose (a deleted object, test-mode data, a
  one-off charge); the reason says which rule.

A source row that no step used is rejected with reason ``not used by any contract row``, so
counts always add up: ``read == written + rejected + excluded`` for every source table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
import polars as pl

from ingestion.contract import ColumnType, TableSchema
from ingestion.rules import _EPOCH_TEXT as EPOCH_TEXT
from ingestion.rules import AMBIGUOUS_EPOCH, NOT_A_TIMESTAMP, timestamp_from_text

SOURCE_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".parquet")
OutputFormat = Literal["csv", "parquet"]
Disposition = Literal["written", "rejected", "excluded"]

#: Where an adapter's own files go inside the landing directory. File names start with ``_``,
#: so ingestion lists them as marker files and never loads or blocks on them.
REPORT_DIR = "_adapters"


class AdapterInputError(ValueError):
    """The source directory cannot be adapted at all (unreadable file, no tables, ...)."""


@dataclass(frozen=True)
class SourceTable:
    name: str
    #: Paths relative to the source directory, sorted.
    files: tuple[str, ...]
    columns: tuple[str, ...]
    rows: int

    @property
    def sql_name(self) -> str:
        return f"src_{self.name}"


@dataclass(frozen=True)
class TableAccount:
    """What happened to the rows of one source table."""

    source_table: str
    files: tuple[str, ...]
    read: int
    written: int
    rejected: int
    excluded: int

    @property
    def balanced(self) -> bool:
        return self.read == self.written + self.rejected + self.excluded


@dataclass(frozen=True)
class AdaptResult:
    system: str
    source: Path
    landing: Path
    #: Which shape the source had, e.g. ``fivetran``, ``airbyte``, ``stripe_export``.
    source_format: str
    accounts: tuple[TableAccount, ...]
    #: ``<system>/<table>`` -> contract rows written.
    contract_rows: dict[str, int]
    files_written: tuple[Path, ...]
    rejects_file: Path
    lineage_file: Path
    warnings: tuple[str, ...] = ()
    #: Adapter-specific facts worth showing (e.g. the price-history method).
    details: dict[str, str] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(a.rejected for a in self.accounts)

    @property
    def ok(self) -> bool:
        """True only when nothing was rejected and every table's counts add up."""
        return self.rejected == 0 and all(a.balanced for a in self.accounts)

    def account(self, source_table: str) -> TableAccount:
        for a in self.accounts:
            if a.source_table == source_table:
                return a
        raise KeyError(f"no source table {source_table!r} in this result")

    def summary(self) -> str:
        lines = [
            f"{self.system} ({self.source_format}) from {self.source} into {self.landing}",
            *(f"  {k}: {v}" for k, v in sorted(self.details.items())),
            "  source table           read  written  rejected  excluded",
        ]
        for a in self.accounts:
            flag = "" if a.balanced else "  COUNTS DO NOT ADD UP"
            lines.append(
                f"  {a.source_table:<20} {a.read:>6} {a.written:>8} {a.rejected:>9}"
                f" {a.excluded:>9}{flag}"
            )
        for table, n in sorted(self.contract_rows.items()):
            lines.append(f"  -> {table}: {n} rows")
        lines += [f"  WARNING: {w}" for w in self.warnings]
        if self.rejected:
            lines.append(
                f"  {self.rejected} source rows were rejected: see {self.rejects_file}"
                " (file, row, reason); fix them at the source or in the mapping and run again."
            )
        return "\n".join(lines)


# --- reading ---------------------------------------------------------------------------------


def _suffix(name: str) -> str | None:
    lowered = name.lower()
    return next(
        (s for s in sorted(SOURCE_SUFFIXES, key=len, reverse=True) if lowered.endswith(s)), None
    )


def _table_files(source: Path) -> dict[str, list[Path]]:
    """Table name -> its files: ``<name>.<ext>`` directly under ``source`` or ``<name>/**``."""
    tables: dict[str, list[Path]] = {}
    for path in sorted(source.iterdir()):
        if path.name.startswith((".", "_")):
            continue
        if path.is_dir():
            files = [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file() and _suffix(p.name) and not p.name.startswith((".", "_"))
            ]
            if files:
                tables.setdefault(path.name.lower(), []).extend(files)
        elif (suffix := _suffix(path.name)) is not None:
            tables.setdefault(path.name[: -len(suffix)].lower(), []).append(path)
    return tables


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text: timestamps ISO 8601 UTC, nested values JSON, booleans true/false."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            exprs.append(col.dt.strftime("%Y-%m-%dT%H:%M:%S%.f").alias(name))
        elif isinstance(dtype, pl.Struct):
            exprs.append(col.struct.json_encode().alias(name))
        elif isinstance(dtype, pl.List | pl.Array):
            exprs.append(
                pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.head(-1).alias(name)
            )
        elif dtype == pl.Boolean:
            exprs.append(
                pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false")).alias(name)
            )
        else:
            exprs.append(col.cast(pl.Utf8).alias(name))
    return frame.select(exprs)


def _read_file(path: Path, relative: str) -> pl.DataFrame:
    try:
        if _suffix(path.name) == ".parquet":
            frame = _as_text(pl.read_parquet(path))
        else:
            frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except Exception as exc:  # polars raises many kinds; the message is what the user needs
        raise AdapterInputError(
            f"{relative}: cannot be read ({type(exc).__name__}: {exc}). Fix or remove the file"
            " and run the adapter again; nothing was written."
        ) from exc
    names: dict[str, str] = {}
    for original in frame.columns:
        normal = original.strip().lstrip("\ufeff").lower()
        if normal in names:
            raise AdapterInputError(
                f"{relative}: columns {names[normal]!r} and {original!r} mean the same column"
                f" {normal!r}; remove one and run again."
            )
        names[normal] = original
    frame = frame.rename({v: k for k, v in names.items()})
    return frame.with_row_index("_source_row", offset=1).with_columns(
        pl.col("_source_row").cast(pl.Int64), pl.lit(relative).alias("_source_file")
    )


def read_source_dir(con: duckdb.DuckDBPyConnection, source: Path) -> dict[str, SourceTable]:
    """Load every table of ``source`` into ``src_<table>`` (all text) and return them by name."""
    if not source.is_dir():
        raise AdapterInputError(
            f"{source}: the source directory does not exist; pass the folder holding the"
            " connector's or export's files."
        )
    tables: dict[str, SourceTable] = {}
    for name, paths in _table_files(source).items():
        relatives = [p.relative_to(source).as_posix() for p in paths]
        frames = [_read_file(p, r) for p, r in zip(paths, relatives, strict=True)]
        frame = pl.concat(frames, how="diagonal") if len(frames) > 1 else frames[0]
        sql_name = f"src_{name}"
        con.register("_incoming", frame.to_arrow())
        con.execute(f'CREATE OR REPLACE TABLE "{sql_name}" AS SELECT * FROM _incoming')
        con.unregister("_incoming")
        columns = tuple(c for c in frame.columns if not c.startswith("_source_"))
        tables[name] = SourceTable(name, tuple(relatives), columns, frame.height)
    if not tables:
        raise AdapterInputError(
            f"{source}: no table files (.csv, .csv.gz, .parquet) found; nothing to adapt."
        )
    return tables


# --- SQL helpers -------------------------------------------------------------------------------

#: Text -> naive UTC TIMESTAMP, or NULL when blank or not a timestamp: the contract's own rule
#: (:func:`ingestion.rules.timestamp_from_text`), so an adapter writes exactly the values
#: ingestion would load and refuses the ones it would quarantine: ISO 8601 with or without an
#: offset (no offset = UTC; ``T`` or a space, as Fivetran writes them), or an epoch number whose
#: magnitude names its unit (seconds, milliseconds, ...; ``20240301`` or ``0`` are ambiguous and
#: refused). Needs the session time zone UTC (:func:`start_accounting` sets it).
_CSW_TS = (
    "CREATE OR REPLACE MACRO csw_ts(x) AS CASE WHEN csw_blank(x) THEN NULL"
    f" ELSE {timestamp_from_text('trim(x)')} END;"
)
_MACROS = (
    r"""
CREATE OR REPLACE MACRO csw_blank(x) AS x IS NULL OR trim(x) = '';
"""
    + _CSW_TS
    + r"""
CREATE OR REPLACE MACRO csw_bool(x) AS CASE
    WHEN lower(trim(x)) IN ('true', 't', '1', 'yes') THEN true
    WHEN lower(trim(x)) IN ('false', 'f', '0', 'no') THEN false
END;
CREATE OR REPLACE MACRO csw_dec(x) AS try_cast(trim(x) AS DECIMAL(38, 12));
CREATE OR REPLACE MACRO csw_int(x) AS try_cast(try_cast(trim(x) AS DECIMAL(38, 0)) AS BIGINT);
"""
)


def is_epoch_number(expr: str) -> str:
    """SQL: the text is a plain number, read as an epoch (and refused when its size is
    ambiguous)."""
    return f"regexp_full_match(trim({expr}), {quote(EPOCH_TEXT)})"


def timestamp_reason(expr: str) -> str:
    """SQL: why the non-blank text ``expr`` is not a timestamp, in the contract's words (an
    epoch number of an ambiguous size, or not ISO 8601 at all)."""
    return (
        f"CASE WHEN {is_epoch_number(expr)} THEN {quote(AMBIGUOUS_EPOCH)}"
        f" ELSE {quote(NOT_A_TIMESTAMP)} END"
    )


def bad_timestamp(column: str, expr: str | None = None) -> str:
    """A CASE branch rejecting a non-blank value that is not a timestamp."""
    e = expr or column
    return (
        f"WHEN NOT csw_blank({e}) AND csw_ts({e}) IS NULL THEN '{column}: ' || {e}"
        f" || CASE WHEN {is_epoch_number(e)} THEN {quote(AMBIGUOUS_EPOCH)}"
        " ELSE ' is not a timestamp (epoch seconds or ISO 8601)' END"
    )


def bad_number(column: str, expr: str | None = None) -> str:
    e = expr or column
    return (
        f"WHEN NOT csw_blank({e}) AND csw_dec({e}) IS NULL THEN"
        f" '{column}: ' || {e} || ' is not a number'"
    )


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --- accounting --------------------------------------------------------------------------------


def start_accounting(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET TimeZone = 'UTC'")
    con.execute(_MACROS)
    con.execute(
        "CREATE OR REPLACE TABLE _disposition (source_table VARCHAR, source_file VARCHAR,"
        " source_row BIGINT, source_id VARCHAR, disposition VARCHAR, reason VARCHAR)"
    )
    con.execute(
        "CREATE OR REPLACE TABLE _lineage (contract_table VARCHAR, contract_key VARCHAR,"
        " source_table VARCHAR, source_file VARCHAR, source_row BIGINT, source_id VARCHAR)"
    )


def record(con: duckdb.DuckDBPyConnection, source_table: str, select_sql: str) -> None:
    """Record rejected/excluded rows: ``select_sql`` yields (source_file, source_row, source_id,
    disposition, reason). A row keeps the first disposition it was given."""
    con.execute(
        f"""
        INSERT INTO _disposition
        SELECT DISTINCT ON (s.source_file, s.source_row)
            {quote(source_table)}, s.source_file, s.source_row, s.source_id, s.disposition, s.reason
        FROM ({select_sql}) AS s(source_file, source_row, source_id, disposition, reason)
        WHERE NOT EXISTS (
            SELECT 1 FROM _disposition d
            WHERE d.source_table = {quote(source_table)}
              AND d.source_file = s.source_file AND d.source_row = s.source_row)
        ORDER BY s.source_file, s.source_row
        """
    )


def record_lineage(
    con: duckdb.DuckDBPyConnection, contract_table: str, source_table: str, select_sql: str
) -> None:
    """``select_sql`` yields (contract_key, source_file, source_row, source_id): the source rows
    each written contract row came from. Those rows are ``written`` unless already decided."""
    con.execute(
        f"""
        INSERT INTO _lineage
        SELECT {quote(contract_table)}, s.k, {quote(source_table)}, s.f, s.r, s.i
        FROM ({select_sql}) AS s(k, f, r, i)
        """
    )
    record(
        con,
        source_table,
        f"""SELECT source_file, source_row, source_id, 'written', NULL FROM _lineage
            WHERE contract_table = {quote(contract_table)}
              AND source_table = {quote(source_table)}""",
    )


def close_accounting(
    con: duckdb.DuckDBPyConnection, tables: Iterable[SourceTable]
) -> tuple[TableAccount, ...]:
    """Reject every row no step decided on, then count per source table."""
    accounts = []
    for t in tables:
        record(
            con,
            t.name,
            f"""SELECT _source_file, _source_row, NULL, 'rejected',
                       'not used by any contract row (the adapter has no rule for it)'
                FROM "{t.sql_name}" """,
        )
        counts = dict(
            con.execute(
                "SELECT disposition, count(*) FROM _disposition WHERE source_table = ?"
                " GROUP BY ALL",
                [t.name],
            ).fetchall()
        )
        accounts.append(
            TableAccount(
                t.name,
                t.files,
                read=t.rows,
                written=counts.get("written", 0),
                rejected=counts.get("rejected", 0),
                excluded=counts.get("excluded", 0),
            )
        )
    return tuple(accounts)


# --- writing -----------------------------------------------------------------------------------


def _csv_value(name: str, type_: ColumnType) -> str:
    col = f'"{name}"'
    if type_ is ColumnType.TIMESTAMP:
        return (
            f"CASE WHEN microsecond({col}) % 1000000 = 0 THEN strftime({col}, '%Y-%m-%dT%H:%M:%SZ')"
            f" ELSE strftime({col}, '%Y-%m-%dT%H:%M:%S.%fZ') END AS {col}"
        )
    if type_ is ColumnType.DATE:
        return f"strftime({col}, '%Y-%m-%d') AS {col}"
    return f"CAST({col} AS VARCHAR) AS {col}"


def write_contract_table(
    con: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    relation: str,
    landing: Path,
    stem: str,
    output_format: OutputFormat,
) -> tuple[Path, int]:
    """Write ``relation`` (holding the contract columns, typed) as ``<landing>/<system>/<table>/
    <stem>.<csv|parquet>`` in contract column order, sorted by the table's key."""
    folder = landing / schema.system / schema.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.{output_format}"
    order = ", ".join(f'"{k}"' for k in schema.key)
    if output_format == "csv":
        select = ", ".join(_csv_value(c.name, c.type) for c in schema.columns)
        options = "FORMAT csv, HEADER true"
    else:
        select = ", ".join(
            f'CAST("{c.name}" AS {c.type.duckdb_type}) AS "{c.name}"' for c in schema.columns
        )
        options = "FORMAT parquet"
    con.execute(f"COPY (SELECT {select} FROM {relation} ORDER BY {order}) TO '{path}' ({options})")
    rows = con.execute(f"SELECT count(*) FROM {relation}").fetchone()
    return path, int(rows[0]) if rows else 0


def write_reports(con: duckdb.DuckDBPyConnection, landing: Path, system: str) -> tuple[Path, Path]:
    """``_rejects.csv`` (rejected and excluded rows with reasons) and ``_lineage.csv`` (source
    row -> contract row) under ``<landing>/_adapters/<system>/``."""
    folder = landing / REPORT_DIR / system
    folder.mkdir(parents=True, exist_ok=True)
    rejects, lineage = folder / "_rejects.csv", folder / "_lineage.csv"
    con.execute(
        f"""COPY (SELECT source_table, source_file, source_row, source_id, disposition, reason
                  FROM _disposition WHERE disposition <> 'written'
                  ORDER BY disposition DESC, source_table, source_file, source_row)
            TO '{rejects}' (FORMAT csv, HEADER true)"""
    )
    con.execute(
        f"""COPY (SELECT contract_table, contract_key, source_table, source_file, source_row,
                         source_id
                  FROM _lineage ORDER BY ALL)
            TO '{lineage}' (FORMAT csv, HEADER true)"""
    )
    return rejects, lineage


def write_result_json(result: AdaptResult) -> Path:
    path = result.rejects_file.parent / "_result.json"
    payload = {
        "system": result.system,
        "source": str(result.source),
        "source_format": result.source_format,
        "ok": result.ok,
        "details": result.details,
        "warnings": list(result.warnings),
        "contract_rows": result.contract_rows,
        "accounts": [a.__dict__ | {"files": list(a.files)} for a in result.accounts],
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path
