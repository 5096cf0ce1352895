"""Salesforce -> contract v1 CRM tables (accounts, contacts, opportunities, activities,
support_tickets, and nps_responses when the mapping names a custom object).

Objects read: Account, Contact, OpportunityContactRole, Opportunity, Task, Event, Case, User
(to resolve owner ids), and the NPS object of the mapping. Table files may carry Fivetran's
names (``opportunity_contact_role``, snake_case columns, ``_fivetran_synced``, history mode's
``_fivetran_active``) or the API names of a Data Loader / Bulk API export
(``OpportunityContactRole.csv``, ``AccountId``); both are matched loosely (``adapters.crm.norm``).
``docs/adapters.md`` says how each contract column is derived.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from adapters import core, crm
from adapters.core import AdaptResult, SourceTable, quote
from adapters.crm import (
    bad_ts,
    build_contract,
    canon_select,
    col,
    date_sql,
    in_map_sql,
    join_parent,
    map_keys,
    map_sql,
    missing,
    parent_checks,
    parent_status,
    required_field,
)
from adapters.salesforce.mapping import ROLES, SalesforceMapping

SYSTEM = "salesforce"
OBJECTS = {
    "account": ("account",),
    "contact": ("contact",),
    "opportunity": ("opportunity",),
    "ocr": ("opportunity_contact_role",),
    "task": ("task",),
    "event": ("event",),
    "case": ("case",),
    "user": ("user",),
}

Tables = dict[str, SourceTable | None]


def _updated(t: SourceTable) -> str:
    return (
        f"csw_ts(coalesce({col(t, 'SystemModstamp')}, {col(t, 'LastModifiedDate')},"
        f" {col(t, '_fivetran_synced')}, {col(t, 'CreatedDate')}))"
    )


def _map_reject(
    label: str, expr: str, mapping: dict[str, str | None], name: str
) -> tuple[str, str]:
    return (
        f"{expr} IS NOT NULL AND NOT {in_map_sql(expr, mapping)}",
        f"'{label}: ' || {expr} || ' is not in {name} ({map_keys(mapping)}); add it to the"
        f" mapping''s {name}'",
    )


def _common() -> tuple[str, str]:
    return ("_common_excl IS NOT NULL", "_common_excl")


# --- accounts -----------------------------------------------------------------------------------


def _users(con: duckdb.DuckDBPyConnection, m: SalesforceMapping, t: Tables) -> None:
    user = t["user"]
    value = (
        required_field(user, "owner_user_field", m.owner_user_field) if user is not None else "NULL"
    )
    source = (
        f"""SELECT DISTINCT ON (trim(id)) trim(id) AS u_id, {value} AS u_value
            FROM "{user.sql_name}" ORDER BY trim(id), {crm.active_sql(user)} DESC,
                 _source_file DESC, _source_row DESC"""
        if user is not None
        else "SELECT CAST(NULL AS VARCHAR) AS u_id, CAST(NULL AS VARCHAR) AS u_value WHERE false"
    )
    con.execute(f"CREATE OR REPLACE TABLE sf_user AS {source}")


def _accounts(con: duckdb.DuckDBPyConnection, m: SalesforceMapping, t: Tables) -> None:
    a = t["account"]
    if a is None:
        raise core.AdapterInputError(
            "no Account table (account.csv, Account.csv, account/...) in the source: the CRM"
            " tables all hang off accounts. Export the Account object and run again."
        )
    owner = required_field(a, "owner_field", m.owner_field)
    segment = required_field(a, "segment_field", m.segment_field)
    region = required_field(a, "region_field", m.region_field) if m.region_field else "NULL"
    lookup = m.owner_lookup
    relation = canon_select(
        a,
        "account",
        {
            "id": col(a, "Id"),
            "name": col(a, "Name"),
            "segment": segment,
            "industry": col(a, m.industry_field),
            "region": region,
            "owner": owner,
            "owner_value": "u.u_value" if lookup else owner,
            "owner_found": "u.u_id IS NOT NULL" if lookup else "true",
            "created": col(a, "CreatedDate"),
            "updated": _updated(a),
        },
        f"LEFT JOIN sf_user u ON u.u_id = {owner}" if lookup else "",
    )
    no_users = t["user"] is None and lookup
    build_contract(
        con,
        "accounts",
        relation,
        [a],
        {
            "account_id": "id",
            "name": "name",
            "segment": map_sql("segment", m.segment_map),
            "industry": "industry",
            "region": "lower(region)",
            "owner": "owner_value",
            "created_at": "csw_ts(created)",
            "updated_at": "updated",
        },
        [_common()],
        [
            missing("Id", "id"),
            missing("Name", "name"),
            missing(
                m.segment_field,
                "segment",
                "; set it in Salesforce, or point segment_field at the field with the segment",
            ),
            _map_reject(m.segment_field, "segment", m.segment_map, "segment_map"),
            (
                f"segment IS NOT NULL AND {map_sql('segment', m.segment_map)} IS NULL",
                f"'{m.segment_field}: ' || segment || ' maps to nothing in segment_map'",
            ),
            missing("CreatedDate", "created"),
            bad_ts("CreatedDate", "created"),
            (
                f"owner IS NOT NULL AND {'true' if no_users else 'false'}",
                quote(
                    f"{m.owner_field}: no User table to resolve the user id; export the User"
                    " object, or set owner_lookup: false to keep the id"
                ),
            ),
            (
                "owner IS NOT NULL AND NOT owner_found",
                f"'{m.owner_field}: user ' || owner || ' is not in the User table'",
            ),
        ],
        "id",
        "_active",
    )
    parent_status(con, "accounts")
    crm.account_lookup(
        con,
        t["user"],
        "trim(l.id)",
        f"""SELECT trim(c.owner), 'accounts', c.o_account_id FROM chk_accounts c
            WHERE c.rn = 1 AND {"true" if lookup else "false"}""",
        "user",
    )


# --- contacts -----------------------------------------------------------------------------------


def _ocr_roles(con: duckdb.DuckDBPyConnection, m: SalesforceMapping, t: Tables) -> None:
    """``sf_ocr``: every OpportunityContactRole row with its mapped role and whether it is the
    one that gives its contact's role (primary first, then the latest)."""
    r = t["ocr"]
    if r is None or m.contact_role_field:
        con.execute(
            "CREATE OR REPLACE TABLE sf_ocr AS SELECT CAST(NULL AS VARCHAR) AS contact_key,"
            " CAST(NULL AS VARCHAR) AS role, false AS chosen WHERE false"
        )
        return
    con.execute(
        f"""
        CREATE OR REPLACE TABLE sf_ocr AS
        WITH c AS ({
            canon_select(
                r,
                "contact role",
                {
                    "id": col(r, "Id"),
                    "contact_key": col(r, "ContactId"),
                    "role_value": col(r, "Role"),
                    "is_primary": f"coalesce(csw_bool({col(r, 'IsPrimary')}), false)",
                    "updated": _updated(r),
                },
            )
        }),
        m AS (SELECT *, {map_sql("role_value", m.role_map)} AS role,
                     {in_map_sql("role_value", m.role_map)} AS known FROM c)
        SELECT *, _common_excl IS NULL AND known AND role IS NOT NULL
                  AND row_number() OVER (
                      PARTITION BY contact_key, _common_excl IS NULL AND known
                                   AND role IS NOT NULL
                      ORDER BY is_primary DESC, updated DESC NULLS LAST, _source_row DESC) = 1
               AS chosen
        FROM m
        """
    )


def _record_ocr(con: duckdb.DuckDBPyConnection, m: SalesforceMapping, t: Tables) -> None:
    r = t["ocr"]
    if r is None:
        return
    if m.contact_role_field:
        core.record(
            con,
            r.name,
            f"""SELECT _source_file, _source_row, id, 'excluded',
                       'roles come from the contact field {m.contact_role_field}
                        (contact_role_field)' FROM "{r.sql_name}" """,
        )
        return
    core.record(
        con,
        r.name,
        f"""SELECT _source_file, _source_row, id,
                   CASE WHEN _common_excl IS NULL AND role_value IS NOT NULL AND NOT known
                        THEN 'rejected' ELSE 'excluded' END,
                   coalesce(_common_excl,
                            CASE WHEN role_value IS NULL THEN 'Role: missing'
                                 WHEN NOT known THEN 'Role: ' || role_value || ' is not in'
                                    || ' role_map ({map_keys(m.role_map)}); add it to the mapping'
                                 WHEN role IS NULL THEN 'Role: ' || role_value
                                    || ' maps to nothing in role_map' END)
            FROM sf_ocr WHERE _common_excl IS NOT NULL OR NOT known OR role IS NULL""",
    )
    core.record_lineage(
        con,
        "contacts",
        r.name,
        """SELECT o.contact_id, s._source_file, s._source_row, s.id FROM sf_ocr s
           JOIN out_contacts o ON o.contact_id = s.contact_key WHERE s.chosen""",
    )
    core.record(
        con,
        r.name,
        """SELECT _source_file, _source_row, id, 'excluded',
                  CASE WHEN chosen THEN 'its contact ' || coalesce(contact_key, '(none)')
                                   || ' is not written'
                       ELSE 'another role row of the contact gives its role (primary first,'
                            || ' then the latest)' END
           FROM sf_ocr""",
    )


def _contacts(con: duckdb.DuckDBPyConnection, m: SalesforceMapping, t: Tables) -> None:
    c = t["contact"]
    _ocr_roles(con, m, t)
    if c is None:
        con.execute("CREATE OR REPLACE TABLE out_contacts AS SELECT * FROM (SELECT 1) WHERE false")
        return
    role_field = (
        required_field(c, "contact_role_field", m.contact_role_field)
        if m.contact_role_field
        else "NULL"
    )

    def opt(label: str, name: str | None) -> str:
        return required_field(c, label, name) if name else "CAST(NULL AS VARCHAR)"

    relation = canon_select(
        c,
        "contact",
        {
            "id": col(c, "Id"),
            "account_key": col(c, "AccountId"),
            "email": col(c, "Email"),
            "title": col(c, "Title"),
            "role_value": role_field,
            "ocr_role": "r.role",
            "started": opt("contact_started_field", m.contact_started_field),
            "ended": opt("contact_ended_field", m.contact_ended_field),
            "active_value": opt("contact_active_field", m.contact_active_field),
            "created": col(c, "CreatedDate"),
            "updated": _updated(c),
            "pa_status": "pa.p_status",
            "pa_reason": "pa.p_reason",
        },
        f"""{join_parent("accounts", "pa", col(c, "AccountId"))}
            LEFT JOIN (SELECT contact_key, role FROM sf_ocr WHERE chosen) r
              ON r.contact_key = {col(c, "Id")}""",
    )
    fallback = quote(m.missing_role) if m.missing_role else "NULL"
    role = (
        f"coalesce({map_sql('role_value', m.role_map)}, CASE WHEN role_value IS NULL"
        f" THEN {fallback} END)"
        if m.contact_role_field
        else f"coalesce(ocr_role, {fallback})"
    )
    p_excl, p_rej = parent_checks("pa", "account_key", "AccountId", "account", "Account")
    role_label = m.contact_role_field or "role (OpportunityContactRole)"
    started = f"{date_sql('started')}" if m.contact_started_field else date_sql("created")
    active = "csw_bool(active_value)" if m.contact_active_field else f"{date_sql('ended')} IS NULL"
    build_contract(
        con,
        "contacts",
        relation,
        [c],
        {
            "contact_id": "id",
            "account_id": "account_key",
            "email": "email",
            "title": "title",
            "role": role,
            "is_active": active,
            "started_at": started,
            "ended_at": date_sql("ended"),
            "updated_at": "updated",
        },
        [_common(), *p_excl],
        [
            missing("Id", "id"),
            *p_rej,
            _map_reject(role_label, "role_value", m.role_map, "role_map"),
            (
                "o_role IS NULL",
                quote(f"{role_label}: no role (set missing_role, or give the contact a role)"),
            ),
            bad_ts(
                m.contact_started_field or "CreatedDate",
                "started" if m.contact_started_field else "created",
            ),
            bad_ts(m.contact_ended_field or "ended", "ended"),
            (
                "active_value IS NOT NULL AND csw_bool(active_value) IS NULL",
                f"'{m.contact_active_field}: ' || active_value || ' is not true or false'",
            ),
            (
                "o_ended_at < o_started_at",
                "'ended ' || o_ended_at || ' is before started ' || o_started_at",
            ),
        ],
        "id",
        "_active",
    )
    parent_status(con, "contacts")


# --- opportunities ------------------------------------------------------------------------------


def _opportunities(con: duckdb.DuckDBPyConnection, m: SalesforceMapping, t: Tables) -> None:
    o = t["opportunity"]
    if o is None:
        return
    start = (
        required_field(o, "contract_start_field", m.contract_start_field)
        if m.contract_start_field
        else "NULL"
    )
    end = (
        required_field(o, "contract_end_field", m.contract_end_field)
        if m.contract_end_field
        else "NULL"
    )
    relation = canon_select(
        o,
        "opportunity",
        {
            "id": col(o, "Id"),
            "account_key": col(o, "AccountId"),
            "type_value": col(o, "Type"),
            "stage_name": col(o, "StageName"),
            "is_closed": f"csw_bool({col(o, 'IsClosed')})",
            "is_won": f"csw_bool({col(o, 'IsWon')})",
            "amount": required_field(o, "amount_field", m.amount_field),
            "currency": f"upper(coalesce({col(o, 'CurrencyIsoCode')},"
            f" {quote(m.default_currency) if m.default_currency else 'NULL'}))",
            "close": col(o, "CloseDate"),
            "c_start": start,
            "c_end": end,
            "updated": _updated(o),
            "pa_status": "pa.p_status",
            "pa_reason": "pa.p_reason",
        },
        join_parent("accounts", "pa", col(o, "AccountId")),
    )
    stage = (
        f"coalesce({map_sql('stage_name', m.stage_map)}, CASE WHEN is_won THEN 'closed_won'"
        " WHEN is_closed THEN 'closed_lost' WHEN NOT is_closed THEN 'open' END)"
    )
    p_excl, p_rej = parent_checks("pa", "account_key", "AccountId", "account", "Account")
    amount = crm.amount_rules(m.missing_amount, m.amount_field, "amount")
    build_contract(
        con,
        "opportunities",
        relation,
        [o],
        {
            "opportunity_id": "id",
            "account_id": "account_key",
            "type": map_sql("type_value", m.type_map),
            "stage": stage,
            "amount": amount.value,
            "currency": "currency",
            "close_date": date_sql("close"),
            "contract_start_date": date_sql("c_start"),
            "contract_end_date": date_sql("c_end"),
            "updated_at": "updated",
        },
        [_common(), *p_excl, *amount.excluded],
        [
            missing("Id", "id"),
            *p_rej,
            missing("Type", "type_value", "; set the opportunity type, or map it in type_map"),
            _map_reject("Type", "type_value", m.type_map, "type_map"),
            (
                "o_stage IS NULL",
                "'StageName: ' || coalesce(stage_name, 'missing') || ' is not in stage_map and"
                " the row has no IsClosed/IsWon to tell open from won or lost'",
            ),
            *amount.rejected,
            missing(
                "CurrencyIsoCode",
                "currency",
                " (a single-currency org has none: set default_currency in the mapping)",
            ),
            bad_ts("CloseDate", "close"),
            bad_ts(m.contract_start_field or "start", "c_start"),
            bad_ts(m.contract_end_field or "end", "c_end"),
        ],
        "id",
        "_active",
    )


# --- activities ---------------------------------------------------------------------------------


def _activities(con: duckdb.DuckDBPyConnection, m: SalesforceMapping, t: Tables) -> None:
    selects, sources = [], []
    for name, when in (
        ("event", ("ActivityDateTime", "StartDateTime", "ActivityDate")),
        ("task", ("CompletedDateTime", "ActivityDate")),
    ):
        s = t[name]
        if s is None:
            continue
        sources.append(s)
        attended = (
            required_field(s, "attended_field", m.attended_field) if m.attended_field else "NULL"
        )
        selects.append(
            canon_select(
                s,
                name,
                {
                    "id": col(s, "Id"),
                    "account_key": col(s, "AccountId"),
                    "type_value": required_field(s, "activity_type_field", m.activity_type_field),
                    "occurred": f"coalesce({', '.join(col(s, w) for w in when)})",
                    "attended_value": attended,
                    "updated": _updated(s),
                    "pa_status": "pa.p_status",
                    "pa_reason": "pa.p_reason",
                },
                join_parent("accounts", "pa", col(s, "AccountId")),
            )
        )
    if not selects:
        return
    mp = m.activity_type_map
    unknown = (
        f"type_value IS NULL OR NOT {in_map_sql('type_value', mp)}",
        f"'{m.activity_type_field}: ' || coalesce(type_value, 'missing') || ' is not in"
        f" activity_type_map ({map_keys(mp)})'",
    )
    p_excl, p_rej = parent_checks("pa", "account_key", "AccountId", "account", "Account")
    build_contract(
        con,
        "activities",
        " UNION ALL BY NAME ".join(selects),
        sources,
        {
            "activity_id": "id",
            "account_id": "account_key",
            "type": map_sql("type_value", mp),
            "occurred_at": "csw_ts(occurred)",
            "attended": "csw_bool(attended_value)",
            "updated_at": "updated",
        },
        [
            _common(),
            (
                f"type_value IS NOT NULL AND {in_map_sql('type_value', mp)} AND o_type IS NULL",
                f"'{m.activity_type_field}: ' || type_value || ' is not a customer-success"
                " meeting (activity_type_map maps it to null)'",
            ),
            *([unknown] if m.unmapped_activity == "exclude" else []),
            *p_excl,
        ],
        [
            missing("Id", "id"),
            *([unknown] if m.unmapped_activity == "reject" else []),
            *p_rej,
            missing("ActivityDateTime/ActivityDate", "occurred"),
            bad_ts("ActivityDateTime/ActivityDate", "occurred"),
            (
                "attended_value IS NOT NULL AND csw_bool(attended_value) IS NULL",
                f"'{m.attended_field}: ' || attended_value || ' is not true or false'",
            ),
        ],
        "id",
        "_active",
    )


# --- support tickets ----------------------------------------------------------------------------


def _cases(con: duckdb.DuckDBPyConnection, m: SalesforceMapping, t: Tables) -> None:
    c = t["case"]
    if c is None:
        return
    relation = canon_select(
        c,
        "case",
        {
            "id": col(c, "Id"),
            "account_key": col(c, "AccountId"),
            "created": col(c, "CreatedDate"),
            "closed": col(c, "ClosedDate"),
            "priority": col(c, "Priority"),
            "status": col(c, "Status"),
            "updated": _updated(c),
            "pa_status": "pa.p_status",
            "pa_reason": "pa.p_reason",
        },
        join_parent("accounts", "pa", col(c, "AccountId")),
    )
    p_excl, p_rej = parent_checks("pa", "account_key", "AccountId", "account", "Account")
    build_contract(
        con,
        "support_tickets",
        relation,
        [c],
        {
            "ticket_id": "id",
            "account_id": "account_key",
            "created_at": "csw_ts(created)",
            "resolved_at": "csw_ts(closed)",
            "severity": map_sql("priority", m.priority_map),
            "status": map_sql("status", m.case_status_map),
            "updated_at": "updated",
        },
        [_common(), *p_excl],
        [
            missing("Id", "id"),
            *p_rej,
            missing("CreatedDate", "created"),
            bad_ts("CreatedDate", "created"),
            bad_ts("ClosedDate", "closed"),
            missing("Priority", "priority"),
            _map_reject("Priority", "priority", m.priority_map, "priority_map"),
            ("o_severity IS NULL", "'Priority: ' || priority || ' maps to nothing'"),
            missing("Status", "status"),
            _map_reject("Status", "status", m.case_status_map, "case_status_map"),
            ("o_status IS NULL", "'Status: ' || status || ' maps to nothing'"),
            (
                "o_resolved_at < o_created_at",
                "'ClosedDate ' || closed || ' is before CreatedDate ' || created",
            ),
        ],
        "id",
        "_active",
    )


# --- NPS ----------------------------------------------------------------------------------------


def _nps(con: duckdb.DuckDBPyConnection, m: SalesforceMapping, t: Tables) -> None:
    n = t.get("nps")
    if n is None:
        return
    relation = canon_select(
        n,
        "NPS response",
        {
            "id": col(n, "Id"),
            "account_key": required_field(n, "nps_account_field", m.nps_account_field),
            "contact_key": required_field(n, "nps_contact_field", m.nps_contact_field),
            "score": required_field(n, "nps_score_field", m.nps_score_field),
            "responded": required_field(n, "nps_responded_field", m.nps_responded_field),
            "comment": col(n, m.nps_comment_field),
            "pa_status": "pa.p_status",
            "pa_reason": "pa.p_reason",
            "pc_status": "pc.p_status",
            "pc_reason": "pc.p_reason",
        },
        f"""{join_parent("accounts", "pa", col(n, m.nps_account_field))}
            {join_parent("contacts", "pc", col(n, m.nps_contact_field))}""",
    )
    a_excl, a_rej = parent_checks("pa", "account_key", m.nps_account_field, "account", "Account")
    c_excl, c_rej = parent_checks(
        "pc", "contact_key", m.nps_contact_field, "contact", "Contact", required=False
    )
    build_contract(
        con,
        "nps_responses",
        relation,
        [n],
        {
            "response_id": "id",
            "account_id": "account_key",
            "contact_id": "contact_key",
            "responded_at": "csw_ts(responded)",
            "score": "csw_int(score)",
            "comment": "comment",
        },
        [_common(), *a_excl, *c_excl],
        [
            missing("Id", "id"),
            *a_rej,
            *c_rej,
            missing(m.nps_responded_field, "responded"),
            bad_ts(m.nps_responded_field, "responded"),
            (
                "csw_int(score) IS NULL OR csw_int(score) NOT BETWEEN 0 AND 10"
                " OR csw_dec(score) <> csw_int(score)",
                f"'{m.nps_score_field}: ' || coalesce(score, 'missing')"
                " || ' is not a whole score from 0 to 10'",
            ),
        ],
        "id",
        "_active",
    )


def _tables(m: SalesforceMapping, tables: dict[str, SourceTable]) -> Tables:
    found: Tables = {k: crm.find_table(tables, *names) for k, names in OBJECTS.items()}
    if m.nps_object:
        found["nps"] = crm.find_table(tables, m.nps_object)
        if found["nps"] is None:
            raise core.AdapterInputError(
                f"the mapping names nps_object {m.nps_object!r}, but the source has no such"
                " table; export it, or remove nps_object from the mapping, and run again."
            )
    return found


def adapt_salesforce(
    source: Path, landing: Path, mapping: SalesforceMapping | None = None
) -> AdaptResult:
    """Map the Salesforce objects under ``source`` to contract CRM files under ``landing``.

    Writes ``<landing>/crm/<table>/<file_stem>.<csv|parquet>`` and the reports under
    ``<landing>/_adapters/salesforce/``. Raises :class:`adapters.core.AdapterInputError` when
    the source cannot be read or the mapping names a field the source lacks (nothing is
    written then). ``result.ok`` is False when any source row was rejected.
    """
    m = mapping or SalesforceMapping()
    if m.missing_role is not None and m.missing_role not in ROLES:
        raise ValueError(f"missing_role: {m.missing_role!r} is not one of {', '.join(ROLES)}")
    con = duckdb.connect()
    try:
        core.start_accounting(con)
        tables = core.read_source_dir(con, source)
        t = _tables(m, tables)
        _users(con, m, t)
        _accounts(con, m, t)
        _contacts(con, m, t)
        _record_ocr(con, m, t)
        _opportunities(con, m, t)
        amount_warnings = (
            crm.missing_amount_warning(con, m.amount_field) if t["opportunity"] else []
        )
        _activities(con, m, t)
        _cases(con, m, t)
        _nps(con, m, t)
        read = [s for s in t.values() if s is not None]
        accounts = core.close_accounting(con, read)
        names = [
            n
            for n in (*crm.CRM_TABLES, "nps_responses")
            if con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                [f"chk_{n}"],
            ).fetchone()[0]  # type: ignore[index]
        ]
        files, rows = crm.write_crm(con, landing, names, m.file_stem, m.output_format)
        rejects, lineage = core.write_reports(con, landing, SYSTEM)
    finally:
        con.close()
    ignored = sorted(set(tables) - {s.name for s in read})
    not_built = [f"crm/{n}" for n in (*crm.CRM_TABLES, "nps_responses") if n not in names]
    details = {
        "tables_not_read": ", ".join(ignored) or "none",
        "contact_roles_from": (
            f"contact field {m.contact_role_field}"
            if m.contact_role_field
            else "OpportunityContactRole"
        ),
        "not_written": ", ".join(not_built) or "none",
    }
    details["missing_amount"] = m.missing_amount
    warnings = list(amount_warnings)
    if "nps_responses" not in names:
        details["nps_responses"] = "not provided (no nps_object in the mapping)"
    for n in not_built:
        if n != "crm/nps_responses":
            warnings.append(f"{n}: its Salesforce object is not in the source; nothing written")
    result = AdaptResult(
        system=SYSTEM,
        source=source,
        landing=landing,
        source_format="fivetran"
        if any("_fivetran_synced" in s.columns for s in read)
        else "export",
        accounts=accounts,
        contract_rows=rows,
        files_written=tuple(files),
        rejects_file=rejects,
        lineage_file=lineage,
        warnings=tuple(warnings),
        details=details,
    )
    core.write_result_json(result)
    return result
