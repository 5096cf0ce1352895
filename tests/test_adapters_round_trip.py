"""The mart-level round trip (issue 14, point 2): generated contract data, rendered in each
vendor's shape, adapted back, must give the same marts as the direct path.

One small contract dataset (``ingestion.synthetic``: 30 accounts, 8 months) is

- the **direct** path: ingested as generated;
- the **Salesforce** path: its billing rendered as Fivetran lands Stripe, its CRM as Fivetran
  lands Salesforce, its product data as Segment's S3 destination delivers calls
  (``tests/vendor_shapes.py``), each adapted back into one landing directory (FX rates copied:
  they do not come from Stripe), then ingested;
- the **HubSpot** path: the same, with the CRM rendered as Fivetran lands HubSpot;
- the **direct path without NPS**: the direct landing with ``crm/nps_responses`` removed.

Each is built once with dbt (the pinned health model, as of the last generated day) and
``fct_mrr_monthly``, ``fct_mrr_movements``, ``fct_revenue_retention`` and ``fct_account_health``
are compared row for row, value for value: the Salesforce path against the direct path, the
HubSpot path against the direct path without NPS (HubSpot's feedback surveys are not read, so
its path has no NPS responses), health rows included. ``fct_account_health`` is asserted to read
NPS (from the dbt manifest's lineage) and to differ between the two direct paths, so the second
baseline is needed and not a copy of the first.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_harness import Dbt, failures, query
from vendor_shapes import (
    HUBSPOT_MAPPING,
    SALESFORCE_MAPPING,
    SEGMENT_MAPPING,
    STRIPE_MAPPING,
    render_fivetran,
    render_hubspot,
    render_salesforce,
    render_segment,
)

from adapters.core import AdaptResult
from adapters.hubspot import adapt_hubspot
from adapters.salesforce import adapt_salesforce
from adapters.segment import adapt_segment
from adapters.stripe import adapt_stripe
from ingestion.contract import TABLES
from ingestion.loader import ingest_table
from ingestion.synthetic import GeneratorConfig, generate_extracts

#: Five dbt builds of generated data through every adapter: the e2e tier, `make test-e2e`.
pytestmark = pytest.mark.e2e

SMALL = GeneratorConfig(accounts=30, months=8, seed=21, start=date(2024, 1, 1))
#: The last generated day: every month of the data is in the marts.
AS_OF = "2024-08-31"
MARTS = ("fct_mrr_monthly", "fct_mrr_movements", "fct_revenue_retention", "fct_account_health")
NPS_SOURCE = "nps_responses"
#: What the compared marts hold on a path, so an identical comparison is not one of empty or
#: trivial marts: months with MRR, accounts with MRR, kinds of MRR movement, retention rows with
#: an NRR and a GRR, accounts with a health score on the reporting date, distinct scores.
POWER = "power"
POWER_SQL = """
    select
        (select count(distinct month) from marts.fct_mrr_monthly where mrr_usd > 0),
        (select count(distinct account_id) from marts.fct_mrr_monthly where mrr_usd > 0),
        (select count(distinct movement) from marts.fct_mrr_movements where mrr_usd <> 0),
        (select count(*) from marts.fct_revenue_retention where nrr is not null and grr is not null),
        (select count(*) from marts.fct_account_health
         where is_reporting_date and health_score is not null),
        (select count(distinct health_score) from marts.fct_account_health)
"""

Snapshot = dict[str, list[tuple[Any, ...]]]


# --- the three landing directories ----------------------------------------------------------------


def _adapted(root: Path, name: str, crm: str) -> tuple[Path, list[AdaptResult]]:
    """Adapt the vendor renderings into one landing directory, CRM from ``crm``."""
    landing = root / name
    results = [
        adapt_stripe(root / "stripe", landing, STRIPE_MAPPING),
        adapt_segment(root / "segment", landing, SEGMENT_MAPPING),
        adapt_salesforce(root / "salesforce", landing, SALESFORCE_MAPPING)
        if crm == "salesforce"
        else adapt_hubspot(root / "hubspot", landing, HUBSPOT_MAPPING),
    ]
    # FX rates do not come from Stripe: they are loaded as before (docs/adapters.md)
    shutil.copytree(root / "direct" / "billing" / "fx_rates", landing / "billing" / "fx_rates")
    return landing, results


@pytest.fixture(scope="module")
def landings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("adapters_round_trip")
    generate_extracts(root / "direct", SMALL)
    render_fivetran(root / "direct", root / "stripe")
    render_salesforce(root / "direct", root / "salesforce")
    render_hubspot(root / "direct", root / "hubspot")
    render_segment(root / "direct", root / "segment")
    salesforce, sf_results = _adapted(root, "adapted_salesforce", "salesforce")
    hubspot, hs_results = _adapted(root, "adapted_hubspot", "hubspot")
    # what HubSpot can deliver: the direct landing without NPS responses
    shutil.copytree(
        root / "direct",
        root / "direct_no_nps",
        ignore=lambda folder, _: [NPS_SOURCE] if Path(folder).name == "crm" else [],
    )
    return {
        "root": root,
        "direct": root / "direct",
        "direct_no_nps": root / "direct_no_nps",
        "salesforce": salesforce,
        "hubspot": hubspot,
        "results": {"salesforce": sf_results, "hubspot": hs_results},
    }


# --- ingest and build each once -------------------------------------------------------------------


@pytest.fixture(scope="module")
def dbt(tmp_path_factory: pytest.TempPathFactory) -> Dbt:
    return Dbt(tmp_path_factory.mktemp("adapters_round_trip_dbt"), AS_OF)


def _build(dbt: Dbt, landing: Path, root: Path) -> Snapshot:
    """Ingest every contract table of ``landing`` (nothing refused or quarantined), build every
    model and test with dbt, and return the compared marts in a total order."""
    root.mkdir()
    warehouse = root / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    try:
        for schema in TABLES:
            outcome = ingest_table(con, schema, landing, validation_dir=root / "validation")
            assert outcome.files_refused == 0, schema.name
            assert outcome.rows_quarantined == 0, schema.name
    finally:
        con.close()
    result = dbt.build(warehouse)
    assert result.success, failures(result)
    con = duckdb.connect(str(warehouse))  # dbt-duckdb keeps its read-write connection open
    try:
        marts = {m: query(con, f"select * from marts.{m} order by all") for m in MARTS}
        return marts | {POWER: query(con, POWER_SQL)}
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(
    dbt: Dbt, landings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Snapshot]:
    root = tmp_path_factory.mktemp("adapters_round_trip_warehouses")
    return {
        path: _build(dbt, landings[path], root / path)
        for path in ("direct", "salesforce", "hubspot", "direct_no_nps")
    }


def _reads(dbt: Dbt, model: str, source_table: str) -> bool:
    """Whether ``model`` reads the raw ``source_table``, directly or through other models."""
    nodes = {**dbt.manifest.nodes, **dbt.manifest.sources}
    [start] = [n for n in dbt.manifest.nodes.values() if n.name == model]
    seen: set[str] = set()
    todo = list(start.depends_on.nodes)
    while todo:
        unique_id = todo.pop()
        if unique_id in seen:
            continue
        seen.add(unique_id)
        node = nodes[unique_id]
        if unique_id.startswith("source."):
            if node.name == source_table:
                return True
            continue
        todo.extend(node.depends_on.nodes)
    return False


# --- the tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["salesforce", "hubspot"])
def test_every_rendered_row_is_adapted(landings: dict[str, Any], path: str) -> None:
    for result in landings["results"][path]:
        assert result.ok, result.summary()
        assert all(a.balanced for a in result.accounts), result.summary()


@pytest.mark.parametrize("mart", MARTS)
def test_salesforce_stripe_segment_give_the_direct_marts(
    built: dict[str, Snapshot], mart: str
) -> None:
    direct, adapted = built["direct"][mart], built["salesforce"][mart]
    assert direct, f"marts.{mart} is empty on the direct path: the test would prove nothing"
    assert len(adapted) == len(direct), mart
    assert adapted == direct, mart


def test_the_compared_marts_are_not_trivial(built: dict[str, Snapshot]) -> None:
    """Identical marts prove something only when they hold MRR over the months, several kinds
    of movement, retention ratios and health scores."""
    [(months, accounts, movements, retention, scored, scores)] = built["direct"][POWER]
    assert months == SMALL.months
    assert accounts >= SMALL.accounts * 2 // 3
    assert movements >= 3
    assert retention > 0
    assert scored >= SMALL.accounts // 2
    assert scores > 10
    assert built["salesforce"][POWER] == built["direct"][POWER]


@pytest.mark.parametrize("mart", MARTS)
def test_hubspot_stripe_segment_give_the_direct_marts_without_nps(
    built: dict[str, Snapshot], mart: str
) -> None:
    """Every mart, health rows included, against the direct path built without NPS (what
    HubSpot can deliver)."""
    direct, adapted = built["direct_no_nps"][mart], built["hubspot"][mart]
    assert direct, f"marts.{mart} is empty on the direct path without NPS"
    assert len(adapted) == len(direct), mart
    assert adapted == direct, mart


def test_the_hubspot_path_is_not_trivial(built: dict[str, Snapshot]) -> None:
    [(months, accounts, movements, retention, scored, scores)] = built["direct_no_nps"][POWER]
    assert months == SMALL.months and accounts >= SMALL.accounts * 2 // 3
    assert movements >= 3 and retention > 0
    assert scored >= SMALL.accounts // 2 and scores > 10
    assert built["hubspot"][POWER] == built["direct_no_nps"][POWER]


def test_only_the_health_mart_reads_nps(dbt: Dbt, built: dict[str, Snapshot]) -> None:
    """Why HubSpot has a baseline of its own: the health mart reads raw.nps_responses, and
    without NPS its rows differ; the revenue marts are the same on both direct paths."""
    assert [m for m in MARTS if _reads(dbt, m, NPS_SOURCE)] == ["fct_account_health"]
    assert built["direct_no_nps"]["fct_account_health"] != built["direct"]["fct_account_health"]
    for mart in MARTS[:3]:
        assert built["direct_no_nps"][mart] == built["direct"][mart], mart


# --- Stripe without history mode: the price history from invoice lines -----------------------------


@pytest.fixture(scope="module")
def stripe_lines(
    dbt: Dbt, landings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The Salesforce path with Stripe rendered without history tables: current
    subscription items and invoice lines (cycle lines, proration pairs, credits for removals;
    ``render_fivetran(price_history="invoice_lines")``), adapted, ingested and built."""
    root: Path = landings["root"]
    render_fivetran(root / "direct", root / "stripe_lines", price_history="invoice_lines")
    landing = root / "adapted_stripe_lines"
    results = [
        adapt_stripe(root / "stripe_lines", landing, STRIPE_MAPPING),
        adapt_segment(root / "segment", landing, SEGMENT_MAPPING),
        adapt_salesforce(root / "salesforce", landing, SALESFORCE_MAPPING),
    ]
    shutil.copytree(root / "direct" / "billing" / "fx_rates", landing / "billing" / "fx_rates")
    built = _build(dbt, landing, tmp_path_factory.mktemp("stripe_lines") / "warehouse")
    con = duckdb.connect()
    try:
        never_billed = {
            r[0]
            for r in con.execute(
                f"""SELECT i.id FROM read_csv('{root}/stripe_lines/subscription_item.csv') i
                    WHERE i.subscription_id NOT IN (
                        SELECT subscription_id FROM read_csv('{root}/stripe/invoice.csv')
                        WHERE subscription_id IS NOT NULL)"""
            ).fetchall()
        }
    finally:
        con.close()
    return {"results": results, "built": built, "never_billed": never_billed}


def test_stripe_invoice_lines_path_rejects_only_items_never_billed(
    stripe_lines: dict[str, Any],
) -> None:
    """The generated data has no trial invoices (Stripe issues a zero-amount one when a trial
    starts), so the items of subscriptions that ended in, or are still in, their trial have no
    line: they are rejected by name, and nothing else is."""
    stripe, *others = stripe_lines["results"]
    assert stripe.details["history_method"] == "invoice_line_items"
    assert all(a.balanced for a in stripe.accounts), stripe.summary()
    rejected = [
        r
        for r in duckdb.sql(
            f"SELECT * FROM read_csv('{stripe.rejects_file}', all_varchar=true)"
        ).fetchall()
        if r[4] == "rejected"
    ]
    assert stripe_lines["never_billed"], "no never-billed item: the limit is not exercised"
    assert {(r[0], r[3]) for r in rejected} == {
        ("subscription_item", i) for i in stripe_lines["never_billed"]
    }
    assert all(r[5].startswith("no invoice line states this item") for r in rejected)
    for result in others:
        assert result.ok, result.summary()


@pytest.mark.parametrize("mart", MARTS)
def test_stripe_invoice_lines_give_the_direct_marts(
    built: dict[str, Snapshot], stripe_lines: dict[str, Any], mart: str
) -> None:
    """Versions start at the first invoice, not in the trial, and items of never-billed
    subscriptions are missing: neither is in force on any day (a version counts from the
    trial's end), so the marts are identical."""
    direct, adapted = built["direct"][mart], stripe_lines["built"][mart]
    assert direct, mart
    assert adapted == direct, mart
    assert stripe_lines["built"][POWER] == built["direct"][POWER]
