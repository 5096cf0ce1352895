"""DuckDB readers, one per file format, that expose a file as rows of text.

Every reader gives the same shape, a :class:`FileSource`: a SQL relation with ``_source_row``
(1-based data row number, header excluded) and one VARCHAR column per column of the file, named
by its normalised header (trimmed, lower-case). Typing happens later, in SQL
(:mod:`ingestion.rules`), so a bad value becomes a quarantined row instead of a failed file.

* CSV (``.csv``, ``.csv.gz``): ``read_csv`` with the header read first and every column declared
  VARCHAR explicitly (no sniffing), comma, RFC 4180 double-quote quoting, strict mode; a UTF-8
  BOM is tolerated. DuckDB reports the line of a malformed row, and that line goes into the
  refusal message.
* Parquet: ``read_parquet`` with ``file_row_number``. A column whose Parquet type already is
  the contract's type (a timestamp for a timestamp, an integer for an integer, ...) is kept
  native (:func:`native_type_for`): it cannot break the type rule and is converted without going
  through text. Other typed columns are cast to text (nested ones through ``to_json``), so they
  are validated by the same rules as CSV.
* JSONL (``.jsonl``, ``.jsonl.gz``, ``.json.gz``): read as lines of text (``read_csv`` with one
  column and no quoting), so every line keeps its physical line number; blank lines are skipped
  and every other line must be one JSON object. Opening the file scans it once: the first line
  that is not a JSON object refuses the file, naming that line, and the keys of every record
  (not a sample) are the file's columns. Values are read as text with
  ``json_extract_string`` (objects and arrays keep their JSON text).

Column names (CSV headers, Parquet columns, JSON keys) are matched to the contract the same way
for every format: trimmed, BOM removed, lower-cased (:func:`normalise_column`); two names of one
file that normalise to the same column refuse the file.

``_source_row`` is the 1-based *data row*: the record number, header and blank lines not
counted (CSV: the N-th record after the header; JSONL: the N-th non-blank line; Parquet: the
N-th row). A file that cannot be parsed is refused with the physical *line* of the
(decompressed) file where parsing failed.

Every relation has ``_file_index`` (0 for one file). :func:`batch_source` reads many files of
one table and format in one scan (``read_parquet``/``read_json`` over the list, ``file_index``
telling the files apart): the large events table loads a day's worth of files, or a year's, in
a handful of statements instead of one transaction per file.

Nothing here loads rows into Python: the relation is streamed by DuckDB.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import duckdb

from ingestion.contract import ColumnType
from ingestion.landing import LandingFile
from ingestion.sql import ident, literal

#: DuckDB errors that mean "this file cannot be read as its format says". Anything else (out of
#: memory, interrupted, a binder error in generated SQL) is a crash, not a property of the file.
READ_ERRORS: tuple[type[Exception], ...] = (
    duckdb.InvalidInputException,
    duckdb.IOException,
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
    duckdb.NotImplementedException,
    duckdb.InvalidTypeException,
    duckdb.SerializationException,
)

RESEND_ADVICE = (
    "Fix the extract and re-send it under the same name: a changed file is loaded as a new version."
)


_BOM = "\ufeff"
#: DuckDB appends the failing statement (``LINE 1: ...`` and a caret line) to some errors.
_SQL_CONTEXT = re.compile(r"^(LINE \d+:|\^+$)")
_NESTED_TYPE = re.compile(r"^(STRUCT|MAP|UNION)\(|\]$|^JSON$", re.IGNORECASE)


class UnreadableFileError(Exception):
    """The file cannot be read; the message names the file and the problem."""


def is_read_error(exc: BaseException) -> bool:
    """Whether a DuckDB error means the file cannot be read: one of :data:`READ_ERRORS`, or a
    bare ``duckdb.Error``, which DuckDB raises for a Parquet page or footer it cannot decode
    (``invalid TType``). Catalog, binder, parser and internal errors are bugs, not files."""
    return isinstance(exc, READ_ERRORS) or type(exc) is duckdb.Error


@dataclass(frozen=True)
class FileSource:
    """A readable extract file as a SQL relation of text columns."""

    file: LandingFile
    #: Normalised column names the file declares (CSV header, Parquet schema, JSON keys seen in
    #: DuckDB's sample), in file order. Required-column checks use these.
    declared: tuple[str, ...]
    #: Columns of :attr:`relation_sql` besides ``_source_row``: ``declared`` plus, for JSONL,
    #: contract columns outside the sample (they may appear in later records).
    columns: tuple[str, ...]
    #: ``SELECT _file_index, _source_row, <columns> FROM <reader>``; every column is VARCHAR
    #: except those in :attr:`native_types`.
    relation_sql: str
    #: Columns kept in their Parquet type because it is the contract's (column -> DuckDB type).
    native_types: Mapping[str, str] = field(default_factory=dict)
    #: Parquet only: the column list of :attr:`relation_sql` (names and casts), which files
    #: must share to be read together by :func:`batch_source`.
    parquet_select: str | None = None


def normalise_column(name: str) -> str:
    """Header names are matched to the contract trimmed and lower-cased."""
    return name.replace(_BOM, "").strip().lower()


def describe_read_error(file: LandingFile, exc: BaseException) -> str:
    """A one-paragraph refusal message from a DuckDB (or Python) read error.

    DuckDB's CSV errors carry the line number and the original line followed by generic advice
    and a dump of the reader options; keep the first part only, and name the file by its
    landing-relative path.
    """
    text = str(exc).replace(str(file.path), file.relative).strip()
    for marker in ("\nPossible fixes", "\nPossible Solution", "\n\n  file =", "\n  file ="):
        text = text.split(marker, 1)[0]
    lines = [line.strip() for line in text.splitlines()]
    text = " / ".join(line for line in lines if line and not _SQL_CONTEXT.match(line))
    if len(text) > 600:
        text = text[:600] + " ..."
    kind = (file.file_format or "file").upper()
    return f"{file.relative}: cannot be read as {kind}: {text}. {RESEND_ADVICE}"


def _checked_columns(
    file: LandingFile, names: Sequence[str], what: str = "columns"
) -> tuple[str, ...]:
    """The file's column names normalised; refuses a file without names, with an empty name, or
    with two names (``what``: columns or keys) that normalise to the same column."""
    columns = tuple(normalise_column(n) for n in names)
    if not columns or all(c == "" for c in columns):
        raise UnreadableFileError(
            f"{file.relative}: has no {what} (no header row, no keys). {RESEND_ADVICE}"
        )
    first: dict[str, str] = {}
    for position, (name, column) in enumerate(zip(names, columns, strict=True), start=1):
        if column == "":
            raise UnreadableFileError(
                f"{file.relative}: column {position} has an empty name. {RESEND_ADVICE}"
            )
        if column in first:
            raise UnreadableFileError(
                f"{file.relative}: {what} {first[column]!r} and {name!r} both name column"
                f" {column} (names are matched to the contract trimmed and case-insensitively);"
                f" keep one of them. {RESEND_ADVICE}"
            )
        first[column] = name
    return columns


def _csv_header(file: LandingFile) -> list[str]:
    """The header record, parsed with Python's csv module (RFC 4180, BOM stripped)."""
    opener = gzip.open if file.name.lower().endswith(".gz") else open
    try:
        with opener(file.path, "rb") as raw:
            # Only the header matters here; DuckDB checks the encoding of every line (with line
            # numbers) when it reads the file, so undecodable bytes are not an error yet.
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
            header = next(csv.reader(text, delimiter=",", quotechar='"', strict=True), None)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableFileError(describe_read_error(file, exc)) from exc
    if not header:
        raise UnreadableFileError(f"{file.relative}: has no header row. {RESEND_ADVICE}")
    return header


def _csv_source(file: LandingFile) -> FileSource:
    columns = _checked_columns(file, _csv_header(file))
    declared = ", ".join(f"{literal(c)}: 'VARCHAR'" for c in columns)
    reader = (
        f"read_csv({literal(str(file.path))}, header = true, auto_detect = false,"
        f" columns = {{{declared}}}, delim = ',', quote = '\"', escape = '\"',"
        " strict_mode = true, null_padding = false, encoding = 'utf-8')"
    )
    select = ", ".join(ident(c) for c in columns)
    return FileSource(
        file,
        columns,
        columns,
        f"SELECT 0 AS _file_index, row_number() OVER () AS _source_row, {select} FROM {reader}",
    )


def _fetch(conn: duckdb.DuckDBPyConnection, file: LandingFile, sql: str) -> list[tuple]:
    """Rows of a query that reads the file; a read error refuses the file by name."""
    try:
        return conn.execute(sql).fetchall()
    except duckdb.Error as exc:
        if not is_read_error(exc):
            raise
        raise UnreadableFileError(describe_read_error(file, exc)) from exc


def _describe(conn: duckdb.DuckDBPyConnection, file: LandingFile, reader: str) -> list[tuple]:
    return _fetch(conn, file, f"DESCRIBE SELECT * FROM {reader}")


#: DuckDB types of Parquet integer columns.
INTEGER_TYPES: frozenset[str] = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
)
#: Integer types a date or timestamp column reads as epoch numbers (UBIGINT too: all fit).
EPOCH_TYPES: frozenset[str] = INTEGER_TYPES | {"UBIGINT"}
#: DuckDB types of Parquet timestamps: milli- and microsecond units read as ``TIMESTAMP``,
#: nanoseconds as ``TIMESTAMP_NS``; with a time zone (``isAdjustedToUTC``) the ``TZ`` kinds.
TIMESTAMP_TYPES: frozenset[str] = frozenset(
    {"TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMPTZ_NS"}
)

#: Parquet types read natively for a contract column of the given type. A date column takes a
#: timestamp (its UTC date) and a timestamp column a date (midnight UTC); both take an integer
#: as an epoch number (:func:`ingestion.rules.typed_value`; a number of ambiguous magnitude is
#: quarantined, so for these the type rule still applies).
_NATIVE_TYPES: dict[ColumnType, frozenset[str]] = {
    ColumnType.TIMESTAMP: TIMESTAMP_TYPES | {"DATE"} | EPOCH_TYPES,
    ColumnType.DATE: TIMESTAMP_TYPES | {"DATE"} | EPOCH_TYPES,
    ColumnType.INTEGER: INTEGER_TYPES,
    ColumnType.BOOLEAN: frozenset({"BOOLEAN"}),
}


def native_type_for(file: LandingFile, column: str, duckdb_type: str) -> str | None:
    """The Parquet type when the contract column's type converts from it without text, else
    None (read as text).

    Strings stay on the text path (enums are lower-cased, currencies upper-cased there), and so
    do decimals and floats (the money rules parse their text; a float epoch is rare).
    """
    contract = {c.name: c for c in file.table.columns}.get(column)
    if contract is None:
        return None
    kind = duckdb_type.upper()
    return kind if kind in _NATIVE_TYPES.get(contract.type, frozenset()) else None


def _as_text(column: str, duckdb_type: str) -> str:
    if duckdb_type.upper() == "VARCHAR":
        return ident(column)
    if _NESTED_TYPE.search(duckdb_type):
        return f"CAST(to_json({ident(column)}) AS VARCHAR)"
    return f"CAST({ident(column)} AS VARCHAR)"


def _parquet_source(conn: duckdb.DuckDBPyConnection, file: LandingFile) -> FileSource:
    described = [
        (row[0], row[1])
        for row in _describe(conn, file, f"read_parquet({literal(str(file.path))})")
    ]
    columns = _checked_columns(file, [name for name, _ in described])
    native = {
        norm: kind
        for (_, type_), norm in zip(described, columns, strict=True)
        if (kind := native_type_for(file, norm, type_)) is not None
    }
    select = ", ".join(
        f"{ident(name) if norm in native else _as_text(name, type_)} AS {ident(norm)}"
        for (name, type_), norm in zip(described, columns, strict=True)
    )
    return FileSource(file, columns, columns, _parquet_relation([file], select), native, select)


def _parquet_relation(files: Sequence[LandingFile], select: str) -> str:
    paths = ", ".join(literal(str(f.path)) for f in files)
    index = "CAST(file_index AS INTEGER)" if len(files) > 1 else "0"
    return (
        f"SELECT {index} AS _file_index, file_row_number + 1 AS _source_row, {select}"
        f" FROM read_parquet([{paths}], file_row_number = true)"
    )


def _json_records(file: LandingFile) -> str:
    """The file's non-blank lines: ``_line`` (physical, 1-based), ``_source_row`` (data row) and
    ``line``. One VARCHAR column per line: no delimiter or quote applies (a raw control
    character, which JSON does not allow, may cut a line; the cut line is then invalid JSON)."""
    lines = (
        f"SELECT row_number() OVER () AS _line, line FROM read_csv({literal(str(file.path))},"
        " header = false, auto_detect = false, columns = {'line': 'VARCHAR'},"
        " delim = E'\\x01', quote = '', escape = '', strict_mode = false, encoding = 'utf-8')"
    )
    return (
        "SELECT _line, row_number() OVER (ORDER BY _line) AS _source_row, line"
        f" FROM ({lines}) WHERE NULLIF(trim(line, ' \t\r'), '') IS NOT NULL"
    )


def _json_pointer(key: str) -> str:
    """RFC 6901 pointer to a top-level key (``json_extract_string`` takes pointers)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _json_source(conn: duckdb.DuckDBPyConnection, file: LandingFile) -> FileSource:
    records = _json_records(file)
    bad = _fetch(
        conn,
        file,
        f"SELECT _line, left(line, 120), json_valid(line) FROM ({records})"
        " WHERE NOT coalesce(CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' END,"
        " false) ORDER BY _line LIMIT 1",
    )
    if bad:
        line, text, valid = bad[0]
        problem = "is not a JSON object" if valid else "is not valid JSON"
        raise UnreadableFileError(
            f"{file.relative}: line {line} {problem} (JSONL needs one object per line): "
            f"{text!r}. {RESEND_ADVICE}"
        )
    keys = [
        row[0]
        for row in _fetch(
            conn,
            file,
            "SELECT k FROM (SELECT _line, unnest(json_keys(line)) AS k,"
            f" generate_subscripts(json_keys(line), 1) AS i FROM ({records}))"
            " GROUP BY k ORDER BY min((_line, i))",
        )
    ]
    columns = _checked_columns(file, keys, "keys")
    pointers = ", ".join(literal(_json_pointer(k)) for k in keys)
    select = ", ".join(f"_v[{i}] AS {ident(c)}" for i, c in enumerate(columns, start=1))
    return FileSource(
        file,
        columns,
        columns,
        f"SELECT 0 AS _file_index, _source_row, {select} FROM (SELECT _source_row,"
        f" json_extract_string(line, [{pointers}]) AS _v FROM ({records}))",
    )


def open_source(conn: duckdb.DuckDBPyConnection, file: LandingFile) -> FileSource:
    """The file as a text relation; raises :class:`UnreadableFileError` if it cannot be opened.

    Only the header (CSV) or the schema (Parquet, a sample for JSONL) is read here; errors
    further into the file surface when the relation is scanned, as the same DuckDB errors.
    """
    if file.file_format is None:
        raise UnreadableFileError(
            f"{file.relative}: unsupported file type; extracts must end in"
            " .csv, .csv.gz, .parquet, .jsonl, .jsonl.gz or .json.gz"
        )
    if file.size == 0:
        raise UnreadableFileError(
            f"{file.relative}: the file is empty (0 bytes), not even a header;"
            " re-send the extract (a header-only CSV is how to say 'no rows')"
        )
    if file.file_format == "csv":
        return _csv_source(file)
    if file.file_format == "parquet":
        return _parquet_source(conn, file)
    return _json_source(conn, file)


def batch_key(source: FileSource) -> tuple[object, ...] | None:
    """Parquet sources with the same key can be read by one :func:`batch_source`; None: the file
    is read alone (CSV and JSONL number their rows by scan order, which holds for one file only).
    """
    if source.parquet_select is None:
        return None
    return (source.parquet_select, tuple(sorted(source.native_types.items())))


def batch_source(sources: Sequence[FileSource]) -> FileSource:
    """One relation over Parquet files that share a :func:`batch_key`; ``_file_index`` is the
    position in ``sources``. Its ``file`` is the first file's: a read error in a batch is
    attributed by loading the batch's files one by one."""
    first = sources[0]
    if len(sources) == 1:
        return first
    if first.parquet_select is None or any(batch_key(s) != batch_key(first) for s in sources):
        raise ValueError("batch_source needs Parquet sources with the same batch_key")
    relation = _parquet_relation([s.file for s in sources], first.parquet_select)
    return FileSource(
        first.file,
        first.declared,
        first.columns,
        relation,
        first.native_types,
        first.parquet_select,
    )
