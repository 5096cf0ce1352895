"""Writing the publication: marts as Parquet, the serving copy, dated lists, the finance close.

The serving copy ``published/warehouse.duckdb`` is what BI tools open: the marts (schema
``marts``) and the reporting views (schema ``reporting``, see :mod:`reporting_views`), with the
marts' descriptions as table and column comments, and nothing else: no raw, staging, intermediate
or audit table, no column of :data:`PRIVATE_COLUMNS`, and no value that looks like an e-mail
address (a serving copy holding one is refused). It is written in DuckDB's 1.1 storage format
(:data:`SERVING_STORAGE_VERSION`), so that the DuckDB 1.x builds bundled in BI tools open it.

A publication is one version: everything a publishing asset writes goes into a new folder
``published/versions/<UTC time>-<kind>-<run id>/``, which holds the whole publication (the files
the other kinds published last are carried forward as hard links, so they cost no space), and is
switched in by replacing one symbolic link, ``published/current``, with ``os.replace``. The paths
readers use are symbolic links into ``current`` made once (``warehouse.duckdb``, ``marts``,
``lists``, ``finance``), so a reader sees the previous publication or the new one, whole, never
new marts beside an old serving copy. A failed or held-back publication switches nothing.

Before writing, the publication compares the row count of every table with the count of the
file readers see now (:func:`shrink_reason`): a table that would lose more than
``publish_max_shrink`` of its rows, or empty, and a table that must have rows but has none, hold
the whole publication back unless ``force_publish`` is set.

A warehouse publication writes only what changed (issue 16). Its version's record holds what the
marts hold (:class:`Content`: per mart the row count and a digest of every published column's
values, computed by DuckDB without regard to row order, plus the marts' descriptions and the code
that writes the files). When the warehouse holds what the current version records, nothing is
written: no version, no serving copy (:func:`changed_version`). Otherwise only the changed marts'
Parquet files are written, the others are carried forward, and the serving copy is rebuilt. The
guards below see every table either way.

Publications take turns (an exclusive ``flock`` on ``published/.publish.lock``); the one holding
the lock first removes what killed publications left: unfinished versions and temporary files.
The last :data:`KEEP_VERSIONS` versions are kept, and always the current one and the one it
replaced. Nothing here computes a metric: it copies marts out of the warehouse.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from orchestration.defs.publishing import reporting_views
from orchestration.defs.publishing.reporting_views import REPORTING_SCHEMA, REPORTING_VIEWS
from orchestration.leftovers import left_over, remove

#: The lists CSMs act on, and the mart each is read from: the one list of published lists.
LIST_MARTS: dict[str, str] = {
    "risk_list": "marts.risk_list",
    "risk_list_reasons": "marts.risk_list_reasons",
    "expansion_list": "marts.expansion_list",
    "expansion_list_signals": "marts.expansion_list_signals",
    "adoption_alerts": "marts.adoption_alerts",
}
#: How a list's rows are ordered in its files, when not by ``list_rank`` alone (its grain).
LIST_ORDER: dict[str, str] = {
    "risk_list_reasons": "list_rank, reason_order, reason_code",
    "expansion_list_signals": "list_rank, signal_type",
}
#: Columns never published (not in a list, a Parquet mart or the serving copy), whatever a mart
#: holds: people's names, e-mail addresses and product user ids.
PRIVATE_COLUMNS = frozenset(
    {"email", "contact_email", "contact_name", "first_name", "last_name", "user_id"}
)
#: The people the lists are about or for, whose identifiers may be work e-mail addresses: the
#: account's owner (a CRM's owner is often the CSM's e-mail; the Salesforce and HubSpot adapters
#: map it so by default) and the user an adoption alert names (a product's user id is often an
#: e-mail). The lists need them, so they are published and the e-mail scan passes over them:
#: ``column`` anywhere, or ``table.column``.
IDENTITY_COLUMNS = frozenset({"owner", "adoption_alerts.subject"})
#: A value that looks like an e-mail address: the serving copy holds none outside IDENTITY_COLUMNS.
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
#: The serving copy's storage format: DuckDB 1.1 and every later version open it.
SERVING_STORAGE_VERSION = "v1.1.0"
#: The serving copy's name while it is written (attached beside the working warehouse).
_SERVING = "csw_serving_copy"
#: Marts that always have rows when the warehouse holds any customer: empty, they are never
#: published without force, not even the first time.
REQUIRED_MARTS = frozenset({"dim_accounts", "fct_mrr_monthly", "fct_mrr_bridge"})

#: What readers open, relative to the publish directory: links into ``current``.
STABLE_FOLDERS = ("marts", "lists", "finance")
#: The HTML report (metrics/html_report.py): the newest lists' or finance close's, at the top.
REPORT = "report.html"
STABLE_NAMES = ("warehouse.duckdb", REPORT, *STABLE_FOLDERS)
VERSIONS = "versions"
CURRENT = "current"
#: Written last into a version: the version is complete. Its JSON says what it holds.
RECORD = "_publication.json"
#: The record's key for what the marts and the serving copy hold (:class:`Content`).
CONTENT = "content"
LOCK = ".publish.lock"
#: Complete versions kept; the current one and the one before it are kept whatever their age.
KEEP_VERSIONS = 5
#: Below this many published rows only emptying holds a table back: a short list (four accounts
#: at risk this week, one the next) moves by large shares in ordinary weeks.
SHRINK_MIN_ROWS = 10
#: A publication's temporary file: ``.<name>.tmp-<pid>``.
TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)$")


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _sql_path(path: Path) -> str:
    return _literal(str(path))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(*names: str) -> str:
    return ".".join('"' + name.replace('"', '""') + '"' for name in names)


def copy_query(
    con: duckdb.DuckDBPyConnection, query: str, target: Path, fmt: str = "parquet"
) -> Path:
    """Write ``query``'s rows to ``target`` (Parquet or CSV) and rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(target)
    options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER true"
    try:
        con.execute(f"COPY ({query}) TO {_sql_path(tmp)} ({options})")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


# --- the tables of a publication ------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """One table of a publication: what it holds and where it goes."""

    what: str  # "mart", "list", "2024-03" (a finance close): how messages name it
    name: str
    query: str
    path: str  # in a version, without the suffix: "marts/dim_accounts"
    published: str  # the Parquet file readers see now, from the publish directory
    csv: bool = False
    required: bool = False

    @property
    def label(self) -> str:
        return f"{self.what} {self.name}"


class ServingCopyError(RuntimeError):
    """The warehouse cannot be published as it is; nothing of it was published."""


class PersonalDataError(ServingCopyError):
    """A mart holds values that look like e-mail addresses; the serving copy is refused."""


def public_columns(con: duckdb.DuckDBPyConnection, mart: str) -> list[str]:
    """The columns of ``schema.table`` that may be published (all but :data:`PRIVATE_COLUMNS`),
    in the table's order; none when there is no such table."""
    schema, table = mart.split(".")
    return [
        name
        for (name,) in con.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?"
            " ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
        if name not in PRIVATE_COLUMNS
    ]


def _select(columns: Sequence[str]) -> str:
    return ", ".join(_ident(c) for c in columns)


def mart_tables(con: duckdb.DuckDBPyConnection, marts: Iterable[str]) -> list[Table]:
    """Every mart's public columns; a mart missing from the warehouse is an error."""
    columns = {name: public_columns(con, f"marts.{name}") for name in marts}
    missing = [name for name, cols in columns.items() if not cols]
    if missing:
        raise ServingCopyError(_missing_marts(missing))
    return [
        Table(
            what="mart",
            name=name,
            query=f"SELECT {_select(cols)} FROM marts.{_ident(name)}",
            path=f"marts/{name}",
            published=f"marts/{name}.parquet",
            required=name in REQUIRED_MARTS,
        )
        for name, cols in columns.items()
    ]


def _missing_marts(missing: Sequence[str]) -> str:
    return (
        f"Not in the warehouse's marts schema: {', '.join(sorted(missing))}. Build them with"
        " `csw run` (a dbt build of the whole project) before publishing; nothing was published."
    )


def _list_query(con: duckdb.DuckDBPyConnection, name: str, mart: str) -> str | None:
    columns = public_columns(con, mart)
    if not columns:
        return None
    order = LIST_ORDER.get(name) or ("list_rank" if "list_rank" in columns else _ident(columns[0]))
    return f"SELECT {_select(columns)} FROM {mart} ORDER BY {order}"


def list_tables(con: duckdb.DuckDBPyConnection, as_of: date) -> list[Table]:
    """The lists as of ``as_of``, compared with the lists ``lists/latest`` holds."""
    day = as_of.isoformat()
    queries = {name: _list_query(con, name, mart) for name, mart in LIST_MARTS.items()}
    return [
        Table(
            what="list",
            name=name,
            query=query,
            path=f"lists/{day}/{name}",
            published=f"lists/latest/{name}.parquet",
            csv=True,
        )
        for name, query in queries.items()
        if query is not None
    ]


def previous_month(as_of: date) -> date:
    """The first day of the month before ``as_of``'s month: the month a close reports."""
    return date(as_of.year - 1, 12, 1) if as_of.month == 1 else date(as_of.year, as_of.month - 1, 1)


def finance_tables(month: date) -> list[Table]:
    """The closed month's retention report: every complete period ending with ``month`` (its
    month, and its quarter, year and trailing 12 months when they end then), and the month's MRR
    bridge; each for the company (``retention``, ``mrr_bridge``) and per segment
    (``..._by_segment``). A month always has a bridge when there is any MRR."""
    label = month.strftime("%Y-%m")
    day = f"DATE '{month.isoformat()}'"
    queries = {
        "retention": "SELECT * FROM marts.fct_revenue_retention"
        f" WHERE end_month = {day} AND is_complete ORDER BY period_grain",
        "retention_by_segment": "SELECT * FROM marts.fct_revenue_retention_by_segment"
        f" WHERE end_month = {day} AND is_complete ORDER BY period_grain, segment",
        "mrr_bridge": f"SELECT * FROM marts.fct_mrr_bridge WHERE month = {day}",
        "mrr_bridge_by_segment": "SELECT * FROM marts.fct_mrr_bridge_by_segment"
        f" WHERE month = {day} ORDER BY segment",
    }
    return [
        Table(label, name, query, f"finance/{label}/{name}", f"finance/{label}/{name}.parquet",
              csv=True, required=name == "mrr_bridge")
        for name, query in queries.items()
    ]  # fmt: skip


#: The marts the finance close reads.
FINANCE_MARTS = (
    "fct_revenue_retention",
    "fct_revenue_retention_by_segment",
    "fct_mrr_bridge",
    "fct_mrr_bridge_by_segment",
)


def write_tables(
    con: duckdb.DuckDBPyConnection, tables: Iterable[Table], directory: Path
) -> list[Path]:
    """Every table as Parquet (and CSV when it says so) under ``directory``."""
    written: list[Path] = []
    for table in tables:
        target = directory / table.path
        written.append(copy_query(con, table.query, target.with_name(target.name + ".parquet")))
        if table.csv:
            written.append(
                copy_query(con, table.query, target.with_name(target.name + ".csv"), fmt="csv")
            )
    return written


# --- what a warehouse publication holds ----------------------------------------------------


def mart_digest(con: duckdb.DuckDBPyConnection, table: Table) -> dict[str, Any]:
    """``{"rows": n, "digest": sha256}`` of what ``table``'s Parquet file holds: its columns (names
    and types, in order) and every row's values, hashed by DuckDB and summed and XOR-ed, so the
    order of the rows does not matter and a repeated row counts twice."""
    described = con.execute(f"DESCRIBE {table.query}").fetchall()
    counted = con.execute(
        f"SELECT count(*), sum(hash(t)), bit_xor(hash(t)) FROM ({table.query}) AS t"
    ).fetchone()
    assert counted is not None
    rows, total, xor = counted
    columns = [[name, data_type] for name, data_type, *_ in described]
    return {"rows": int(rows), "digest": _sha256([columns, rows, str(total), str(xor)])}


def _sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def serving_digest(con: duckdb.DuckDBPyConnection, marts: Iterable[str]) -> str:
    """sha256 of what the serving copy takes from the warehouse besides the marts' rows: the
    descriptions of ``marts`` and of their public columns."""
    (database,) = con.execute("SELECT current_database()").fetchone() or ("",)
    tables, columns = _mart_comments(con, database)
    return _sha256({m: [tables.get(m), columns.get(m, [])] for m in sorted(marts)})


@cache
def writer_digest() -> str:
    """sha256 of the code that writes the files (this module, the reporting views) and of the
    DuckDB version: when it changes, every file is written again."""
    sources = [Path(__file__), Path(reporting_views.__file__)]
    return _sha256([duckdb.__version__, *(path.read_text(encoding="utf-8") for path in sources)])


@dataclass(frozen=True)
class Content:
    """What a warehouse publication holds (recorded in its version, carried forward by the
    versions of lists and finance closes): each mart's :func:`mart_digest`, the
    :func:`serving_digest` and the :func:`writer_digest`."""

    marts: Mapping[str, Mapping[str, Any]]
    serving: str
    writer: str

    def to_json(self) -> dict[str, Any]:
        return {"marts": dict(self.marts), "serving": self.serving, "writer": self.writer}

    @classmethod
    def of_record(cls, record: Mapping[str, Any]) -> Content | None:
        """The content a version's record holds; None for a version written before it was kept."""
        found = record.get(CONTENT)
        if not isinstance(found, dict):
            return None
        try:
            return cls(marts=found["marts"], serving=found["serving"], writer=found["writer"])
        except KeyError:
            return None

    @property
    def row_counts(self) -> dict[str, int]:
        return {name: int(digest["rows"]) for name, digest in self.marts.items()}

    @property
    def fingerprint(self) -> str:
        return _sha256(self.to_json())

    def changed_marts(self, published: Content | None) -> list[str]:
        """The marts whose files differ from ``published`` (all of them when the writer did)."""
        if published is None or published.writer != self.writer:
            return list(self.marts)
        return [name for name, digest in self.marts.items() if published.marts.get(name) != digest]


def warehouse_content(con: duckdb.DuckDBPyConnection, tables: Sequence[Table]) -> Content:
    """The :class:`Content` of publishing the marts ``tables`` (:func:`mart_tables`)."""
    return Content(
        marts={table.name: mart_digest(con, table) for table in tables},
        serving=serving_digest(con, [table.name for table in tables]),
        writer=writer_digest(),
    )


# --- writing into one directory (a version, or a publish directory of the previous layout) ----


def publish_marts(
    con: duckdb.DuckDBPyConnection, marts: Iterable[str], publish_dir: Path
) -> list[Path]:
    """``<publish_dir>/marts/<table>.parquet`` for every mart, each replaced atomically."""
    return write_tables(con, mart_tables(con, marts), publish_dir)


def publish_serving_copy(
    warehouse: Path, publish_dir: Path, marts: Sequence[str] | None = None
) -> Path:
    """Write the serving copy of ``warehouse`` to ``<publish_dir>/warehouse.duckdb`` atomically
    (see :func:`write_serving_copy`; ``marts`` None: every table of the marts schema).

    Readers holding the previous copy open keep reading it; new connections get the new one.
    """
    target = publish_dir / "warehouse.duckdb"
    target.parent.mkdir(parents=True, exist_ok=True)
    work = _temporary(target.parent / "serving")
    work.mkdir()
    try:
        write_serving_copy(warehouse, work / target.name, marts)
        (work / target.name).replace(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def write_serving_copy(warehouse: Path, target: Path, marts: Sequence[str] | None = None) -> None:
    """A new DuckDB file ``target`` in the 1.1 storage format holding ``marts`` as tables (their
    public columns, with the warehouse's table and column comments) and the reporting views
    whose marts it holds, with their comments; :class:`PersonalDataError` when a value of it looks
    like an e-mail address."""
    with duckdb.connect(str(warehouse)) as con:
        (source,) = con.execute("SELECT current_database()").fetchone() or ("",)
        con.execute(
            f"ATTACH {_sql_path(target)} AS {_SERVING}"
            f" (STORAGE_VERSION {_literal(SERVING_STORAGE_VERSION)})"
        )
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                copied = _copy_marts(con, source, marts)
                con.execute(f"USE {_SERVING}")
                _create_reporting_views(con, copied)
                _refuse_email_addresses(con)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.execute(f"USE {_ident(source)}")
            con.execute(f"DETACH {_SERVING}")


def _mart_comments(
    con: duckdb.DuckDBPyConnection, database: str
) -> tuple[dict[str, str | None], dict[str, list[tuple[str, str | None]]]]:
    """The marts schema's tables with their comments, and each one's public columns with theirs."""
    tables = dict(
        con.execute(
            "SELECT table_name, comment FROM duckdb_tables()"
            " WHERE database_name = ? AND schema_name = 'marts'"
            " UNION ALL SELECT view_name, comment FROM duckdb_views()"
            " WHERE database_name = ? AND schema_name = 'marts' AND NOT internal",
            [database, database],
        ).fetchall()
    )
    columns: dict[str, list[tuple[str, str | None]]] = {}
    for table, column, comment in con.execute(
        "SELECT table_name, column_name, comment FROM duckdb_columns()"
        " WHERE database_name = ? AND schema_name = 'marts' ORDER BY table_name, column_index",
        [database],
    ).fetchall():
        if column not in PRIVATE_COLUMNS:
            columns.setdefault(table, []).append((column, comment))
    return tables, columns


def _comment(kind: str, target: str, comment: str | None) -> str | None:
    return None if not comment else f"COMMENT ON {kind} {target} IS {_literal(comment)}"


def _copy_marts(
    con: duckdb.DuckDBPyConnection, source: str, marts: Sequence[str] | None
) -> dict[str, dict[str, str | None]]:
    """Every mart as a table of the serving copy, with its comments: returns the columns'."""
    tables, columns = _mart_comments(con, source)
    wanted = sorted(tables) if marts is None else list(marts)
    missing = [m for m in wanted if m not in tables]
    if missing:
        raise ServingCopyError(_missing_marts(missing))
    con.execute(f"CREATE SCHEMA {_SERVING}.marts")
    copied: dict[str, dict[str, str | None]] = {}
    for mart in wanted:
        target = _ident(_SERVING, "marts", mart)
        con.execute(
            f"CREATE TABLE {target} AS SELECT {_select([c for c, _ in columns[mart]])}"
            f" FROM {_ident(source, 'marts', mart)}"
        )
        statements = [
            _comment("TABLE", target, tables[mart]),
            *(_comment("COLUMN", f"{target}.{_ident(c)}", text) for c, text in columns[mart]),
        ]
        for statement in filter(None, statements):
            con.execute(statement)
        copied[mart] = dict(columns[mart])
    return copied


def _create_reporting_views(
    con: duckdb.DuckDBPyConnection, marts: Mapping[str, Mapping[str, str | None]]
) -> list[str]:
    """The reporting views whose marts the serving copy holds (all of them when it holds every
    mart of the project), created in it (the current catalog), with their comments."""
    con.execute(f"CREATE SCHEMA {REPORTING_SCHEMA}")
    created = []
    for view in REPORTING_VIEWS:
        if not set(view.reads) <= set(marts):
            continue
        target = _ident(REPORTING_SCHEMA, view.name)
        con.execute(f"CREATE VIEW {target} AS {view.sql.strip()}")
        view_columns = [
            c
            for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = ?"
                " AND schema_name = ? AND table_name = ? ORDER BY column_index",
                [_SERVING, REPORTING_SCHEMA, view.name],
            ).fetchall()
        ]
        statements = [_comment("VIEW", target, view.description)]
        for column in view_columns:
            described = view.columns.get(column) or next(
                (marts[m][column] for m in view.reads if marts[m].get(column)), None
            )
            statements.append(_comment("COLUMN", f"{target}.{_ident(column)}", described))
        for statement in filter(None, statements):
            con.execute(statement)
        created.append(view.name)
    return created


def _refuse_email_addresses(con: duckdb.DuckDBPyConnection) -> None:
    """Raise :class:`PersonalDataError` naming every text column of the serving copy's marts,
    but for IDENTITY_COLUMNS, that holds a value looking like an e-mail address (the values
    themselves are not repeated)."""
    columns = con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = ?"
        " AND schema_name = 'marts' AND data_type = 'VARCHAR'",
        [_SERVING],
    ).fetchall()
    if not columns:
        return
    counts = " UNION ALL ".join(
        f"SELECT {_literal(f'marts.{t}.{c}')} AS col, count(*) AS n"
        f" FROM {_ident('marts', t)} WHERE regexp_matches({_ident(c)}, {_literal(EMAIL_PATTERN)})"
        for t, c in columns
        if c not in IDENTITY_COLUMNS and f"{t}.{c}" not in IDENTITY_COLUMNS
    )
    if not counts:
        return
    found = con.execute(f"SELECT col, n FROM ({counts}) WHERE n > 0 ORDER BY col").fetchall()
    if found:
        raise PersonalDataError(
            "Values that look like e-mail addresses in "
            + ", ".join(f"{col} ({n} rows)" for col, n in found)
            + ". The serving copy is readable by every BI user and holds no personal data:"
            " remove them from the mart's model, or, for a column that is personal data by"
            " name, add it to PRIVATE_COLUMNS (orchestration/defs/publishing/publisher.py)."
            " Nothing was published."
        )


def publish_lists(con: duckdb.DuckDBPyConnection, publish_dir: Path, as_of: date) -> list[Path]:
    """``<publish_dir>/lists/<as_of>/<list>.csv|parquet``, then ``lists/latest`` pointed at that
    day (a symbolic link swapped atomically, so it always names one complete day)."""
    written = write_tables(con, list_tables(con, as_of), publish_dir)
    if written:
        point_latest_at(publish_dir / "lists" / as_of.isoformat())
    return written


def point_latest_at(day_dir: Path) -> Path:
    return _link(day_dir.parent / "latest", day_dir.name)


def publish_finance_close(
    con: duckdb.DuckDBPyConnection, publish_dir: Path, month: date
) -> list[Path]:
    """``<publish_dir>/finance/<YYYY-MM>/`` of the closed month (see :func:`finance_tables`)."""
    return write_tables(con, finance_tables(month), publish_dir)


def _link(path: Path, target: str) -> Path:
    """Point the symbolic link ``path`` at ``target`` (relative), replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    try:
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# --- the shrink guard -----------------------------------------------------------------------


def shrink_reason(
    table: Table, published: int | None, new: int, max_shrink: float, reshaped: bool = False
) -> str | None:
    """Why ``table`` must not be published with ``new`` rows, or None when it may.

    ``published`` is the row count readers see now (None: never published). A table that must
    have rows may never be empty; any table that had rows may not empty, nor, from
    :data:`SHRINK_MIN_ROWS` published rows up, lose more than ``max_shrink`` of them unless it
    was ``reshaped`` (its columns changed, so its rows count other things).
    """
    if new == 0 and published:
        return f"{table.label}: {published} rows published, 0 in this run (it would be emptied)"
    if new == 0 and table.required:
        return f"{table.label}: no rows in this run, and it must have rows"
    if reshaped or not published or published < SHRINK_MIN_ROWS:
        return None
    if published - new > max_shrink * published:
        lost = (published - new) / published
        return (
            f"{table.label}: {published} rows published, {new} in this run (-{lost:.0%}, more"
            f" than the {max_shrink:.0%} allowed)"
        )
    return None


class PublicationHeldBackError(RuntimeError):
    """A publication that would shrink or empty a table; nothing of it was switched in."""

    def __init__(
        self,
        reasons: Sequence[str],
        row_counts: Mapping[str, int],
        published_row_counts: Mapping[str, int | None],
        current: str | None,
        max_shrink: float,
    ) -> None:
        self.reasons = list(reasons)
        self.row_counts = dict(row_counts)
        self.published_row_counts = dict(published_row_counts)
        self.current = current
        stays = f"The current publication ({current}) stays" if current else "Nothing is published"
        super().__init__(
            "Publication held back:\n"
            + "".join(f"  {reason}\n" for reason in self.reasons)
            + f"{stays}. Check this run's ingestion summary (refused files, quarantined rows,"
            " missing extracts) before anything else. If the new figures are right, publish"
            " them anyway with `csw run --force-publish`, or CSW_FORCE_PUBLISH=1 for scheduled"
            f" jobs; CSW_PUBLISH_MAX_SHRINK (now {max_shrink:g}) is the share a table may lose."
        )


def row_counts(con: duckdb.DuckDBPyConnection, tables: Iterable[Table]) -> dict[str, int]:
    """The rows of every table in this run's warehouse (a count per table, no data read)."""
    return {t.name: con.execute(f"SELECT count(*) FROM ({t.query})").fetchone()[0] for t in tables}


def _column_names(
    con: duckdb.DuckDBPyConnection, query: str, params: list[object] | None = None
) -> list[str]:
    description = con.execute(f"SELECT * FROM ({query}) LIMIT 0", params or []).description
    return [column[0] for column in description or []]


def published_row_counts(
    con: duckdb.DuckDBPyConnection, tables: Iterable[Table], publish_dir: Path
) -> dict[str, int | None]:
    """The rows of the file readers see now for every table; None when there is none."""
    counts: dict[str, int | None] = {}
    for table in tables:
        path = publish_dir / table.published
        counts[table.name] = (
            con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()[0]
            if path.is_file()
            else None
        )
    return counts


def reshaped_tables(
    con: duckdb.DuckDBPyConnection, tables: Iterable[Table], publish_dir: Path
) -> set[str]:
    """The tables whose published file has other columns than this run's: a mart reshaped by an
    upgrade (issue 15 split the totals from the segments) is no baseline for the shrink ratio."""
    return {
        table.name
        for table in tables
        if (publish_dir / table.published).is_file()
        and _column_names(
            con, "SELECT * FROM read_parquet(?)", [str(publish_dir / table.published)]
        )
        != _column_names(con, table.query)
    }


# --- versions -------------------------------------------------------------------------------


def current_version(publish_dir: Path) -> Path | None:
    """The complete version ``current`` points at, or None before the first publication."""
    current = publish_dir / CURRENT
    if not current.is_symlink():
        return None
    version = publish_dir / current.readlink()
    return version if (version / RECORD).is_file() else None


def _record(version: Path) -> dict[str, Any]:
    try:
        return json.loads((version / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@contextmanager
def _exclusive(publish_dir: Path) -> Iterator[None]:
    """Hold the publish directory's lock; the kernel releases it when this process ends."""
    publish_dir.mkdir(parents=True, exist_ok=True)
    with (publish_dir / LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_leftovers(publish_dir: Path) -> list[Path]:
    """What killed publications left: versions without their record (none is being written, the
    caller holds the lock) and temporary files whose writer is gone or that are over an hour old.
    """
    versions = publish_dir / VERSIONS
    current = current_version(publish_dir)
    doomed = [
        v
        for v in (versions.iterdir() if versions.is_dir() else [])
        if not (v / RECORD).is_file() and v != current
    ]
    for root, dirs, files in os.walk(publish_dir):
        dirs[:] = [d for d in dirs if Path(root, d) not in doomed]
        for name in [*files, *dirs]:
            found = TEMPORARY.match(name)
            if found and left_over(Path(root, name), int(found.group(1))):
                doomed.append(Path(root, name))
    for path in doomed:
        remove(path)
    return doomed


def prune_versions(publish_dir: Path, keep: int = KEEP_VERSIONS) -> list[Path]:
    """Delete complete versions beyond the newest ``keep``, except the current one and the one it
    replaced (a reader may still be reading it). Files carried forward are hard links: deleting
    a version frees only what no kept version links to."""
    versions = publish_dir / VERSIONS
    current = current_version(publish_dir)
    if current is None:
        return []
    kept = {current.name, _record(current).get("previous")}
    complete = sorted(
        (v for v in versions.iterdir() if (v / RECORD).is_file()), key=lambda v: v.name
    )
    doomed = [v for v in complete[: max(len(complete) - keep, 0)] if v.name not in kept]
    for version in doomed:
        remove(version)
    return doomed


def _carry_forward(publish_dir: Path, version: Path, replaced: Sequence[str]) -> None:
    """Link every published file into ``version``, except the paths this publication replaces.

    From the current version, or, before the first one, from the publish directory of the
    previous layout (real files where the stable links go now).
    """
    source = current_version(publish_dir) or publish_dir
    skipped = {*replaced, RECORD}

    def ignore(directory: str, names: list[str]) -> set[str]:
        here = Path(directory).relative_to(source)
        return {
            n for n in names if (here / n).as_posix() in skipped or TEMPORARY.match(n) is not None
        }

    for name in STABLE_NAMES:
        path = source / name
        if name in skipped or not path.exists():
            continue
        if path.is_dir():
            shutil.copytree(
                path, version / name, symlinks=True, copy_function=_hard_link, ignore=ignore
            )
        else:
            _hard_link(path, version / name)
    for name in STABLE_FOLDERS:  # there, even empty, so that no stable link dangles
        (version / name).mkdir(exist_ok=True)


def _hard_link(source: str | Path, target: str | Path) -> None:
    """A hard link (no copy, the file is never modified in place), or a copy where the
    filesystem has none."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _ensure_stable_links(publish_dir: Path) -> None:
    """``warehouse.duckdb``, ``marts``, ``lists``, ``finance`` as links into ``current``, made
    once. A real file or folder of the previous layout is replaced (its content was carried
    into the version): a file atomically, a folder moved aside first."""
    for name in STABLE_NAMES:
        stable = publish_dir / name
        if stable.is_symlink():
            continue
        if stable.is_dir():
            aside = publish_dir / f".{name}.previous-layout.tmp-{os.getpid()}"
            stable.rename(aside)
            _link(stable, f"{CURRENT}/{name}")
            remove(aside)
        else:
            _link(stable, f"{CURRENT}/{name}")


@dataclass
class Version:
    """A publication being written; :func:`new_version` switches it in or throws it away."""

    publish_dir: Path
    directory: Path
    previous: Path | None
    row_counts: dict[str, int] = field(default_factory=dict)
    published_row_counts: dict[str, int | None] = field(default_factory=dict)
    forced: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    #: What the marts and the serving copy of this version hold: the previous version's (carried
    #: forward) until :meth:`write_marts` writes the marts.
    content: Content | None = None
    #: The marts whose files this version wrote (the others are carried forward).
    marts_written: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.directory.name

    def guard(
        self,
        con: duckdb.DuckDBPyConnection,
        tables: Sequence[Table],
        max_shrink: float,
        force: bool,
    ) -> None:
        """Compare ``tables`` with what readers see now; raise :class:`PublicationHeldBackError` when
        one would shrink or empty, unless ``force`` (then the reasons are kept in ``forced``)."""
        new = row_counts(con, tables)
        published = published_row_counts(con, tables, self.publish_dir)
        reshaped = reshaped_tables(con, tables, self.publish_dir)
        self.row_counts.update(new)
        self.published_row_counts.update(published)
        reasons = [
            reason
            for t in tables
            if (
                reason := shrink_reason(
                    t, published[t.name], new[t.name], max_shrink, t.name in reshaped
                )
            )
        ]
        if reasons and not force:
            previous = self.previous.name if self.previous else None
            raise PublicationHeldBackError(reasons, new, published, previous, max_shrink)
        self.forced.extend(reasons)

    def write(self, con: duckdb.DuckDBPyConnection, tables: Iterable[Table]) -> None:
        self.files.extend(write_tables(con, tables, self.directory))

    def write_marts(
        self, con: duckdb.DuckDBPyConnection, tables: Sequence[Table], content: Content
    ) -> list[str]:
        """Write the marts whose content differs from what this version carried forward (or
        whose file it lacks), remove the files of marts no longer published, and record
        ``content``; returns the marts written."""
        changed = set(content.changed_marts(self.content))
        wanted = [
            t
            for t in tables
            if t.name in changed or not (self.directory / f"{t.path}.parquet").is_file()
        ]
        names = {t.name for t in tables}
        marts = self.directory / "marts"
        for stale in marts.glob("*.parquet") if marts.is_dir() else []:
            if stale.stem not in names:
                stale.unlink()
        self.write(con, wanted)
        self.marts_written = [t.name for t in wanted]
        self.content = content
        return self.marts_written

    def copy_warehouse(self, warehouse: Path, marts: Sequence[str] | None = None) -> Path:
        copy = publish_serving_copy(warehouse, self.directory, marts)
        self.files.append(copy)
        return copy

    def write_report(
        self, con: duckdb.DuckDBPyConnection, folder: str, month: date | None = None
    ) -> Path:
        """The HTML report of the marts behind ``con`` as ``<folder>/report.html`` of this
        version, and as the top-level ``report.html`` (a hard link: the same file, so the top
        one is the newest publication's). ``month``: a finance close's month, its page's bridge."""
        from metrics.html_report import write_report

        dated = write_report(con, self.directory / folder / REPORT, month=month)
        top = self.directory / REPORT
        top.unlink(missing_ok=True)
        _hard_link(dated, top)
        self.files.extend([dated, top])
        return dated

    def point_latest_at(self, day: date) -> None:
        point_latest_at(self.directory / "lists" / day.isoformat())

    def stable(self, path: Path) -> Path:
        """Where readers find a file of this version once it is current."""
        return self.publish_dir / path.relative_to(self.directory)


def _version_dir(publish_dir: Path, kind: str, run_id: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    directory = publish_dir / VERSIONS / f"{stamp}-{kind}-{run_id[:8]}"
    directory.mkdir(parents=True)
    return directory


@contextmanager
def new_version(
    publish_dir: Path, kind: str, run_id: str, replaces: Sequence[str]
) -> Iterator[Version]:
    """A new version of the publication, switched in when the block ends without error.

    ``replaces`` are the paths (relative to the publish directory) this publication writes; every
    other published file is carried forward into the version. On any error the version is
    deleted and ``current`` is left as it was.
    """
    with _exclusive(publish_dir):
        remove_leftovers(publish_dir)
        previous = current_version(publish_dir)
        with _switched_in(publish_dir, kind, run_id, replaces, previous) as version:
            yield version


@contextmanager
def changed_version(
    publish_dir: Path, kind: str, run_id: str, replaces: Sequence[str], content: Content
) -> Iterator[Version | None]:
    """:func:`new_version`, or None when the current version already holds ``content``: then
    nothing is written and nothing switched (the leftovers of killed publications are still
    removed)."""
    with _exclusive(publish_dir):
        remove_leftovers(publish_dir)
        previous = current_version(publish_dir)
        if previous is not None and Content.of_record(_record(previous)) == content:
            yield None
            return
        with _switched_in(publish_dir, kind, run_id, replaces, previous) as version:
            yield version


@contextmanager
def _switched_in(
    publish_dir: Path, kind: str, run_id: str, replaces: Sequence[str], previous: Path | None
) -> Iterator[Version]:
    """A version carrying forward everything but ``replaces``, switched in when the block ends
    without error and deleted on any error; the caller holds the lock."""
    version = Version(
        publish_dir,
        _version_dir(publish_dir, kind, run_id),
        previous,
        content=Content.of_record(_record(previous)) if previous is not None else None,
    )
    try:
        _carry_forward(publish_dir, version.directory, replaces)
        yield version
        _seal(version, kind, run_id)
    except BaseException:
        remove(version.directory)
        raise
    _link(publish_dir / CURRENT, f"{VERSIONS}/{version.name}")
    _ensure_stable_links(publish_dir)
    prune_versions(publish_dir)


def _seal(version: Version, kind: str, run_id: str) -> None:
    """Write the version's record, last: from now on the version is complete."""
    record = {
        "kind": kind,
        "run_id": run_id,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "previous": version.previous.name if version.previous else None,
        "row_counts": version.row_counts,
        "forced": version.forced,
        CONTENT: version.content.to_json() if version.content is not None else None,
    }
    marker = version.directory / RECORD
    tmp = _temporary(marker)
    tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    tmp.replace(marker)
