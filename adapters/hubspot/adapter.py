"""HubSpot -> contract v1 CRM tables (accounts, contacts, opportunities, activities,
support_tickets). NPS is not read (HubSpot's feedback surveys are not supported yet).

Tables read, in Fivetran's shape: ``company``, ``contact``, ``deal`` (+ ``deal_pipeline_stage``),
``ticket`` (+ ``ticket_pipeline_stage``), ``engagement`` + ``engagement_meeting``, ``owner``, and
the association tables ``contact_company``, ``deal_company``, ``ticket_company``,
``engagement_company``. ``docs/adapters.md`` says how each contract column is derived.
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
)
from adapters.hubspot.mapping import HubSpotMapping
from adapters.salesforce.mapping import ROLES

SYSTEM = "hubspot"
OBJECTS = (
    "company",
    "contact",
    "deal",
    "deal_pipeline_stage",
    "ticket",
    "ticket_pipeline_stage",
    "engagement",
    "engagement_meeting",
    "owner",
    "contact_company",
    "deal_company",
    "ticket_company",
    "engagement_company",
)
Tables = dict[str, SourceTable | None]


def prop(t: SourceTable | None, name: str) -> str:
    return col(t, f"property_{name}", f"properties_{name}", name)


def req_prop(t: SourceTable, label: str, name: str) -> str:
    return crm.required_field(t, label, f"property_{name}", f"properties_{name}", name)


def _updated(t: SourceTable) -> str:
    return (
        f"csw_ts(coalesce({prop(t, 'hs_lastmodifieddate')}, {prop(t, 'lastmodifieddate')},"
        f" {col(t, '_fivetran_synced')}, {prop(t, 'createdate')}))"
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


def _association(con: duckdb.DuckDBPyConnection, t: Tables, obj: str) -> str | None:
    """``hs_assoc_<obj>`` (a_key, a_company, a_count) from ``<obj>_company``; None if absent."""
    table = t[f"{obj}_company"]
    if table is None:
        return None
    key = col(table, f"{obj}_id")
    con.execute(
        f"""CREATE OR REPLACE TABLE hs_assoc_{obj} AS
            SELECT {key} AS a_key, min({col(table, "company_id")}) AS a_company,
                   count(DISTINCT {col(table, "company_id")}) AS a_count
            FROM "{table.sql_name}" GROUP BY 1"""
    )
    return f"hs_assoc_{obj}"


def _company_of(
    con: duckdb.DuckDBPyConnection,
    m: HubSpotMapping,
    t: Tables,
    obj: str,
    table: SourceTable,
    id_expr: str,
) -> tuple[dict[str, str], str, str]:
    """Canonical columns, join and the source it came from for the company of an object."""
    use_table = m.company_association in ("auto", "table") and t[f"{obj}_company"] is not None
    if use_table:
        name = _association(con, t, obj)
        return (
            {"company_key": "a.a_company", "company_count": "coalesce(a.a_count, 0)"},
            f"LEFT JOIN {name} a ON a.a_key = {id_expr}",
            f"{obj}_company table",
        )
    if m.company_association == "table" or obj != "contact":
        return (
            {"company_key": "CAST(NULL AS VARCHAR)", "company_count": "0"},
            "",
            f"{obj}_company table (missing)",
        )
    return (
        {"company_key": prop(table, "associatedcompanyid"), "company_count": "1"},
        "",
        "associatedcompanyid property",
    )


def _company_checks(source: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    excl, rej = parent_checks("pa", "company_key", "company", "company", "company")
    rej[0] = ("company_key IS NULL", quote(f"company: none associated (from the {source})"))
    rej.insert(
        1,
        (
            "company_count > 1",
            f"'company: associated with ' || company_count || ' companies in the {source};"
            " the contract needs one'",
        ),
    )
    return excl, rej


def _companies(con: duckdb.DuckDBPyConnection, m: HubSpotMapping, t: Tables) -> None:
    c = t["company"]
    if c is None:
        raise core.AdapterInputError(
            "no company table in the source: the CRM tables all hang off companies. Export"
            " HubSpot companies and run again."
        )
    owner = req_prop(c, "owner_property", m.owner_property)
    o = t["owner"]
    lookup = m.owner_lookup and o is not None
    if lookup:
        assert o is not None
        value = crm.required_field(o, "owner_field", m.owner_field)
        con.execute(
            f"""CREATE OR REPLACE TABLE hs_owner AS
                SELECT DISTINCT ON ({col(o, "owner_id", "id")}) {col(o, "owner_id", "id")}
                       AS u_id, {value} AS u_value
                FROM "{o.sql_name}" ORDER BY 1, _source_row DESC"""
        )
    relation = canon_select(
        c,
        "company",
        {
            "id": col(c, "id", "company_id"),
            "name": prop(c, "name"),
            "segment": req_prop(c, "segment_property", m.segment_property),
            "industry": prop(c, m.industry_property),
            "region": req_prop(c, "region_property", m.region_property)
            if m.region_property
            else "NULL",
            "owner": owner,
            "owner_value": "u.u_value" if lookup else owner,
            "owner_found": "u.u_id IS NOT NULL" if lookup else "true",
            "created": prop(c, "createdate"),
            "updated": _updated(c),
        },
        f"LEFT JOIN hs_owner u ON u.u_id = {owner}" if lookup else "",
    )
    seg = m.segment_property
    build_contract(
        con,
        "accounts",
        relation,
        [c],
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
            missing("id", "id"),
            missing("name", "name"),
            missing(seg, "segment", "; set it in HubSpot, or point segment_property at yours"),
            _map_reject(seg, "segment", m.segment_map, "segment_map"),
            ("o_segment IS NULL", f"'{seg}: ' || segment || ' maps to nothing'"),
            missing("createdate", "created"),
            bad_ts("createdate", "created"),
            (
                f"owner IS NOT NULL AND {'true' if m.owner_lookup and o is None else 'false'}",
                quote(
                    f"{m.owner_property}: no owner table to resolve the owner id; export"
                    " owners, or set owner_lookup: false to keep the id"
                ),
            ),
            (
                "owner IS NOT NULL AND NOT owner_found",
                f"'{m.owner_property}: owner ' || owner || ' is not in the owner table'",
            ),
        ],
        "id",
        "_active",
    )
    parent_status(con, "accounts")
    crm.account_lookup(
        con,
        o,
        col(o, "owner_id", "id").replace('"', 'l."', 1),
        "SELECT owner, 'accounts', o_account_id FROM chk_accounts WHERE rn = 1",
        "owner",
    )


def _contacts(con: duckdb.DuckDBPyConnection, m: HubSpotMapping, t: Tables) -> str:
    c = t["contact"]
    if c is None:
        return "none"
    company, join, source = _company_of(con, m, t, "contact", c, col(c, "id"))

    def opt(label: str, name: str | None) -> str:
        return req_prop(c, label, name) if name else "CAST(NULL AS VARCHAR)"

    relation = canon_select(
        c,
        "contact",
        {
            "id": col(c, "id", "contact_id"),
            **company,
            "email": prop(c, "email"),
            "title": prop(c, "jobtitle"),
            "role_value": prop(c, m.contact_role_property),
            "started": opt("contact_started_property", m.contact_started_property),
            "ended": opt("contact_ended_property", m.contact_ended_property),
            "active_value": opt("contact_active_property", m.contact_active_property),
            "created": prop(c, "createdate"),
            "updated": _updated(c),
            "pa_status": "pa.p_status",
            "pa_reason": "pa.p_reason",
        },
        f"{join} {join_parent('accounts', 'pa', 'company_key_expr')}",
    )
    relation = relation.replace("company_key_expr", company["company_key"])
    # a multi-select value ("CHAMPION;END_USER"): the first role by contract precedence
    roles = f"list_transform(string_split(role_value, ';'), lambda x: {map_sql('x', m.role_map)})"
    precedence = ", ".join(quote(r) for r in crm.ROLE_PRECEDENCE)
    best = f"list_sort(list_filter({roles}, lambda x: x IS NOT NULL), 'ASC')"
    role = (
        f"CASE WHEN role_value IS NULL THEN {quote(m.missing_role) if m.missing_role else 'NULL'}"
        f" ELSE list_filter([{precedence}], lambda r: list_contains({best}, r))[1] END"
    )
    unknown = (
        f"role_value IS NOT NULL AND NOT list_bool_and(list_transform(string_split(role_value,"
        f" ';'), lambda x: {in_map_sql('x', m.role_map)}))"
    )
    label = m.contact_role_property
    excl, rej = _company_checks(source)
    build_contract(
        con,
        "contacts",
        relation,
        [c],
        {
            "contact_id": "id",
            "account_id": "company_key",
            "email": "email",
            "title": "title",
            "role": role,
            "is_active": "csw_bool(active_value)"
            if m.contact_active_property
            else f"{date_sql('ended')} IS NULL",
            "started_at": date_sql("started")
            if m.contact_started_property
            else date_sql("created"),
            "ended_at": date_sql("ended"),
            "updated_at": "updated",
        },
        [_common(), *excl],
        [
            missing("id", "id"),
            *rej,
            (
                unknown,
                f"'{label}: ' || role_value || ' is not in role_map ({map_keys(m.role_map)});"
                " add it to the mapping'",
            ),
            ("o_role IS NULL", quote(f"{label}: no role (set missing_role)")),
            bad_ts(m.contact_started_property or "createdate", "started"),
            bad_ts(m.contact_ended_property or "ended", "ended"),
            ("o_ended_at < o_started_at", "'ended is before started'"),
        ],
        "id",
        "_active",
    )
    return source


def _deals(con: duckdb.DuckDBPyConnection, m: HubSpotMapping, t: Tables) -> None:
    d, st = t["deal"], t["deal_pipeline_stage"]
    if d is None:
        return
    stage_key = col(d, "deal_pipeline_stage_id", "property_dealstage", "dealstage")
    if st is not None:
        con.execute(
            f"""CREATE OR REPLACE TABLE hs_deal_stage AS
                SELECT DISTINCT ON ({col(st, "stage_id")}) {col(st, "stage_id")} AS s_id,
                       {col(st, "label")} AS s_label, csw_bool({col(st, "is_closed")}) AS s_closed,
                       csw_bool({col(st, "closed_won")}) AS s_won
                FROM "{st.sql_name}" ORDER BY 1, _source_row DESC"""
        )
    else:
        con.execute(
            "CREATE OR REPLACE TABLE hs_deal_stage AS SELECT NULL::VARCHAR AS s_id,"
            " NULL::VARCHAR AS s_label, NULL::BOOLEAN AS s_closed, NULL::BOOLEAN AS s_won"
            " WHERE false"
        )
    id_expr = col(d, "deal_id", "id")
    company, join, source = _company_of(con, m, t, "deal", d, id_expr)

    def opt(label: str, name: str | None) -> str:
        return req_prop(d, label, name) if name else "CAST(NULL AS VARCHAR)"

    relation = canon_select(
        d,
        "deal",
        {
            "id": id_expr,
            **company,
            "type_value": prop(d, "dealtype"),
            "stage_key": stage_key,
            "stage_label": "st.s_label",
            "is_closed": "st.s_closed",
            "is_won": "st.s_won",
            "amount": req_prop(d, "amount_property", m.amount_property),
            "currency": f"upper(coalesce({prop(d, 'deal_currency_code')},"
            f" {quote(m.default_currency) if m.default_currency else 'NULL'}))",
            "close": prop(d, "closedate"),
            "c_start": opt("contract_start_property", m.contract_start_property),
            "c_end": opt("contract_end_property", m.contract_end_property),
            "updated": _updated(d),
            "pa_status": "pa.p_status",
            "pa_reason": "pa.p_reason",
        },
        f"""{join} LEFT JOIN hs_deal_stage st ON st.s_id = {stage_key}
            {join_parent("accounts", "pa", company["company_key"])}""",
    )
    stage = (
        f"coalesce({map_sql('stage_label', m.stage_map)}, CASE WHEN is_won THEN 'closed_won'"
        " WHEN is_closed THEN 'closed_lost' WHEN NOT is_closed THEN 'open' END)"
    )
    excl, rej = _company_checks(source)
    amount = crm.amount_rules(m.missing_amount, m.amount_property, "amount")
    build_contract(
        con,
        "opportunities",
        relation,
        [d],
        {
            "opportunity_id": "id",
            "account_id": "company_key",
            "type": map_sql("type_value", m.type_map),
            "stage": stage,
            "amount": amount.value,
            "currency": "currency",
            "close_date": date_sql("close"),
            "contract_start_date": date_sql("c_start"),
            "contract_end_date": date_sql("c_end"),
            "updated_at": "updated",
        },
        [_common(), *excl, *amount.excluded],
        [
            missing("deal_id", "id"),
            *rej,
            missing("dealtype", "type_value", "; set the deal type, or map it in type_map"),
            _map_reject("dealtype", "type_value", m.type_map, "type_map"),
            (
                "o_stage IS NULL",
                "'dealstage: ' || coalesce(stage_key, 'missing') || ' is not a known stage of"
                " deal_pipeline_stage (nor in stage_map)'",
            ),
            *amount.rejected,
            missing("deal_currency_code", "currency", " (set default_currency in the mapping)"),
            bad_ts("closedate", "close"),
            bad_ts(m.contract_start_property or "start", "c_start"),
            bad_ts(m.contract_end_property or "end", "c_end"),
        ],
        "id",
        "_active",
    )
    crm.account_lookup(
        con,
        st,
        col(st, "stage_id").replace('"', 'l."', 1),
        "SELECT stage_key, 'opportunities', o_opportunity_id FROM chk_opportunities WHERE rn = 1",
        "deal stage",
    )


def _tickets(con: duckdb.DuckDBPyConnection, m: HubSpotMapping, t: Tables) -> None:
    k, st = t["ticket"], t["ticket_pipeline_stage"]
    if k is None:
        return
    stage_key = prop(k, "hs_pipeline_stage")
    if st is not None:
        con.execute(
            f"""CREATE OR REPLACE TABLE hs_ticket_stage AS
                SELECT DISTINCT ON ({col(st, "stage_id")}) {col(st, "stage_id")} AS s_id,
                       {col(st, "label")} AS s_label
                FROM "{st.sql_name}" ORDER BY 1, _source_row DESC"""
        )
    else:
        con.execute(
            "CREATE OR REPLACE TABLE hs_ticket_stage AS SELECT NULL::VARCHAR AS s_id,"
            " NULL::VARCHAR AS s_label WHERE false"
        )
    company, join, source = _company_of(con, m, t, "ticket", k, col(k, "id"))
    relation = canon_select(
        k,
        "ticket",
        {
            "id": col(k, "id", "ticket_id"),
            **company,
            "created": prop(k, "createdate"),
            "closed": prop(k, "closed_date"),
            "priority": prop(k, "hs_ticket_priority"),
            "stage_key": stage_key,
            "status": "coalesce(st.s_label, " + stage_key + ")",
            "updated": _updated(k),
            "pa_status": "pa.p_status",
            "pa_reason": "pa.p_reason",
        },
        f"""{join} LEFT JOIN hs_ticket_stage st ON st.s_id = {stage_key}
            {join_parent("accounts", "pa", company["company_key"])}""",
    )
    excl, rej = _company_checks(source)
    build_contract(
        con,
        "support_tickets",
        relation,
        [k],
        {
            "ticket_id": "id",
            "account_id": "company_key",
            "created_at": "csw_ts(created)",
            "resolved_at": "csw_ts(closed)",
            "severity": map_sql("priority", m.priority_map),
            "status": map_sql("status", m.ticket_status_map),
            "updated_at": "updated",
        },
        [_common(), *excl],
        [
            missing("id", "id"),
            *rej,
            missing("createdate", "created"),
            bad_ts("createdate", "created"),
            bad_ts("closed_date", "closed"),
            missing("hs_ticket_priority", "priority"),
            _map_reject("hs_ticket_priority", "priority", m.priority_map, "priority_map"),
            ("o_severity IS NULL", "'hs_ticket_priority: ' || priority || ' maps to nothing'"),
            missing("hs_pipeline_stage", "status"),
            _map_reject("hs_pipeline_stage", "status", m.ticket_status_map, "ticket_status_map"),
            ("o_status IS NULL", "'hs_pipeline_stage: ' || status || ' maps to nothing'"),
            ("o_resolved_at < o_created_at", "'closed_date is before createdate'"),
        ],
        "id",
        "_active",
    )
    crm.account_lookup(
        con,
        st,
        col(st, "stage_id").replace('"', 'l."', 1),
        "SELECT stage_key, 'support_tickets', o_ticket_id FROM chk_support_tickets WHERE rn = 1",
        "ticket stage",
    )


def _meetings(con: duckdb.DuckDBPyConnection, m: HubSpotMapping, t: Tables) -> None:
    e, mt = t["engagement"], t["engagement_meeting"]
    if mt is not None:
        id_expr = col(mt, "engagement_id", "id")
        company, join, source = _company_of(con, m, t, "engagement", mt, id_expr)
        relation = canon_select(
            mt,
            "meeting",
            {
                "id": id_expr,
                **company,
                "type_value": req_prop(mt, "activity_type_property", m.activity_type_property),
                "occurred": f"coalesce({prop(mt, 'hs_meeting_start_time')},"
                f" {prop(mt, 'hs_timestamp')})",
                "outcome": prop(mt, "hs_meeting_outcome"),
                "updated": _updated(mt),
                "pa_status": "pa.p_status",
                "pa_reason": "pa.p_reason",
            },
            f"{join} {join_parent('accounts', 'pa', company['company_key'])}",
        )
        mp, label = m.activity_type_map, m.activity_type_property
        unknown = (
            f"type_value IS NULL OR NOT {in_map_sql('type_value', mp)}",
            f"'{label}: ' || coalesce(type_value, 'missing') || ' is not in activity_type_map"
            f" ({map_keys(mp)})'",
        )
        excl, rej = _company_checks(source)
        build_contract(
            con,
            "activities",
            relation,
            [mt],
            {
                "activity_id": "id",
                "account_id": "company_key",
                "type": map_sql("type_value", mp),
                "occurred_at": "csw_ts(occurred)",
                "attended": f"csw_bool({map_sql('outcome', m.attended_map)})",
                "updated_at": "updated",
            },
            [
                _common(),
                ("lower(outcome) IN ('canceled', 'cancelled')", "'a canceled meeting'"),
                (
                    f"type_value IS NOT NULL AND {in_map_sql('type_value', mp)} AND o_type IS NULL",
                    f"'{label}: ' || type_value || ' is not a customer-success meeting"
                    " (activity_type_map maps it to null)'",
                ),
                *([unknown] if m.unmapped_activity == "exclude" else []),
                *excl,
            ],
            [
                missing("engagement_id", "id"),
                *([unknown] if m.unmapped_activity == "reject" else []),
                *rej,
                missing("hs_meeting_start_time/hs_timestamp", "occurred"),
                bad_ts("hs_meeting_start_time/hs_timestamp", "occurred"),
                _map_reject("hs_meeting_outcome", "outcome", m.attended_map, "attended_map"),
            ],
            "id",
            "_active",
        )
    if e is not None:
        core.record(
            con,
            e.name,
            f"""SELECT _source_file, _source_row, {col(e, "id")}, 'excluded',
                       'engagement type ' || coalesce({col(e, "type")}, 'missing')
                       || ' is not a meeting (only meetings are activities)'
                FROM "{e.sql_name}" WHERE upper(coalesce({col(e, "type")}, '')) <> 'MEETING'""",
        )
        crm.account_lookup(
            con,
            e,
            col(e, "id").replace('"', 'l."', 1),
            "SELECT id, 'activities', o_activity_id FROM chk_activities WHERE rn = 1"
            if mt is not None
            else "SELECT NULL, NULL, NULL WHERE false",
            "meeting engagement",
        )


def _associations(con: duckdb.DuckDBPyConnection, t: Tables) -> None:
    for obj, contract, key in (
        ("contact", "contacts", "contact_id"),
        ("deal", "opportunities", "opportunity_id"),
        ("ticket", "support_tickets", "ticket_id"),
        ("engagement", "activities", "activity_id"),
    ):
        table = t[f"{obj}_company"]
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
            [f"out_{contract}"],
        ).fetchone()
        uses = (
            f"SELECT {key}, {quote(contract)}, {key} FROM out_{contract}"
            if exists and exists[0]
            else "SELECT NULL, NULL, NULL WHERE false"
        )
        if table is not None:
            crm.account_lookup(
                con, table, col(table, f"{obj}_id").replace('"', 'l."', 1), uses, f"{obj} link"
            )


def adapt_hubspot(
    source: Path, landing: Path, mapping: HubSpotMapping | None = None
) -> AdaptResult:
    """Map the HubSpot tables under ``source`` to contract CRM files under ``landing``
    (``<landing>/crm/<table>/<file_stem>.csv``; reports under ``_adapters/hubspot/``)."""
    m = mapping or HubSpotMapping()
    if m.missing_role is not None and m.missing_role not in ROLES:
        raise ValueError(f"missing_role: {m.missing_role!r} is not one of {', '.join(ROLES)}")
    con = duckdb.connect()
    try:
        core.start_accounting(con)
        tables = core.read_source_dir(con, source)
        t: Tables = {name: crm.find_table(tables, name) for name in OBJECTS}
        _companies(con, m, t)
        contact_source = _contacts(con, m, t)
        _deals(con, m, t)
        amount_warnings = crm.missing_amount_warning(con, m.amount_property) if t["deal"] else []
        _tickets(con, m, t)
        _meetings(con, m, t)
        _associations(con, t)
        read = [s for s in t.values() if s is not None]
        accounts = core.close_accounting(con, read)
        names = [
            n
            for n in crm.CRM_TABLES
            if (
                r := con.execute(
                    "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                    [f"out_{n}"],
                ).fetchone()
            )
            and r[0]
        ]
        files, rows = crm.write_crm(con, landing, names, m.file_stem, m.output_format)
        rejects, lineage = core.write_reports(con, landing, SYSTEM)
    finally:
        con.close()
    ignored = sorted(set(tables) - {s.name for s in read})
    not_built = [f"crm/{n}" for n in crm.CRM_TABLES if n not in names]
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
        warnings=(
            *amount_warnings,
            *(f"{n}: its HubSpot table is not in the source; nothing written" for n in not_built),
        ),
        details={
            "tables_not_read": ", ".join(ignored) or "none",
            "contact_company_from": contact_source,
            "nps_responses": "not provided (HubSpot feedback surveys are not read yet)",
            "not_written": ", ".join(not_built) or "none",
            "missing_amount": m.missing_amount,
        },
    )
    core.write_result_json(result)
    return result
