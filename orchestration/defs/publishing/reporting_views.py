"""The reporting views of the serving copy: the few questions BI users ask first, answered by a
view over the marts, so that nobody writes them again in every dashboard.

They live in schema ``reporting`` of ``published/warehouse.duckdb`` only (the working warehouse
has none) and read nothing but marts of that same file, named without a catalog, so that they bind
wherever the file is opened and under whatever name. Each view's description becomes its comment;
a column takes the description written here, or else the comment of the column of the same name
in the first mart of ``reads`` that has it. They select and filter marts: no metric is computed
here (the formulas live in dbt).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

REPORTING_SCHEMA = "reporting"


@dataclass(frozen=True)
class ReportingView:
    name: str
    description: str
    sql: str
    #: The marts the view reads (schema ``marts``), the first one first for column comments.
    reads: tuple[str, ...]
    #: Descriptions of the columns no mart of ``reads`` describes under the same name.
    columns: Mapping[str, str] = field(default_factory=dict)


_REPORTING_DAY = "(select max(as_of_date) from marts.dim_accounts)"


def _latest_closed_periods(mart: str) -> str:
    """The rows of a retention mart whose period is the latest complete one of its grain."""
    return f"""
            select r.*
            from marts.{mart} as r
            where r.is_complete
                and r.period_start = (
                    select max(c.period_start)
                    from marts.{mart} as c
                    where c.period_grain = r.period_grain and c.is_complete
                )
        """


REPORTING_VIEWS: tuple[ReportingView, ...] = (
    ReportingView(
        name="account_health_current",
        description=(
            "The health of every scored account as of the warehouse's reporting date, with the"
            " account's name, owner (CSM) and lifecycle stage: one row per account. The history"
            " is marts.fct_account_health."
        ),
        sql="""
            select
                h.as_of_date,
                h.account_id,
                a.account_name,
                a.owner,
                h.segment,
                a.lifecycle_stage,
                h.arr_usd,
                h.health_score,
                h.health_band,
                h.health_change,
                h.churn_risk,
                h.churn_risk_band,
                h.churn_probability,
                h.expected_arr_lost_usd,
                h.renewal_date,
                h.drivers,
                h.health_model_version,
                h.health_model_name
            from marts.fct_account_health as h
            inner join marts.dim_accounts as a on a.account_id = h.account_id
            where h.is_reporting_date
        """,
        reads=("fct_account_health", "dim_accounts"),
    ),
    ReportingView(
        name="retention_latest_closed",
        description=(
            "Company NRR and GRR (fractions: 1.0 = 100%) of the latest complete period of each"
            " grain (month, quarter, year, trailing 12 months): one row per grain that has a"
            " complete period. Every period is in marts.fct_revenue_retention."
        ),
        sql=_latest_closed_periods("fct_revenue_retention"),
        reads=("fct_revenue_retention",),
    ),
    ReportingView(
        name="retention_latest_closed_by_segment",
        description=(
            "NRR and GRR per segment (fractions: 1.0 = 100%) of the latest complete period of"
            " each grain: one row per grain and segment. Company totals are in"
            " reporting.retention_latest_closed; do not add segments' NRR up, sum their MRR"
            " columns instead."
        ),
        sql=_latest_closed_periods("fct_revenue_retention_by_segment"),
        reads=("fct_revenue_retention_by_segment",),
    ),
    ReportingView(
        name="mrr_bridge_latest_closed_month",
        description=(
            "The company MRR bridge (starting MRR, new, expansion, reactivation, contraction,"
            " churned, ending MRR) of the latest month that ended on or before the reporting"
            " date: one row. Every month is in marts.fct_mrr_bridge, per segment in"
            " marts.fct_mrr_bridge_by_segment."
        ),
        sql=f"""
            select b.*
            from marts.fct_mrr_bridge as b
            where b.month = (
                select max(m.month)
                from marts.fct_mrr_bridge as m
                where last_day(m.month) <= {_REPORTING_DAY}
            )
        """,
        reads=("fct_mrr_bridge", "dim_accounts"),
    ),
)
