"""The synthetic extract generator: contract shape, determinism, horizon, and its causal dynamics."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time
from pathlib import Path

import duckdb
import pytest

from ingestion.contract import ISO_4217_CURRENCIES, TABLES, ColumnType, TableSchema
from ingestion.synthetic import GenerationResult, GeneratorConfig, generate_extracts
from metrics.health_config import default_health_config

SMALL = GeneratorConfig(accounts=60, months=8, seed=7)
#: Larger, still fast: enough churn to compare churned and retained accounts.
DYNAMICS = GeneratorConfig(accounts=500, months=18, seed=42)

#: Scheduled (forward-looking) columns: they may lie after the last generated day.
FORWARD_LOOKING = {
    ("subscriptions", "current_period_end"),  # the next renewal
    ("subscriptions", "trial_end"),  # end of a trial still running
    ("invoices", "due_at"),  # payment terms of a recent invoice
    ("invoices", "period_end"),  # the invoiced period runs on
    ("opportunities", "close_date"),  # expected close of open deals
    ("opportunities", "contract_start_date"),  # an open renewal's next term
    ("opportunities", "contract_end_date"),  # the renewal date
}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> GenerationResult:
    return generate_extracts(tmp_path_factory.mktemp("small"), SMALL)


@pytest.fixture(scope="module")
def dynamics(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    result = generate_extracts(tmp_path_factory.mktemp("dynamics"), DYNAMICS)
    return _typed_connection(result.out_dir)


def _files(schema: TableSchema, root: Path) -> list[Path]:
    return sorted((root / schema.system / schema.name).iterdir())


def _raw(con: duckdb.DuckDBPyConnection, schema: TableSchema, root: Path) -> str:
    """SQL reading a table as written: CSV as all-varchar, Parquet as stored."""
    folder = root / schema.system / schema.name
    if schema.name == "events":
        return f"read_parquet('{folder}/*.parquet')"
    return f"read_csv('{folder}/*.csv', header = true, all_varchar = true)"


def _typed_connection(root: Path) -> duckdb.DuckDBPyConnection:
    """Every table as a view with the contract's types (casts that fail raise)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for schema in TABLES:
        casts = ", ".join(
            f"CAST({c.name} AS {'TIMESTAMP' if c.type is ColumnType.TIMESTAMP else c.type.duckdb_type})"
            f" AS {c.name}"
            for c in schema.columns
        )
        con.execute(f"CREATE VIEW {schema.name} AS SELECT {casts} FROM {_raw(con, schema, root)}")
    return con


# --- shape ---------------------------------------------------------------------------------------


def test_every_table_is_written_in_the_landing_layout(small: GenerationResult) -> None:
    root = small.out_dir
    assert set(small.rows) == {t.asset_path for t in TABLES}
    for schema in TABLES:
        files = _files(schema, root)
        assert files, schema.asset_path
        if schema.name == "events":
            assert all(f.suffix == ".parquet" for f in files)
            assert files[0].name == f"{SMALL.start.isoformat()}.parquet"
            assert files[-1].name == f"{small.as_of.isoformat()}.parquet"
        else:
            assert [f.name for f in files] == [f"{schema.name}.csv"]
    assert sorted(small.files) == sorted(p for t in TABLES for p in _files(t, root))
    assert small.bytes_written == sum(p.stat().st_size for p in small.files)
    assert small.as_of == date(2024, 8, 31) == SMALL.last_day
    summary = small.summary()
    assert "2024-08-31" in summary and str(root) in summary and "product/events" in summary


def test_columns_are_the_contracts_in_order(small: GenerationResult) -> None:
    con = duckdb.connect()
    for schema in TABLES:
        for f in _files(schema, small.out_dir):
            reader = (
                f"read_parquet('{f}')"
                if f.suffix == ".parquet"
                else f"read_csv('{f}', header = true, all_varchar = true)"
            )
            columns = tuple(
                r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
            )
            assert columns == schema.column_names, f
    first = _files(TABLES[0], small.out_dir)[0].read_bytes()
    assert first.startswith(b"account_id,name,") and b"\r\n" in first  # RFC 4180 line ends


def test_row_counts_match_the_files(small: GenerationResult) -> None:
    con = duckdb.connect()
    for schema in TABLES:
        count = con.execute(f"SELECT count(*) FROM {_raw(con, schema, small.out_dir)}").fetchone()[
            0
        ]
        assert count == small.rows[schema.asset_path] > 0, schema.asset_path
    assert small.rows["product/events"] > 10_000


def test_values_follow_the_contract(small: GenerationResult) -> None:
    """Types cast, required columns are filled, enums, ranges, currencies, keys and row rules hold."""
    con = _typed_connection(small.out_dir)
    for schema in TABLES:
        raw = _raw(con, schema, small.out_dir)
        for c in schema.columns:
            where = f"{c.name} IS NOT NULL"
            if c.type is ColumnType.JSON:
                bad = f"SELECT count(*) FROM {raw} WHERE {where} AND NOT json_valid({c.name})"
            else:
                target = "TIMESTAMP" if c.type is ColumnType.TIMESTAMP else c.type.duckdb_type
                bad = f"SELECT count(*) FROM {raw} WHERE {where} AND TRY_CAST({c.name} AS {target}) IS NULL"
            assert con.execute(bad).fetchone()[0] == 0, f"{schema.name}.{c.name} does not cast"
            if c.required:
                nulls = con.execute(f"SELECT count(*) FROM {schema.name} WHERE {c.name} IS NULL")
                assert nulls.fetchone()[0] == 0, f"{schema.name}.{c.name} has nulls"
            if c.accepted_values:
                values = {
                    r[0]
                    for r in con.execute(
                        f"SELECT DISTINCT lower({c.name}) FROM {schema.name}"
                    ).fetchall()
                }
                assert values - {None} <= set(c.accepted_values), (
                    f"{schema.name}.{c.name}: {values}"
                )
            if c.is_currency:
                values = {
                    r[0]
                    for r in con.execute(f"SELECT DISTINCT {c.name} FROM {schema.name}").fetchall()
                }
                assert values <= ISO_4217_CURRENCIES
            if c.min_value is not None or c.max_value is not None:
                lo, hi = con.execute(
                    f"SELECT min({c.name}), max({c.name}) FROM {schema.name}"
                ).fetchone()
                assert c.min_value is None or lo is None or lo >= c.min_value, (
                    f"{schema.name}.{c.name}"
                )
                assert c.max_value is None or hi is None or hi <= c.max_value, (
                    f"{schema.name}.{c.name}"
                )
        keys = ", ".join(schema.key)
        dupes = con.execute(
            f"SELECT count(*) FROM (SELECT {keys} FROM {schema.name} GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()[0]
        assert dupes == 0, f"{schema.name}: duplicate keys"
        for rule in schema.row_rules:
            broken = con.execute(
                f"SELECT count(*) FROM {schema.name} WHERE NOT ({rule.predicate_sql})"
            )
            assert broken.fetchone()[0] == 0, f"{schema.name}: {rule.name}"
    scores = con.execute("SELECT min(score), max(score) FROM nps_responses").fetchone()
    assert 0 <= scores[0] <= scores[1] <= 10
    assert (
        con.execute(
            "SELECT count(*) FROM subscription_items WHERE valid_to <= valid_from"
        ).fetchone()[0]
        == 0
    )
    currencies = {r[0] for r in con.execute("SELECT DISTINCT currency FROM customers").fetchall()}
    assert "USD" in currencies


def test_references_and_states_are_consistent(small: GenerationResult) -> None:
    con = _typed_connection(small.out_dir)

    def none(sql: str) -> None:
        assert con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0] == 0, sql

    # every reference resolves
    none("SELECT * FROM contacts WHERE account_id NOT IN (SELECT account_id FROM accounts)")
    none("SELECT * FROM events WHERE user_id NOT IN (SELECT user_id FROM users)")
    none(
        "SELECT * FROM events e JOIN users u USING (user_id) WHERE e.account_id <> u.account_id"
        " OR e.occurred_at < u.provisioned_at OR e.occurred_at >= u.deprovisioned_at"
    )
    none(
        "SELECT * FROM subscription_items WHERE subscription_id NOT IN (SELECT subscription_id FROM subscriptions)"
    )
    none(
        "SELECT * FROM invoices WHERE subscription_id NOT IN (SELECT subscription_id FROM subscriptions)"
    )
    none("SELECT * FROM nps_responses WHERE contact_id NOT IN (SELECT contact_id FROM contacts)")
    # price history: each change closes one row exactly where the next starts
    none(
        "SELECT * FROM (SELECT valid_to, lead(valid_from) OVER (PARTITION BY item_id ORDER BY valid_from) nxt"
        " FROM subscription_items) WHERE nxt IS NOT NULL AND nxt < valid_to"
    )
    # statuses agree with the dates
    none("SELECT * FROM subscriptions WHERE (status = 'canceled') <> (ended_at IS NOT NULL)")
    none(
        "SELECT * FROM subscriptions WHERE status = 'trialing' AND trial_end <= TIMESTAMP '2024-08-31 23:59:59'"
    )
    none(
        "SELECT * FROM support_tickets WHERE (status IN ('solved', 'closed')) <> (resolved_at IS NOT NULL)"
    )
    none("SELECT * FROM contacts WHERE is_active <> (ended_at IS NULL)")
    none("SELECT * FROM invoices WHERE (status = 'paid') <> (paid_at IS NOT NULL)")
    none("SELECT * FROM invoices WHERE status = 'paid' AND amount_paid <> amount_due")
    none("SELECT * FROM invoices WHERE status <> 'paid' AND amount_paid <> 0")
    # a billing customer or two without a CRM account, the rest belong to one
    orphans = con.execute("SELECT count(*) FROM customers WHERE account_id IS NULL").fetchone()[0]
    assert 1 <= orphans <= 2


def test_no_row_is_dated_after_as_of(small: GenerationResult) -> None:
    con = _typed_connection(small.out_dir)
    end_of_day = datetime.combine(small.as_of, time(23, 59, 59))
    checked = 0
    for schema in TABLES:
        for c in schema.columns:
            if (
                c.type not in (ColumnType.TIMESTAMP, ColumnType.DATE)
                or (schema.name, c.name) in FORWARD_LOOKING
            ):
                continue
            latest = con.execute(f"SELECT max({c.name}) FROM {schema.name}").fetchone()[0]
            if latest is None:
                continue
            limit = end_of_day if c.type is ColumnType.TIMESTAMP else small.as_of
            assert latest <= limit, f"{schema.name}.{c.name} = {latest} is after {small.as_of}"
            checked += 1
    assert checked > 30
    # forward-looking columns are only in the future where the row's state says so
    assert (
        con.execute(
            "SELECT count(*) FROM subscriptions WHERE trial_end > ? AND status <> 'trialing'",
            [end_of_day],
        ).fetchone()[0]
        == 0
    )
    assert (
        con.execute(
            "SELECT count(*) FROM opportunities WHERE close_date > ? AND stage <> 'open'",
            [small.as_of],
        ).fetchone()[0]
        == 0
    )


def test_event_names_are_exactly_the_configured_vocabulary(small: GenerationResult) -> None:
    con = _typed_connection(small.out_dir)
    names = {r[0] for r in con.execute("SELECT DISTINCT event_name FROM events").fetchall()}
    assert names == set(default_health_config().events)


# --- determinism ---------------------------------------------------------------------------------


def _digests(result: GenerationResult) -> dict[str, str]:
    return {
        str(p.relative_to(result.out_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in result.files
    }


def test_same_arguments_give_byte_identical_files(small: GenerationResult, tmp_path: Path) -> None:
    again = generate_extracts(tmp_path / "again", SMALL)
    assert _digests(again) == _digests(small)


def test_rewriting_a_directory_replaces_the_files(small: GenerationResult, tmp_path: Path) -> None:
    target = tmp_path / "landing"
    generate_extracts(target, GeneratorConfig(accounts=20, months=3, seed=1))
    stale = target / "crm" / "accounts" / "old.csv"
    stale.write_text("account_id\n")
    keep = target / "README.txt"
    keep.write_text("not generated")
    result = generate_extracts(target, SMALL)
    assert not stale.exists() and keep.exists()
    assert _digests(result) == _digests(small)
    events = sorted(p.name for p in (target / "product" / "events").iterdir())
    assert len(events) == (SMALL.start.replace(month=9) - SMALL.start).days


def test_a_different_seed_gives_different_data(small: GenerationResult, tmp_path: Path) -> None:
    other = generate_extracts(tmp_path / "other", GeneratorConfig(accounts=60, months=8, seed=8))
    mine, theirs = _digests(small), _digests(other)
    assert mine.keys() == theirs.keys()
    changed = [k for k in mine if mine[k] != theirs[k]]
    assert "crm/accounts/accounts.csv" in changed
    assert len(changed) > len(mine) // 2


def test_events_scale_with_events_per_user_day(tmp_path: Path) -> None:
    low = generate_extracts(
        tmp_path / "low", GeneratorConfig(accounts=30, months=4, events_per_user_day=2.0)
    )
    high = generate_extracts(
        tmp_path / "high", GeneratorConfig(accounts=30, months=4, events_per_user_day=6.0)
    )
    ratio = high.rows["product/events"] / low.rows["product/events"]
    assert 2.5 < ratio < 3.5
    assert low.rows["product/users"] == high.rows["product/users"]


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        GeneratorConfig(accounts=0)
    with pytest.raises(ValueError):
        GeneratorConfig(start=date(2024, 1, 15))
    with pytest.raises(ValueError):
        GeneratorConfig(events_per_user_day=-1)


# --- dynamics ---------------------------------------------------------------------------------------

#: Accounts that ever paid, whether they churned (no subscription running at the end), and when.
_OUTCOMES = """
CREATE OR REPLACE TEMP TABLE outcomes AS
SELECT c.account_id,
       bool_and(s.ended_at IS NOT NULL) AS churned,
       max(s.ended_at) AS churn_at,
       min(s.started_at) AS started_at
FROM subscriptions s JOIN customers c USING (billing_customer_id)
WHERE c.account_id IS NOT NULL
GROUP BY 1
HAVING bool_or(s.trial_end IS NULL OR s.ended_at IS NULL OR s.trial_end < s.ended_at)
   AND bool_and(s.status <> 'trialing')
"""


def test_churned_accounts_used_the_product_less_before_churning(
    dynamics: duckdb.DuckDBPyConnection,
) -> None:
    con = dynamics
    con.execute(_OUTCOMES)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE daily AS SELECT account_id, occurred_at::DATE d, count(*) n FROM events GROUP BY ALL"
    )
    # events per provisioned user per day in the 60 days before each churn date, for the churned
    # account and for every account still a customer at the end (same window)
    usage = con.execute(
        """
        WITH windows AS (
            SELECT account_id AS churner, churn_at::DATE - 60 AS w0, churn_at::DATE AS w1 FROM outcomes
            WHERE churned AND churn_at - started_at > INTERVAL 120 DAY
        ), cohort AS (
            SELECT w.churner, o.account_id, o.churned, w.w0, w.w1 FROM windows w JOIN outcomes o
              ON o.account_id = w.churner OR (NOT o.churned AND o.started_at < w.w0)
        ), seats AS (
            SELECT k.*, (SELECT count(*) FROM users u WHERE u.account_id = k.account_id
                         AND u.provisioned_at < k.w0 AND (u.deprovisioned_at IS NULL OR u.deprovisioned_at > k.w0)) AS n_users
            FROM cohort k
        ), rate AS (
            SELECT s.churner, s.churned, coalesce(sum(d.n), 0) / s.n_users / 60 AS per_user_day
            FROM seats s LEFT JOIN daily d ON d.account_id = s.account_id AND d.d >= s.w0 AND d.d < s.w1
            WHERE s.n_users > 0 GROUP BY s.churner, s.account_id, s.churned, s.n_users
        )
        SELECT count(DISTINCT churner), avg(per_user_day) FILTER (WHERE churned),
               avg(per_user_day) FILTER (WHERE NOT churned) FROM rate
        """
    ).fetchone()
    churns, churned_rate, retained_rate = usage
    assert churns >= 15
    assert churned_rate < 0.7 * retained_rate


def test_usage_declines_in_the_months_before_churn(dynamics: duckdb.DuckDBPyConnection) -> None:
    con = dynamics
    con.execute(_OUTCOMES)
    last, before = con.execute(
        """
        SELECT sum(n) FILTER (WHERE e.occurred_at >= o.churn_at - INTERVAL 45 DAY),
               sum(n) FILTER (WHERE e.occurred_at < o.churn_at - INTERVAL 90 DAY) / 2
        FROM outcomes o JOIN (SELECT account_id, occurred_at, 1 AS n FROM events) e USING (account_id)
        WHERE o.churned AND o.churn_at - o.started_at > INTERVAL 180 DAY
          AND e.occurred_at >= o.churn_at - INTERVAL 180 DAY
        """
    ).fetchone()
    assert last < 0.8 * before  # the last 45 days against the average 45 days of the 90 before that


def test_champion_departure_and_stuck_critical_tickets_raise_churn(
    dynamics: duckdb.DuckDBPyConnection,
) -> None:
    con = dynamics
    con.execute(_OUTCOMES)
    rows = con.execute(
        """
        WITH flags AS (
            SELECT o.account_id, o.churned,
                   EXISTS (SELECT 1 FROM contacts c WHERE c.account_id = o.account_id AND c.role = 'champion'
                           AND c.ended_at IS NOT NULL AND (NOT o.churned OR c.ended_at <= o.churn_at)) AS champion_left,
                   EXISTS (SELECT 1 FROM support_tickets t WHERE t.account_id = o.account_id
                           AND t.severity = 'critical'
                           AND coalesce(t.resolved_at, TIMESTAMP '2099-01-01') > t.created_at + INTERVAL 14 DAY
                           AND t.created_at + INTERVAL 14 DAY < coalesce(o.churn_at, TIMESTAMP '2099-01-01')) AS stuck
            FROM outcomes o
        )
        SELECT champion_left OR stuck AS flagged, count(*), avg(churned::INT) FROM flags GROUP BY 1
        """
    ).fetchall()
    by_flag = {flagged: (n, rate) for flagged, n, rate in rows}
    assert by_flag[True][0] >= 20 and by_flag[False][0] >= 20
    assert by_flag[True][1] > 1.3 * by_flag[False][1]


def test_expansion_is_common_and_logo_churn_is_realistic(
    dynamics: duckdb.DuckDBPyConnection,
) -> None:
    con = dynamics
    con.execute(_OUTCOMES)
    paid, churned, years = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE churned), 18 / 12 FROM outcomes"
    ).fetchone()
    yearly = churned / paid / years  # of every account that ever paid: a rough yearly logo churn
    assert 0.04 < yearly < 0.25
    grew = con.execute(
        """
        SELECT count(DISTINCT i.subscription_id) FROM subscription_items i JOIN subscription_items j
          ON i.item_id = j.item_id AND j.valid_from = i.valid_to AND j.quantity > i.quantity
        """
    ).fetchone()[0]
    assert grew > 0.15 * paid
    expansions = con.execute(
        "SELECT count(*) FROM opportunities WHERE type = 'expansion' AND stage = 'closed_won'"
    ).fetchone()[0]
    assert expansions >= grew
