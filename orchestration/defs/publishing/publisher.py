"""Writing the publication: marts as Parquet, the serving copy, dated lists, the finance close.

Every file is written beside its final name and renamed into place (``os.replace`` is atomic on
one filesystem), so a reader sees the previous complete file or the new complete file, never half
of one. Nothing here computes a metric: it copies marts out of the warehouse.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import duckdb

#: The lists CSMs act on, and the mart each is read from.
LIST_MARTS: dict[str, str] = {
    "risk_list": "marts.risk_list",
    "expansion_list": "marts.expansion_list",
    "adoption_alerts": "marts.adoption_alerts",
}
#: Columns never published in a list, whatever a mart holds.
PRIVATE_COLUMNS = frozenset({"email", "contact_email", "contact_name", "first_name", "last_name"})


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


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


def publish_marts(
    con: duckdb.DuckDBPyConnection, marts: Iterable[str], publish_dir: Path
) -> list[Path]:
    """``published/marts/<table>.parquet`` for every mart, each replaced atomically."""
    return [
        copy_query(con, f"SELECT * FROM marts.{name}", publish_dir / "marts" / f"{name}.parquet")
        for name in marts
    ]


def publish_serving_copy(warehouse: Path, publish_dir: Path) -> Path:
    """Copy the (checkpointed, closed) warehouse to ``published/warehouse.duckdb`` atomically.

    Readers holding the previous copy open keep reading it; new connections get the new one.
    """
    target = publish_dir / "warehouse.duckdb"
    target.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CHECKPOINT")
    tmp = _temporary(target)
    try:
        shutil.copyfile(warehouse, tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _list_query(con: duckdb.DuckDBPyConnection, mart: str) -> str | None:
    schema, table = mart.split(".")
    columns = [
        name
        for (name,) in con.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
        if name not in PRIVATE_COLUMNS
    ]
    if not columns:
        return None
    order = "list_rank" if "list_rank" in columns else columns[0]
    return f"SELECT {', '.join(columns)} FROM {mart} ORDER BY {order}"


def publish_lists(con: duckdb.DuckDBPyConnection, publish_dir: Path, as_of: date) -> list[Path]:
    """``published/lists/<as_of>/<list>.csv|parquet``, then ``lists/latest`` pointed at that day.

    ``latest`` is a symbolic link swapped atomically, so it always names one complete day.
    """
    day_dir = publish_dir / "lists" / as_of.isoformat()
    written: list[Path] = []
    for name, mart in LIST_MARTS.items():
        query = _list_query(con, mart)
        if query is None:
            continue
        written.append(copy_query(con, query, day_dir / f"{name}.parquet"))
        written.append(copy_query(con, query, day_dir / f"{name}.csv", fmt="csv"))
    if written:
        point_latest_at(day_dir)
    return written


def point_latest_at(day_dir: Path) -> Path:
    latest = day_dir.parent / "latest"
    tmp = _temporary(latest)
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(day_dir.name, target_is_directory=True)
    tmp.replace(latest)
    return latest


def previous_month(as_of: date) -> date:
    """The first day of the month before ``as_of``'s month: the month a close reports."""
    return date(as_of.year - 1, 12, 1) if as_of.month == 1 else date(as_of.year, as_of.month - 1, 1)


def publish_finance_close(
    con: duckdb.DuckDBPyConnection, publish_dir: Path, month: date
) -> list[Path]:
    """The closed month's retention report: every complete period ending with ``month``
    (its month, and its quarter, year and trailing 12 months when they end then), and the
    month's MRR bridge, overall and by segment."""
    out = publish_dir / "finance" / month.strftime("%Y-%m")
    retention = (
        "SELECT * FROM marts.fct_revenue_retention"
        f" WHERE end_month = DATE '{month.isoformat()}' AND is_complete"
        " ORDER BY period_grain, segment = 'all' DESC, segment"
    )
    bridge = (
        f"SELECT * FROM marts.fct_mrr_bridge WHERE month = DATE '{month.isoformat()}'"
        " ORDER BY segment = 'all' DESC, segment"
    )
    return [
        copy_query(con, retention, out / "retention.parquet"),
        copy_query(con, retention, out / "retention.csv", fmt="csv"),
        copy_query(con, bridge, out / "mrr_bridge.parquet"),
        copy_query(con, bridge, out / "mrr_bridge.csv", fmt="csv"),
    ]
