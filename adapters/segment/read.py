"""Reading Segment's two delivery forms into one table of calls, set-based in DuckDB.

``calls`` has one row per source row (a line of a JSON file, a row of a warehouse table):
``source_table`` (``tracks``, ``identifies``, ``groups``, ``pages``, ``screens``, ``aliases``,
``invalid_lines``), ``_source_file`` (relative to the source directory), ``_source_row``,
``message_id``, ``call_type``, ``event_name`` (already cased and renamed by the mapping),
``user_id``, ``anonymous_id``, ``group_id``, the four timestamps as text, ``ctx_group_id``,
``properties`` (JSON object text or NULL), ``bad`` (why the row cannot be read at all) and the
traits the mapping asks for (``t_account``, ``t_role``, ``t_created``, ``t_deprov``).

- ``s3_json``: the S3 / file destination: gzipped newline-delimited JSON, one call per line,
  under any folders (``segment-logs/<source-id>/<received-day>/<file>.gz``). Lines are read as
  text (DuckDB ``read_csv`` with one column, so a line that is not JSON is a row with a reason,
  not a failed read, and each line keeps its number) and parsed once with
  ``json_extract_string`` over a list of paths.
- ``warehouse``: Segment's warehouse tables exported as files (``tracks``, ``identifies``,
  ``groups``, one table per event with the event's properties as snake_cased columns), one table
  per file or folder as ``.csv``/``.csv.gz``/``.parquet``, read with ``read_parquet`` /
  ``read_csv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from adapters.core import AdapterInputError, _table_files, quote
from adapters.segment.mapping import SegmentMapping, camel_case, snake_case

JSON_SUFFIXES: tuple[str, ...] = (".gz", ".json", ".jsonl", ".ndjson")
CALL_TABLES: dict[str, str] = {
    "track": "tracks",
    "identify": "identifies",
    "group": "groups",
    "page": "pages",
    "screen": "screens",
    "alias": "aliases",
}
#: Warehouse tables that are not per-event tables.
NOT_EVENT_TABLES: frozenset[str] = frozenset(
    {"tracks", "identifies", "groups", "pages", "screens", "aliases", "users", "accounts"}
)
#: Columns every warehouse track/event table has; the rest of an event table are properties.
STANDARD_COLUMNS: frozenset[str] = frozenset(
    {
        "id",
        "user_id",
        "anonymous_id",
        "event",
        "event_text",
        "timestamp",
        "original_timestamp",
        "sent_at",
        "received_at",
        "uuid",
        "uuid_ts",
        "loaded_at",
        "channel",
        "_source_file",
        "_source_row",
    }
)
CALL_COLUMNS: tuple[str, ...] = (
    "source_table",
    "_source_file",
    "_source_row",
    "message_id",
    "call_type",
    "event_raw",
    "user_id",
    "anonymous_id",
    "group_id",
    "ts",
    "original_ts",
    "sent_at",
    "received_at",
    "ctx_group_id",
    "properties",
    "bad",
    "t_account",
    "t_role",
    "t_created",
    "t_deprov",
)


def _is_json_file(path: Path) -> bool:
    return (
        path.is_file()
        and path.name.lower().endswith(JSON_SUFFIXES)
        and not (path.name.lower().endswith((".csv.gz", ".parquet")))
    )


def detect_form(source: Path) -> str:
    if not source.is_dir():
        raise AdapterInputError(
            f"{source}: the source directory does not exist; pass the folder holding Segment's"
            " S3 files (segment-logs/...) or its warehouse tables (tracks, identifies, ...)."
        )
    tables = set(_table_files(source))
    json_files = [p for p in source.rglob("*") if _is_json_file(p) and not _hidden(p, source)]
    if tables & {"tracks", "identifies", "groups"}:
        if json_files:
            raise AdapterInputError(
                f"{source}: holds both warehouse tables ({', '.join(sorted(tables))}) and JSON"
                f" files ({json_files[0].relative_to(source)}, ...); adapt one form per run."
            )
        return "warehouse"
    if json_files:
        return "s3_json"
    raise AdapterInputError(
        f"{source}: neither Segment JSON files (.gz, .json, .jsonl) nor warehouse tables"
        " (tracks, identifies, groups as .csv/.parquet) found; nothing to adapt."
    )


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith((".", "_")) for part in path.relative_to(root).parts)


def _json_path(name: str) -> str:
    return "$." + ".".join('"' + p.replace('"', '\\"') + '"' for p in name.split("."))


def _trait_paths(name: str) -> list[str]:
    if "." in name:
        return [_json_path("traits." + name)]
    variants = dict.fromkeys([name, camel_case(name), snake_case(name)])
    return [_json_path("traits." + v) for v in variants]


def _coalesce(exprs: Sequence[str]) -> str:
    return exprs[0] if len(exprs) == 1 else f"coalesce({', '.join(exprs)})"


def read_json_calls(con: duckdb.DuckDBPyConnection, source: Path, m: SegmentMapping) -> None:
    files = sorted(p for p in source.rglob("*") if _is_json_file(p) and not _hidden(p, source))
    listing = ", ".join(quote(str(p)) for p in files)
    prefix = quote(str(source) + "/")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE seg_lines AS
        WITH l AS (
            SELECT replace(filename, {prefix}, '') AS f, row_number() OVER () AS g, line
            FROM read_csv([{listing}], header = false, auto_detect = false,
                          columns = {{'line': 'VARCHAR'}}, delim = E'\\x01', quote = '',
                          escape = '', strict_mode = false, filename = true,
                          encoding = 'utf-8')
        )
        SELECT f AS _source_file, g - min(g) OVER (PARTITION BY f) + 1 AS _source_row, line
        FROM l
        """
    )
    fixed = [
        "$.type",
        "$.messageId",
        "$.event",
        "$.userId",
        "$.anonymousId",
        "$.groupId",
        "$.timestamp",
        "$.originalTimestamp",
        "$.sentAt",
        "$.receivedAt",
        "$.context.groupId",
        "$.properties",
    ]
    groups = [
        [p for t in m.account_traits for p in _trait_paths(t)],
        _trait_paths(m.role_trait),
        _trait_paths(m.created_at_trait),
        _trait_paths(m.deprovisioned_at_trait) if m.deprovisioned_at_trait else [],
    ]
    paths = fixed + [p for g in groups for p in g]
    index, trait_exprs = len(fixed) + 1, []
    for g in groups:
        trait_exprs.append(
            _coalesce([f"nullif(trim(v[{index + i}]), '')" for i in range(len(g))]) if g else "NULL"
        )
        index += len(g)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE calls AS
        WITH p0 AS (
            SELECT _source_file, _source_row, line,
                   coalesce(CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' END,
                            false) AS ok
            FROM seg_lines WHERE nullif(trim(line, E' \\t\\r'), '') IS NOT NULL
        ), p AS (
            SELECT *, CASE WHEN ok THEN json_extract_string(line,
                          [{", ".join(quote(p) for p in paths)}]) END AS v
            FROM p0
        )
        SELECT coalesce(CASE lower(v[1]) {" ".join(f"WHEN {quote(k)} THEN {quote(t)}" for k, t in CALL_TABLES.items())} END,
                        'invalid_lines') AS source_table,
               _source_file, _source_row, v[2] AS message_id, lower(v[1]) AS call_type,
               v[3] AS event_raw, v[4] AS user_id, v[5] AS anonymous_id, v[6] AS group_id,
               v[7] AS ts, v[8] AS original_ts, v[9] AS sent_at, v[10] AS received_at,
               v[11] AS ctx_group_id,
               CASE WHEN v[12] IS NULL OR v[12] = '{{}}' THEN NULL ELSE v[12] END AS properties,
               CASE WHEN NOT ok THEN 'line ' || _source_row || ' is not a JSON object: '
                                     || left(line, 80)
                    WHEN v[1] IS NULL THEN 'type: missing (every Segment call has one)'
                    WHEN lower(v[1]) NOT IN ({", ".join(quote(k) for k in CALL_TABLES)}) THEN
                        'type: ' || v[1] || ' is not a Segment call type'
                    WHEN v[12] IS NOT NULL AND NOT coalesce(CASE WHEN json_valid(v[12])
                         THEN json_type(v[12]) = 'OBJECT' END, false) THEN
                        'properties: not a JSON object: ' || left(v[12], 80)
               END AS bad,
               {trait_exprs[0]} AS t_account, {trait_exprs[1]} AS t_role,
               {trait_exprs[2]} AS t_created, {trait_exprs[3]} AS t_deprov
        FROM p
        """
    )
    con.execute("DROP TABLE seg_lines")


# --- the warehouse form ------------------------------------------------------------------------


def _relation(files: list[Path], typed: bool) -> str:
    """One warehouse table's files as a relation with ``_source_file``/``_source_row``."""
    listing = ", ".join(quote(str(p)) for p in files)
    kinds = {p.name.lower().endswith(".parquet") for p in files}
    if len(kinds) > 1:
        raise AdapterInputError(
            f"{files[0].parent}: mixes Parquet and CSV files for one table; use one format."
        )
    if kinds == {True}:
        return (
            f"SELECT * EXCLUDE (filename, file_row_number), filename AS _f,"
            f" file_row_number + 1 AS _source_row FROM read_parquet([{listing}],"
            " filename = true, file_row_number = true, union_by_name = true)"
        )
    types = "" if typed else ", all_varchar = true"
    return (
        "SELECT * EXCLUDE (filename, _g), filename AS _f,"
        " _g - min(_g) OVER (PARTITION BY filename) + 1 AS _source_row FROM ("
        f"SELECT *, row_number() OVER () AS _g FROM read_csv([{listing}], header = true,"
        f" union_by_name = true, filename = true{types}))"
    )


def _load(
    con: duckdb.DuckDBPyConnection, source: Path, name: str, files: list[Path], typed: bool
) -> list[str]:
    prefix = quote(str(source) + "/")
    try:
        con.execute(
            f'CREATE OR REPLACE TABLE "wh_{name}" AS SELECT * EXCLUDE (_f),'
            f" replace(_f, {prefix}, '') AS _source_file FROM ({_relation(files, typed)})"
        )
    except duckdb.Error as exc:
        raise AdapterInputError(
            f"{files[0].relative_to(source)}: cannot be read ({type(exc).__name__}: {exc})."
            " Fix or remove the file and run the adapter again; nothing was written."
        ) from exc
    columns = [r[0] for r in con.execute(f'DESCRIBE "wh_{name}"').fetchall()]
    lowered = [c.lower() for c in columns]
    if len(set(lowered)) != len(lowered):
        raise AdapterInputError(f"{name}: two columns differ only in case: {columns}")
    for c in columns:
        if c != c.lower():
            con.execute(f'ALTER TABLE "wh_{name}" RENAME COLUMN "{c}" TO "{c.lower()}"')
    return lowered


def _col(columns: list[str], *names: str) -> str:
    """The first of ``names`` the table has, as trimmed text, else NULL."""
    for n in names:
        if n in columns:
            return f"""nullif(trim(CAST("{n}" AS VARCHAR)), '')"""
    return "NULL"


def read_warehouse_calls(
    con: duckdb.DuckDBPyConnection, source: Path, m: SegmentMapping
) -> tuple[dict[str, list[str]], list[str]]:
    """Load ``tracks``, ``identifies``, ``groups`` and the per-event tables. Returns the event
    tables (name -> property columns) and the tables not read."""
    tables = _table_files(source)
    selects, event_tables, not_read = [], {}, []

    def trait(columns: list[str], names: Sequence[str]) -> str:
        return _coalesce(
            [_col(columns, snake_case(n.replace(".", "_"))) for n in names] or ["NULL"]
        )

    for name, files in sorted(tables.items()):
        if name in ("tracks", "identifies", "groups"):
            cols = _load(con, source, name, files, typed=False)
            event = "event_text" if m.event_name_case == "as_sent" else "event"
            fields = {
                "source_table": quote(name),
                "_source_file": "_source_file",
                "_source_row": "_source_row",
                "message_id": _col(cols, "id"),
                "call_type": quote(
                    {"tracks": "track", "identifies": "identify"}.get(name, "group")
                ),
                "event_raw": _col(cols, event, "event", "event_text")
                if name == "tracks"
                else "NULL",
                "user_id": _col(cols, "user_id"),
                "anonymous_id": _col(cols, "anonymous_id"),
                "group_id": _col(cols, "group_id") if name == "groups" else "NULL",
                "ts": _col(cols, "timestamp"),
                "original_ts": _col(cols, "original_timestamp"),
                "sent_at": _col(cols, "sent_at"),
                "received_at": _col(cols, "received_at"),
                "ctx_group_id": _col(cols, "context_group_id"),
                "properties": "NULL",
                "bad": "NULL",
                "t_account": trait(cols, m.account_traits) if name == "identifies" else "NULL",
                "t_role": trait(cols, [m.role_trait]) if name == "identifies" else "NULL",
                "t_created": trait(cols, [m.created_at_trait]) if name == "identifies" else "NULL",
                "t_deprov": trait(cols, [m.deprovisioned_at_trait])
                if name == "identifies" and m.deprovisioned_at_trait
                else "NULL",
            }
            selects.append(
                "SELECT "
                + ", ".join(
                    f"{v} AS {k}" if k.startswith("_") else f"CAST({v} AS VARCHAR) AS {k}"
                    for k, v in fields.items()
                )
                + f' FROM "wh_{name}"'
            )
        elif name in NOT_EVENT_TABLES:
            not_read.append(name)
        else:
            cols = _load(con, source, name, files, typed=True)
            if "id" not in cols or "event" not in cols:
                con.execute(f'DROP TABLE "wh_{name}"')
                not_read.append(name)
                continue
            event_tables[name] = [
                c for c in cols if c not in STANDARD_COLUMNS and not c.startswith("context_")
            ]
    if not selects:
        raise AdapterInputError(f"{source}: no tracks, identifies or groups table found.")
    con.execute("CREATE OR REPLACE TABLE calls AS " + " UNION ALL BY NAME ".join(selects))
    for name, props in event_tables.items():
        obj = ", ".join(f'{quote(p)}, "{p}"' for p in props)
        con.execute(
            f"""UPDATE calls SET properties = p.props
                FROM (SELECT DISTINCT ON (trim(CAST(id AS VARCHAR)))
                             trim(CAST(id AS VARCHAR)) AS id,
                             nullif(CAST(json_merge_patch('{{}}', json_object({obj or "'_', NULL"}))
                                         AS VARCHAR), '{{}}') AS props
                      FROM "wh_{name}" ORDER BY 1, _source_file, _source_row) p
                WHERE calls.source_table = 'tracks' AND calls.message_id = p.id"""
        )
    return event_tables, not_read
