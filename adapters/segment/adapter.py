"""Segment -> contract v1 product tables (users, events). ``docs/adapters.md`` says how each
contract column is derived; this module is that text as SQL, set-based in DuckDB (no Python loop
over rows), so it scales to the hundreds of millions of calls a tracker collects.

Steps: read the calls (``adapters.segment.read``), decide each call's fate (unreadable,
duplicate messageId, a call type not read, a bad timestamp, anonymous), link anonymous ids to
users (``anonymous: map``), resolve each event's account (its ``context.groupId``, else the
user's latest identify trait or group call at or before the event, else the user's first one),
build one user row per user, write users (CSV or Parquet) and events (Parquet, one file per UTC
day of ``occurred_at``), and account for every source row (``adapters.core``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from adapters import core
from adapters.core import AdaptResult, SourceTable, bad_timestamp, quote
from adapters.segment.mapping import CONTRACT_ROLES, SegmentMapping
from adapters.segment.read import (
    detect_form,
    read_json_calls,
    read_warehouse_calls,
)
from ingestion.contract import table as contract_table

SYSTEM = "segment"
NOT_READ_TYPES = ("pages", "screens", "aliases")


def _macros(con: duckdb.DuckDBPyConnection, m: SegmentMapping) -> None:
    renames = " ".join(
        f"WHEN {quote(k)} THEN {quote(v)}" for k, v in sorted(m.event_name_map.items())
    )
    cased = "seg_snake(x)" if m.event_name_case == "snake" else "trim(x)"
    con.execute(
        f"""
        CREATE OR REPLACE MACRO seg_snake(x) AS trim(lower(regexp_replace(regexp_replace(
            regexp_replace(trim(x), '([A-Z]+)([A-Z][a-z])', '\\1_\\2', 'g'),
            '([a-z0-9])([A-Z])', '\\1_\\2', 'g'), '[^A-Za-z0-9]+', '_', 'g')), '_');
        CREATE OR REPLACE MACRO seg_event_name(x) AS
            {f"coalesce(CASE trim(x) {renames} END, CASE {cased} {renames} END, {cased})" if renames else cased};
        CREATE OR REPLACE MACRO seg_role(x) AS CASE
            {" ".join(f"WHEN lower(trim(x)) = {quote(k.lower())} THEN {quote(v)}" for k, v in m.role_map.items())}
            WHEN lower(trim(x)) IN ({", ".join(quote(r) for r in CONTRACT_ROLES)})
                 THEN lower(trim(x)) END;
        """
    )


def _decide(con: duckdb.DuckDBPyConnection, m: SegmentMapping) -> None:
    """``decided``: every call with ``occ`` (its time) and ``verdict`` NULL (usable so far), or
    ``R:<reason>`` (rejected) / ``X:<reason>`` (excluded)."""
    groups_rule = (
        "WHEN source_table = 'groups' THEN 'X:group calls are not read (account_source: trait)'"
        if m.account_source == "trait"
        else "WHEN source_table = 'groups' AND group_id IS NULL THEN 'R:groupId: missing'"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE decided AS
        WITH t AS (
            SELECT *,
                coalesce(csw_ts(ts),
                         csw_ts(received_at) - (csw_ts(sent_at) - csw_ts(original_ts))) AS occ,
                CASE WHEN bad IS NULL AND message_id IS NOT NULL THEN row_number() OVER (
                    PARTITION BY bad IS NULL AND message_id IS NOT NULL, message_id
                    ORDER BY csw_ts(received_at) NULLS LAST, _source_file, _source_row) END AS copy,
                first_value(_source_file || ' row ' || _source_row) OVER (
                    PARTITION BY bad IS NULL AND message_id IS NOT NULL, message_id
                    ORDER BY csw_ts(received_at) NULLS LAST, _source_file, _source_row) AS kept
            FROM calls
        )
        SELECT * EXCLUDE (copy, kept), CASE
            WHEN bad IS NOT NULL THEN 'R:' || bad
            WHEN message_id IS NULL THEN
                'R:messageId: missing (Segment sets one on every call; without it a retried call'
                || ' cannot be told from a new one)'
            WHEN copy > 1 THEN 'X:duplicate messageId ' || message_id || ': the copy in '
                || kept || ' is kept'
            WHEN source_table IN ({", ".join(quote(t) for t in NOT_READ_TYPES)}) THEN
                'X:' || call_type || ' calls are not read (only track, identify and group)'
            {bad_timestamp("timestamp", "ts").replace("THEN", "THEN 'R:' ||", 1)}
            {bad_timestamp("originalTimestamp", "original_ts").replace("THEN", "THEN 'R:' ||", 1)}
            {bad_timestamp("sentAt", "sent_at").replace("THEN", "THEN 'R:' ||", 1)}
            {bad_timestamp("receivedAt", "received_at").replace("THEN", "THEN 'R:' ||", 1)}
            WHEN occ IS NULL THEN 'R:timestamp: missing, and receivedAt - (sentAt -'
                || ' originalTimestamp) cannot stand in for it'
            WHEN user_id IS NULL AND anonymous_id IS NULL THEN
                'R:userId and anonymousId: both missing'
            WHEN source_table = 'tracks' AND nullif(trim(event_raw), '') IS NULL THEN
                'R:event: missing'
            WHEN source_table = 'tracks' AND nullif(seg_event_name(event_raw), '') IS NULL THEN
                'R:event: ' || event_raw || ' has no letters or digits'
            {groups_rule}
            WHEN source_table IN ('identifies', 'groups') AND user_id IS NULL THEN
                'X:' || call_type || ' without userId (anonymous traits): not read'
            WHEN source_table = 'identifies' AND t_role IS NOT NULL AND seg_role(t_role) IS NULL
                THEN 'R:traits.{m.role_trait}: ' || t_role || ' is not admin, member or viewer;'
                || ' map it in role_map'
            {bad_timestamp(f"traits.{m.created_at_trait}", "t_created").replace("THEN", "THEN 'R:' ||", 1)}
            {bad_timestamp(f"traits.{m.deprovisioned_at_trait}", "t_deprov").replace("THEN", "THEN 'R:' ||", 1)}
        END AS verdict
        FROM t
        """
    )


def _anonymous(con: duckdb.DuckDBPyConnection, m: SegmentMapping) -> None:
    """``track_users``: usable tracks with their user (``eff_user``), anonymous ones linked
    or decided."""
    link = (
        """SELECT anonymous_id, arg_min(user_id, (occ, _source_file, _source_row)) AS linked
           FROM decided WHERE verdict IS NULL AND user_id IS NOT NULL
             AND anonymous_id IS NOT NULL GROUP BY anonymous_id"""
        if m.anonymous == "map"
        else "SELECT NULL::VARCHAR AS anonymous_id, NULL::VARCHAR AS linked WHERE false"
    )
    why = (
        "'X:anonymous event (no userId) whose anonymousId never appears with a userId"
        " (no identify links it)'"
        if m.anonymous == "map"
        else "'X:anonymous event (no userId); anonymous: skip (set anonymous: map to link it"
        " through a later identify)'"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE track_users AS
        WITH link AS ({link})
        SELECT d.*, coalesce(d.user_id, link.linked) AS eff_user,
               CASE WHEN coalesce(d.user_id, link.linked) IS NULL THEN {why} END AS anon_verdict
        FROM decided d LEFT JOIN link ON d.user_id IS NULL AND link.anonymous_id = d.anonymous_id
        WHERE d.source_table = 'tracks' AND d.verdict IS NULL
        """
    )


def _accounts(con: duckdb.DuckDBPyConnection, m: SegmentMapping) -> None:
    """``out_events`` and the verdicts of tracks without an account."""
    if m.account_source == "trait":
        calls = """SELECT user_id, occ AS at_ts, t_account AS account FROM decided
                   WHERE source_table = 'identifies' AND verdict IS NULL
                     AND t_account IS NOT NULL"""
        missing = (
            f"'no identify of this user has trait {' / '.join(m.account_traits)}"
            f"{' and the event has no context.groupId' if m.use_context_group_id else ''};"
            " add the trait, or set account_traits or account_source: group'"
        )
    else:
        calls = """SELECT user_id, occ AS at_ts, group_id AS account FROM decided
                   WHERE source_table = 'groups' AND verdict IS NULL"""
        missing = (
            f"'the user has no group call{' and the event no context.groupId' if m.use_context_group_id else ''};"
            " send group calls, or set account_source: trait'"
        )
    context = "t.ctx_group_id" if m.use_context_group_id else "NULL"
    con.execute(f"CREATE OR REPLACE TABLE account_calls AS {calls}")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE tracks_resolved AS
        WITH first_account AS (
            SELECT user_id, arg_min(account, at_ts) AS account FROM account_calls GROUP BY user_id
        ), asof_account AS (
            SELECT t._source_file, t._source_row, a.account
            FROM track_users t ASOF JOIN account_calls a
              ON a.user_id = t.eff_user AND t.occ >= a.at_ts
            WHERE t.anon_verdict IS NULL
        )
        SELECT t.*, coalesce({context}, aa.account, fa.account) AS account_id,
               CASE WHEN t.anon_verdict IS NOT NULL THEN t.anon_verdict
                    WHEN coalesce({context}, aa.account, fa.account) IS NULL THEN
                        'R:userId ' || t.eff_user || ': no account: ' || {missing}
               END AS final_verdict
        FROM track_users t
        LEFT JOIN asof_account aa USING (_source_file, _source_row)
        LEFT JOIN first_account fa ON fa.user_id = t.eff_user
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE out_events AS
        SELECT trim(message_id) AS event_id, account_id, eff_user AS user_id,
               seg_event_name(event_raw) AS event_name, occ AS occurred_at, properties,
               _source_file, _source_row, message_id AS source_id
        FROM tracks_resolved WHERE final_verdict IS NULL
        """
    )


def _users(con: duckdb.DuckDBPyConnection, m: SegmentMapping) -> None:
    """``user_rows``: one per user with its verdict; ``out_users``: the written ones."""
    if m.account_source == "trait":
        account = (
            "arg_max(t_account, occ) FILTER (source_table = 'identifies' AND t_account IS NOT NULL)"
        )
    else:
        account = "arg_max(group_id, occ) FILTER (source_table = 'groups')"
    default_role = quote(m.default_role) if m.default_role else "NULL"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE user_rows AS
        WITH ok AS (
            SELECT user_id, source_table, occ, t_account, t_role, t_created, t_deprov, group_id
            FROM decided WHERE verdict IS NULL AND source_table IN ('identifies', 'groups')
            UNION ALL
            SELECT eff_user, 'tracks', occ, NULL, NULL, NULL, NULL, NULL
            FROM tracks_resolved WHERE final_verdict IS NULL
        ), ev AS (
            SELECT user_id, arg_max(account_id, occurred_at) AS event_account
            FROM out_events GROUP BY user_id
        ), u AS (
            SELECT user_id,
                   {account} AS call_account,
                   arg_max(seg_role(t_role), occ) FILTER (t_role IS NOT NULL) AS role,
                   min(csw_ts(t_created)) AS created,
                   min(occ) AS first_seen,
                   arg_max(csw_ts(t_deprov), occ) FILTER (t_deprov IS NOT NULL) AS deprovisioned,
                   max(occ) FILTER (source_table <> 'tracks') AS last_identified
            FROM ok GROUP BY user_id
        )
        SELECT u.user_id, coalesce(u.call_account, ev.event_account) AS account_id,
               coalesce(u.role, {default_role}) AS role,
               coalesce(u.created, u.first_seen) AS provisioned_at,
               u.created IS NOT NULL AS from_trait, u.deprovisioned AS deprovisioned_at,
               coalesce(u.last_identified, coalesce(u.created, u.first_seen)) AS updated_at,
               CASE WHEN coalesce(u.call_account, ev.event_account) IS NULL THEN
                        'user ' || u.user_id || ': no account (no identify trait '
                        || {quote(" / ".join(m.account_traits))} || ', group call or event with'
                        || ' an account)'
                    WHEN coalesce(u.role, {default_role}) IS NULL THEN 'user ' || u.user_id
                        || ': no traits.{m.role_trait} and no default_role'
                    WHEN u.deprovisioned < coalesce(u.created, u.first_seen) THEN 'user '
                        || u.user_id || ': traits.{m.deprovisioned_at_trait} is before it was'
                        || ' created'
               END AS user_verdict
        FROM u LEFT JOIN ev USING (user_id)
        """
    )
    con.execute(
        """CREATE OR REPLACE TABLE out_users AS
           SELECT * EXCLUDE (user_verdict, from_trait) FROM user_rows WHERE user_verdict IS NULL"""
    )


def _account(
    con: duckdb.DuckDBPyConnection, form: str, event_tables: list[str]
) -> list[SourceTable]:
    """Record every source row's disposition and lineage; the tables to count."""
    # the readable-call verdicts (rejected or excluded before any resolution)
    present = [
        r[0] for r in con.execute("SELECT DISTINCT source_table FROM calls ORDER BY 1").fetchall()
    ]
    for name in present:
        core.record(
            con,
            name,
            f"""SELECT _source_file, _source_row, message_id,
                       CASE WHEN starts_with(verdict, 'R:') THEN 'rejected' ELSE 'excluded' END,
                       verdict[3:]
                FROM decided WHERE source_table = {quote(name)} AND verdict IS NOT NULL""",
        )
    core.record(
        con,
        "tracks",
        """SELECT _source_file, _source_row, message_id,
                  CASE WHEN starts_with(final_verdict, 'R:') THEN 'rejected' ELSE 'excluded' END,
                  final_verdict[3:]
           FROM tracks_resolved WHERE final_verdict IS NOT NULL""",
    )
    if "tracks" in present:
        core.record_lineage(
            con,
            "events",
            "tracks",
            "SELECT event_id, _source_file, _source_row, source_id FROM out_events",
        )
    for name in ("identifies", "groups"):
        if name not in present:
            continue
        core.record(
            con,
            name,
            f"""SELECT d._source_file, d._source_row, d.message_id, 'rejected', u.user_verdict
                FROM decided d JOIN user_rows u USING (user_id)
                WHERE d.source_table = {quote(name)} AND d.verdict IS NULL
                  AND u.user_verdict IS NOT NULL""",
        )
        core.record_lineage(
            con,
            "users",
            name,
            f"""SELECT d.user_id, d._source_file, d._source_row, d.message_id
                FROM decided d JOIN out_users u USING (user_id)
                WHERE d.source_table = {quote(name)} AND d.verdict IS NULL""",
        )
    tables = []
    for name in present:
        con.execute(
            f"""CREATE OR REPLACE VIEW "src_{name}" AS SELECT _source_file, _source_row
                FROM calls WHERE source_table = {quote(name)}"""
        )
        tables.append(_source_table(con, name))
    for name in event_tables:
        con.execute(
            f"""CREATE OR REPLACE VIEW "src_{name}" AS SELECT _source_file, _source_row,
                       trim(CAST(id AS VARCHAR)) AS id FROM "wh_{name}" """
        )
        core.record_lineage(
            con,
            "events",
            name,
            f"""SELECT o.event_id, s._source_file, s._source_row, s.id
                FROM "src_{name}" s JOIN out_events o ON o.event_id = s.id""",
        )
        core.record(
            con,
            name,
            f"""SELECT s._source_file, s._source_row, s.id,
                       CASE WHEN c.message_id IS NULL THEN 'rejected' ELSE 'excluded' END,
                       CASE WHEN c.message_id IS NULL THEN 'id: ' || coalesce(s.id, 'missing')
                                || ' is not in the tracks table (the event itself)'
                            ELSE 'its tracks row was not written (see that row)' END
                FROM "src_{name}" s
                LEFT JOIN (SELECT DISTINCT message_id FROM calls
                           WHERE source_table = 'tracks') c ON c.message_id = s.id""",
        )
        tables.append(_source_table(con, name))
    return tables


def _source_table(con: duckdb.DuckDBPyConnection, name: str) -> SourceTable:
    files = tuple(
        r[0]
        for r in con.execute(
            f'SELECT DISTINCT _source_file FROM "src_{name}" ORDER BY 1'
        ).fetchall()
    )
    row = con.execute(f'SELECT count(*) FROM "src_{name}"').fetchone()
    return SourceTable(name, files, (), int(row[0]) if row else 0)


def _write_events(
    con: duckdb.DuckDBPyConnection, landing: Path, m: SegmentMapping
) -> tuple[list[Path], int]:
    """``<landing>/product/events/<stem>-<YYYY-MM-DD>.parquet``, one per UTC day of
    ``occurred_at`` (as the synthetic generator writes them); earlier files of this stem go."""
    schema = contract_table("events")
    folder = landing / schema.system / schema.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{m.file_stem}-*.parquet"):
        old.unlink()
    staging = landing / core.REPORT_DIR / SYSTEM / "_events_staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    con.execute(
        f"""COPY (SELECT event_id, account_id, user_id, event_name,
                         CAST(occurred_at AS TIMESTAMPTZ) AS occurred_at,
                         CAST(properties AS VARCHAR) AS properties,
                         strftime(occurred_at, '%Y-%m-%d') AS day
                  FROM out_events ORDER BY occurred_at, event_id)
            TO '{staging}' (FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd)"""
    )
    files = []
    for part in sorted(staging.glob("day=*")):
        day = part.name.removeprefix("day=")
        for i, f in enumerate(sorted(part.glob("*.parquet"))):
            target = folder / f"{m.file_stem}-{day}{'' if i == 0 else f'-{i}'}.parquet"
            f.rename(target)
            files.append(target)
    shutil.rmtree(staging)
    row = con.execute("SELECT count(*) FROM out_events").fetchone()
    return files, int(row[0]) if row else 0


def _details(con: duckdb.DuckDBPyConnection, m: SegmentMapping, form: str) -> dict[str, str]:
    row = con.execute(
        "SELECT count(*) FILTER (from_trait), count(*) FILTER (NOT from_trait) FROM user_rows"
        " WHERE user_verdict IS NULL"
    ).fetchone()
    anon = con.execute(
        "SELECT count(*) FILTER (user_id IS NULL AND eff_user IS NOT NULL),"
        " count(*) FILTER (anon_verdict IS NOT NULL) FROM track_users"
    ).fetchone()
    dup = con.execute(
        "SELECT count(*) FROM decided WHERE starts_with(verdict, 'X:duplicate messageId')"
    ).fetchone()
    assert row and anon and dup
    return {
        "account_source": m.account_source
        + (" (context.groupId first)" if m.use_context_group_id else ""),
        "users_provisioned_at": f"{m.created_at_trait} trait: {row[0]}, first seen: {row[1]}",
        "anonymous": f"{m.anonymous}: {anon[0]} events linked to a user, {anon[1]} excluded",
        "duplicates_excluded": str(dup[0]),
    }


def adapt_segment(
    source: Path, landing: Path, mapping: SegmentMapping | None = None
) -> AdaptResult:
    """Map the Segment calls under ``source`` to contract product files under ``landing``.

    Writes ``<landing>/product/users/<file_stem>.<csv|parquet>``,
    ``<landing>/product/events/<file_stem>-<day>.parquet`` and ``<landing>/_adapters/segment/``
    ``_rejects.csv``, ``_lineage.csv``, ``_result.json``. Raises
    :class:`adapters.core.AdapterInputError` when the source cannot be read at all (nothing is
    written then). ``result.ok`` is False when any source row was rejected.
    """
    m = mapping or SegmentMapping()
    form = detect_form(source)
    con = duckdb.connect()
    try:
        core.start_accounting(con)
        _macros(con, m)
        event_tables: list[str] = []
        not_read: list[str] = []
        if form == "s3_json":
            read_json_calls(con, source, m)
        else:
            props, not_read = read_warehouse_calls(con, source, m)
            event_tables = sorted(props)
        _decide(con, m)
        _anonymous(con, m)
        _accounts(con, m)
        _users(con, m)
        tables = _account(con, form, event_tables)
        accounts = core.close_accounting(con, tables)
        users_path, n_users = core.write_contract_table(
            con, contract_table("users"), "out_users", landing, m.file_stem, m.output_format
        )
        event_files, n_events = _write_events(con, landing, m)
        rejects, lineage = core.write_reports(con, landing, SYSTEM)
        details = _details(con, m, form) | {"tables_not_read": ", ".join(not_read) or "none"}
    finally:
        con.close()
    result = AdaptResult(
        system=SYSTEM,
        source=source,
        landing=landing,
        source_format=form,
        accounts=tuple(accounts),
        contract_rows={"product/users": n_users, "product/events": n_events},
        files_written=(users_path, *event_files),
        rejects_file=rejects,
        lineage_file=lineage,
        details=details,
    )
    core.write_result_json(result)
    return result
