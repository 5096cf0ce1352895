"""A second synthetic scenario: a consumer music-streaming subscription.

``generate_consumer_extracts(out_dir, ConsumerConfig(...))`` writes a landing directory in the
extract contract, like ``ingestion.synthetic.generate_extracts`` (the same writers, time line and
``GenerationResult``), for a product unlike the B2B one: one listener per account, self-serve
monthly plans, and churn driven by a latent frustration that shows in the *mix* of events (skips,
dislikes, errors, ads, the downgrade page) rather than in the signals the default health model
weighs. ``CONSUMER_HEALTH_MODEL`` is the scenario's own health model: the shipped default rules
with this product's event names, feature map, tiers and onboarding stages.

Module map: ``config`` (the request, plans and prices, the event catalogue), ``lifecycle`` (the
latent frustration and each listener's subscriptions, payments, tickets and NPS), ``events`` (the
vectorised daily event sampler). ``docs/synthetic-data.md`` ("The consumer scenario") documents it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from ingestion.contract import TABLES, TableSchema
from ingestion.contract import table as contract_table
from ingestion.synthetic import GenerationResult, billing, crm
from ingestion.synthetic.consumer.config import PLANS, ConsumerConfig
from ingestion.synthetic.consumer.events import ConsumerEvents
from ingestion.synthetic.consumer.lifecycle import ConsumerAccount, Latent
from ingestion.synthetic.timeline import Calendar
from ingestion.synthetic.writers import clear_tables, table_dir, write_csv, write_parquet

__all__ = [
    "CONSUMER_HEALTH_MODEL",
    "ConsumerConfig",
    "GenerationResult",
    "generate_consumer_extracts",
]

#: The consumer scenario's health model (validates with metrics.health_config.load_health_config).
CONSUMER_HEALTH_MODEL: Path = Path(__file__).resolve().parent / "health_model.yaml"

Row = dict[str, str | None]


def _number(items: list, prefix: str, width: int) -> None:
    width = max(width, len(str(len(items))))
    for n, item in enumerate(items, start=1):
        item.id = f"{prefix}{n:0{width}d}"


def _assign_ids(accounts: list[ConsumerAccount], horizon: int) -> list[billing.Customer]:
    """Sequential, stable ids in account order; returns the billing customers in id order."""
    _number(accounts, "acc_", 5)
    _number([a.user for a in accounts], "usr_", 7)
    _number([c for a in accounts for c in a.contacts], "con_", 6)
    _number([t for a in accounts for t in a.tickets], "tkt_", 7)
    _number([r for a in accounts for r in a.nps], "nps_", 6)
    customers = [a.customer for a in accounts]
    _number(customers, "cus_", 5)
    subs = [s for c in customers for s in c.subs]
    _number(subs, "sub_", 6)
    for s in subs:
        s.invoices = [i for i in s.invoices if i.issued < horizon]
    invoices = sorted((i for s in subs for i in s.invoices), key=lambda i: (i.issued, i.sub.id))
    _number(invoices, "in_", 7)
    return customers


def _plans_rows(cal: Calendar) -> Iterator[Row]:
    for p in sorted(PLANS, key=lambda p: p.plan_id):
        yield {
            "plan_id": p.plan_id,
            "name": p.name,
            "tier": p.tier,
            "billing_interval": p.billing_interval,
            "seat_limit": None if p.seat_limit is None else str(p.seat_limit),
            "updated_at": cal.ts(0),
        }


def _users_rows(accounts: Sequence[ConsumerAccount], cal: Calendar) -> Iterator[Row]:
    for a in accounts:
        u = a.user
        yield {
            "user_id": u.id,
            "account_id": a.id,
            "role": "admin",
            "provisioned_at": cal.ts(u.provisioned),
            "deprovisioned_at": cal.ts(u.deprovisioned),
            "updated_at": cal.ts(u.provisioned if u.deprovisioned is None else u.deprovisioned),
        }


def generate_consumer_extracts(
    out_dir: Path, config: ConsumerConfig | None = None
) -> GenerationResult:
    """Simulate ``config.accounts`` listeners and write every contract table."""
    config = config or ConsumerConfig()
    out_dir = Path(out_dir)
    cal = Calendar(config.start, config.months)
    latent = Latent.draw(config, cal)
    accounts = [ConsumerAccount(i, cal, latent, config.seed).run() for i in range(config.accounts)]
    customers = _assign_ids(accounts, cal.end)
    subs = [s for c in customers for s in c.subs]
    invoices = sorted((i for s in subs for i in s.invoices), key=lambda i: i.id)

    csv_tables = {
        "crm/accounts": crm.accounts_rows(accounts, cal),
        "crm/contacts": crm.contacts_rows(accounts, cal),
        "crm/opportunities": crm.opportunities_rows(accounts, cal),
        "crm/activities": crm.activities_rows(accounts, cal),
        "crm/support_tickets": crm.support_tickets_rows(accounts, cal),
        "crm/nps_responses": crm.nps_rows(accounts, cal),
        "product/users": _users_rows(accounts, cal),
        "billing/customers": billing.customers_rows(customers, [a.id for a in accounts], cal),
        "billing/plans": _plans_rows(cal),
        "billing/subscriptions": billing.subscriptions_rows(subs, cal),
        "billing/subscription_items": billing.subscription_items_rows(subs, cal),
        "billing/invoices": billing.invoices_rows(invoices, cal),
        "billing/fx_rates": billing.fx_rows(cal, config.seed),
    }
    clear_tables(out_dir, TABLES)
    files: list[Path] = []
    rows: dict[str, int] = {}
    for name, table_rows in csv_tables.items():
        schema = contract_table(name)
        path = table_dir(out_dir, schema) / f"{schema.name}.csv"
        rows[name] = write_csv(path, schema, table_rows)
        files.append(path)

    events_schema: TableSchema = contract_table("product/events")
    events = ConsumerEvents.build(accounts, latent, cal, config.seed, config.events_per_active_day)
    rows[events_schema.asset_path] = 0
    folder = table_dir(out_dir, events_schema)
    for d in range(cal.n_days):
        table = events.day(d)
        path = folder / f"{cal.date(d * 86_400).isoformat()}.parquet"
        write_parquet(path, table)
        rows[events_schema.asset_path] += table.num_rows
        files.append(path)

    missing = {t.asset_path for t in TABLES} - set(rows)
    assert not missing, f"tables not generated: {sorted(missing)}"
    return GenerationResult(
        out_dir=out_dir,
        config=config,
        as_of=cal.as_of,
        files=files,
        bytes_written=sum(p.stat().st_size for p in files),
        rows=rows,
    )
