"""Synthetic extracts: all 14 contract tables from one causal model of customer lifecycles.

``generate_extracts(out_dir, GeneratorConfig(...))`` writes a landing directory
(``<out>/<system>/<table>/<file>``): entity tables as one CSV each, events as one Parquet file
per day. The same config always gives byte-identical files. Module map:

- ``config``: the request (``GeneratorConfig``), segments, plans and prices, the event vocabulary
  read from the health-model configuration;
- ``lifecycle``: the latent per-account simulation (engagement, churn, expansion, ...);
- ``crm``, ``billing``, ``product``: each system's records and rows; ``product`` samples events;
- ``writers``: CSV and Parquet output; ``timeline``: integer-second time and formatting.

``docs/synthetic-data.md`` documents the generative model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ingestion.contract import TABLES, TableSchema
from ingestion.contract import table as contract_table
from ingestion.synthetic import billing, crm, product
from ingestion.synthetic.config import EventVocabulary, GeneratorConfig
from ingestion.synthetic.lifecycle import AccountSim, World, arrival_weights, simulate_orphan
from ingestion.synthetic.timeline import Calendar
from ingestion.synthetic.writers import clear_tables, table_dir, write_csv, write_parquet

__all__ = ["GenerationResult", "GeneratorConfig", "generate_extracts"]


@dataclass(frozen=True)
class GenerationResult:
    out_dir: Path
    config: GeneratorConfig
    #: The last generated day: no extract row is dated after it.
    as_of: date
    files: list[Path]
    bytes_written: int
    #: ``<system>/<table>`` -> rows written.
    rows: dict[str, int]

    def summary(self) -> str:
        c = self.config
        width = max(len(k) for k in self.rows)
        lines = [
            f"Synthetic extracts as of {self.as_of.isoformat()}",
            f"{c.accounts} accounts, {c.months} months from {c.start:%Y-%m}, seed {c.seed}",
            f"{len(self.files)} files, {_size(self.bytes_written)} in {self.out_dir}",
        ]
        for name in sorted(self.rows):
            lines.append(f"  {name:<{width}}  {self.rows[name]:>12,} rows")
        return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    raise AssertionError("unreachable")


def _orphan_count(accounts: int) -> int:
    return 2 if accounts >= 20 else 1


def _number(items: list, prefix: str, width: int) -> None:
    width = max(width, len(str(len(items))))
    for n, item in enumerate(items, start=1):
        item.id = f"{prefix}{n:0{width}d}"


def _assign_ids(
    accounts: list[AccountSim], orphans: list[billing.Customer], horizon: int
) -> list[billing.Customer]:
    """Sequential, stable ids in account order; returns every billing customer in id order.

    Invoices the simulation scheduled at or after the horizon (a reissue after a void near the
    end) have not happened yet and are dropped here.
    """
    _number(accounts, "acc_", 5)
    _number([u for a in accounts for u in a.users], "usr_", 7)
    _number([c for a in accounts for c in a.contacts], "con_", 6)
    _number([o for a in accounts for o in a.opportunities], "opp_", 6)
    _number([x for a in accounts for x in a.activities], "act_", 7)
    _number([t for a in accounts for t in a.tickets], "tkt_", 7)
    _number([r for a in accounts for r in a.nps], "nps_", 6)
    customers = [a.customer for a in accounts if a.customer is not None] + orphans
    _number(customers, "cus_", 5)
    subs = [s for c in customers for s in c.subs]
    _number(subs, "sub_", 6)
    for s in subs:
        s.invoices = [i for i in s.invoices if i.issued < horizon]
    invoices = sorted((i for s in subs for i in s.invoices), key=lambda i: (i.issued, i.sub.id))
    _number(invoices, "in_", 7)
    return customers


def generate_extracts(out_dir: Path, config: GeneratorConfig | None = None) -> GenerationResult:
    """Simulate ``config.accounts`` customer lifecycles and write every contract table."""
    config = config or GeneratorConfig()
    out_dir = Path(out_dir)
    cal = Calendar(config.start, config.months)
    vocab = EventVocabulary.from_health_config()
    world = World(
        config,
        cal,
        vocab,
        tuple(crm.company_names(config.accounts, config.seed)),
        arrival_weights(config.months),
    )
    accounts = [AccountSim(i, world).run() for i in range(config.accounts)]
    orphans = [simulate_orphan(k, world) for k in range(_orphan_count(config.accounts))]
    customers = _assign_ids(accounts, orphans, cal.end)
    subs = [s for c in customers for s in c.subs]
    invoices = sorted((i for s in subs for i in s.invoices), key=lambda i: i.id)

    csv_tables = {
        "crm/accounts": crm.accounts_rows(accounts, cal),
        "crm/contacts": crm.contacts_rows(accounts, cal),
        "crm/opportunities": crm.opportunities_rows(accounts, cal),
        "crm/activities": crm.activities_rows(accounts, cal),
        "crm/support_tickets": crm.support_tickets_rows(accounts, cal),
        "crm/nps_responses": crm.nps_rows(accounts, cal),
        "product/users": product.users_rows(accounts, cal),
        "billing/customers": billing.customers_rows(customers, [a.id for a in accounts], cal),
        "billing/plans": billing.plans_rows(cal),
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
    events = product.DailyEvents.build(
        accounts, cal, vocab, config.seed, config.events_per_user_day
    )
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
