"""Guarded, atomic publication (issue 12 point 5): a publication is one version switched in by one
pointer, held back when a mart or list would shrink or empty, and the leftovers of a killed
publication are removed by the next one.

Most tests publish a hand-made warehouse (every mart of the project with a few rows) through the
publishing assets themselves; one runs the real pipeline to empty ``dim_accounts``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from orchestration.defs.dbt.project import mart_names
from orchestration.defs.publishing import publisher
from orchestration.defs.publishing.assets import build_publishing_assets
from orchestration.resources import warehouse_resources
from orchestration.settings import Settings
from tests.fake_marts import AS_OF, CLOSED_MONTH, write_marts


def _settings(home: Path, **updates: Any) -> Settings:
    fields = {"as_of": AS_OF, "duckdb_threads": 1, "duckdb_memory_limit": "1GB", **updates}
    return Settings(home=home, **fields)


def _marts(warehouse: Path, rows: int, **rows_of: int) -> None:
    """Every mart of the project with ``rows`` rows (``rows_of[mart]`` for some), in its declared
    columns, plus a private e-mail address column (tests/fake_marts.py)."""
    write_marts(warehouse, rows, **rows_of)


def _publish(settings: Settings, what: str = "warehouse") -> dg.ExecuteInProcessResult:
    """Materialize one publishing asset: ``warehouse``, ``lists`` or ``finance_close``."""
    return dg.materialize(
        build_publishing_assets(),
        selection=[dg.AssetKey(["published", what])],
        resources=warehouse_resources(settings),
        raise_on_error=False,
    )


def _values(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: value.value for key, value in metadata.items()}


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    [event] = result.get_asset_materialization_events()
    return _values(event.materialization.metadata)


def _failure(result: dg.ExecuteInProcessResult) -> tuple[str, dict[str, Any]]:
    [event] = [e for e in result.all_events if e.is_step_failure]
    data = event.step_failure_data
    assert data is not None and data.error is not None
    user = data.user_failure_data
    return data.error.message, _values(user.metadata) if user else {}


def _readers_see(publish: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per mart as readers find them: in the serving copy, and in the Parquet files."""
    with duckdb.connect(str(publish / "warehouse.duckdb"), read_only=True) as con:
        served = {
            m: con.execute(f"select count(*) from marts.{m}").fetchone()[0] for m in mart_names()
        }
        files = {
            m: con.execute(
                "select count(*) from read_parquet(?)", [str(publish / "marts" / f"{m}.parquet")]
            ).fetchone()[0]
            for m in mart_names()
        }
    return served, files


def _all(rows: int, **rows_of: int) -> dict[str, int]:
    return {m: rows_of.get(m, rows) for m in mart_names()}


def _entries(publish: Path) -> set[str]:
    """Every path under the publish directory, symbolic links listed but not followed."""
    found: set[str] = set()
    for root, dirs, files in os.walk(publish):
        found.update(str(Path(root, name).relative_to(publish)) for name in [*dirs, *files])
    return found


def _versions(publish: Path) -> list[str]:
    return sorted(p.name for p in (publish / "versions").iterdir())


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# --- one version, one pointer ---------------------------------------------------------------


def test_a_publication_is_one_version_that_the_stable_paths_lead_to(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _marts(settings.warehouse, 3)

    result = _publish(settings)

    assert result.success
    publish = settings.publish
    current = publish / "current"
    assert current.is_symlink() and not current.readlink().is_absolute()
    version = current.resolve()
    assert version.parent == (publish / "versions").resolve()
    for stable in ("warehouse.duckdb", "marts"):
        assert (publish / stable).is_symlink(), stable
        assert (publish / stable).resolve() == version / stable
    assert _readers_see(publish) == (_all(3), _all(3))
    with duckdb.connect(str(publish / "warehouse.duckdb"), read_only=True) as con:
        served = {c for (c,) in con.execute("select column_name from duckdb_columns()").fetchall()}
        parquet = {
            c
            for (c,) in con.execute(
                "select distinct name from parquet_schema(?)",
                [str(publish / "marts" / "*.parquet")],
            ).fetchall()
        }
    assert "account_id" in served and "account_id" in parquet
    assert not (served | parquet) & publisher.PRIVATE_COLUMNS, "no e-mail column published"
    metadata = _metadata(result)
    assert metadata["published_version"] == version.name
    assert metadata["held_back"] is False
    assert metadata["row_counts"] == _all(3)
    assert metadata["serving_copy"] == str(publish / "warehouse.duckdb")


def test_a_crash_after_the_marts_are_written_leaves_the_previous_publication_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    _marts(settings.warehouse, 3)
    assert _publish(settings).success
    before = _entries(settings.publish)
    _marts(settings.warehouse, 5)
    new_marts: list[Path] = []

    def killed_while_copying(warehouse: Path, directory: Path, marts: object = None) -> Path:
        new_marts.extend((directory / "marts").iterdir())
        raise OSError("killed while copying the serving copy")

    monkeypatch.setattr(publisher, "publish_serving_copy", killed_while_copying)
    result = _publish(settings)

    assert not result.success
    assert len(new_marts) == len(mart_names()), "the crash came after the new marts were written"
    served, files = _readers_see(settings.publish)
    assert served == files == _all(3), "readers see the previous publication, all of it"
    assert _entries(settings.publish) == before, "nothing of the failed publication is left"


def test_the_leftovers_of_a_killed_publication_are_removed_by_the_next(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _marts(settings.warehouse, 3)
    assert _publish(settings).success
    publish = settings.publish
    unfinished = publish / "versions" / "20240101T000000Z-warehouse-deadbeef"
    (unfinished / "marts").mkdir(parents=True)
    (unfinished / "marts" / "dim_accounts.parquet").write_bytes(b"half written")
    dead = _dead_pid()
    killed_copy = publish / f".warehouse.duckdb.tmp-{dead}"
    killed_copy.write_bytes(b"half a serving copy")
    killed_switch = publish / f".current.tmp-{dead}"
    killed_switch.symlink_to("versions/20240101T000000Z-warehouse-deadbeef")
    old = publish / f".marts.tmp-{os.getppid()}"  # a live pid, but two hours old: not its file
    old.write_bytes(b"")
    os.utime(old, (time.time() - 7200,) * 2)
    in_use = publish / f".warehouse.duckdb.tmp-{os.getpid()}"  # a live writer's, just written
    in_use.write_bytes(b"being written")

    assert _publish(settings).success

    assert not unfinished.exists()
    assert not killed_copy.exists() and not killed_switch.is_symlink() and not old.exists()
    assert in_use.exists()
    assert _readers_see(publish) == (_all(3), _all(3))


def test_lists_and_the_finance_close_keep_each_others_files_and_versions_stay_bounded(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    publish = settings.publish
    _marts(settings.warehouse, 3)
    for what in ("warehouse", "lists", "finance_close", "warehouse"):
        assert _publish(settings, what).success, what
    next_week = _settings(tmp_path, as_of=date(2024, 5, 6))
    assert _publish(next_week, "lists").success

    latest = publish / "lists" / "latest"
    assert latest.resolve().name == "2024-05-06"
    header = (latest / "risk_list.csv").read_text().splitlines()[0]
    assert "email" not in header and header.startswith("list_rank,account_id")
    assert (publish / "lists" / AS_OF.isoformat() / "risk_list.parquet").is_file()
    assert {p.name for p in latest.iterdir()} == {
        f"{name}.{suffix}" for name in publisher.LIST_MARTS for suffix in ("csv", "parquet")
    } | {publisher.REPORT}
    assert {p.name for p in (publish / "finance" / CLOSED_MONTH).iterdir()} == {
        f"{name}.{suffix}"
        for name in ("retention", "retention_by_segment", "mrr_bridge", "mrr_bridge_by_segment")
        for suffix in ("csv", "parquet")
    } | {publisher.REPORT}
    # the top-level report is the newest publication's: next week's lists
    top = (publish / publisher.REPORT).stat()
    assert (top.st_ino, top.st_dev) == (
        (latest / publisher.REPORT).stat().st_ino,
        (latest / publisher.REPORT).stat().st_dev,
    )
    assert _readers_see(publish) == (_all(3), _all(3))
    # carried forward as links to the same files, not copies
    previous = publish / "versions" / _versions(publish)[-2]
    assert (previous / "warehouse.duckdb").stat().st_ino == (
        publish / "warehouse.duckdb"
    ).stat().st_ino

    for rows in (4, 5, 6):  # each a change: an unchanged warehouse writes no version
        _marts(settings.warehouse, rows)
        assert _publish(settings).success
    versions = _versions(publish)
    assert len(versions) == publisher.KEEP_VERSIONS
    assert (publish / "current").resolve().name == versions[-1]
    assert (publish / "lists" / "latest").resolve().name == "2024-05-06"


def test_pruning_keeps_the_version_a_reader_may_still_hold(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    for rows in (3, 4, 5):  # each a change: an unchanged warehouse writes no version
        _marts(settings.warehouse, rows)
        assert _publish(settings).success
    first, previous, current = _versions(settings.publish)

    removed = publisher.prune_versions(settings.publish, keep=1)

    assert [p.name for p in removed] == [first]
    assert _versions(settings.publish) == [previous, current]
    assert (settings.publish / "current").resolve().name == current


def test_a_publish_directory_of_the_previous_layout_is_taken_over(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    publish = settings.publish
    _marts(settings.warehouse, 4)
    with duckdb.connect(str(settings.warehouse)) as con:  # as publications before versions did
        publisher.publish_marts(con, mart_names(), publish)
        publisher.publish_lists(con, publish, date(2024, 4, 22))
        publisher.publish_finance_close(con, publish, date(2024, 2, 1))
    publisher.publish_serving_copy(settings.warehouse, publish)
    _marts(settings.warehouse, 3)

    assert _publish(settings).success

    assert all((publish / name).is_symlink() for name in ("warehouse.duckdb", "marts", "lists"))
    assert _readers_see(publish) == (_all(3), _all(3))
    assert (publish / "lists" / "latest").resolve().name == "2024-04-22"
    assert (publish / "finance" / "2024-02" / "retention.csv").is_file()
    assert not [p for p in publish.iterdir() if p.name.startswith(".") and "legacy" in p.name]


def test_the_finance_close_and_the_lists_read_marts_of_the_project() -> None:
    marts = set(mart_names())
    read = {m for t in publisher.finance_tables(date(2024, 3, 1)) for m in _marts_in(t.query)}
    assert read == set(publisher.FINANCE_MARTS) <= marts
    assert {mart.removeprefix("marts.") for mart in publisher.LIST_MARTS.values()} <= marts


def _marts_in(query: str) -> set[str]:
    return set(re.findall(r"\bmarts\.(\w+)", query))


# --- the shrink guard -----------------------------------------------------------------------


def _table(required: bool) -> publisher.Table:
    return publisher.Table(
        what="mart",
        name="dim_accounts",
        query="select 1",
        path="marts/dim_accounts",
        published="marts/dim_accounts.parquet",
        required=required,
    )


@pytest.mark.parametrize(
    ("published", "new", "max_shrink", "required", "held"),
    [
        (None, 0, 0.5, False, False),  # first publication of a table that may be empty
        (None, 0, 0.5, True, True),  # ... of one that must have rows
        (None, 7, 0.5, True, False),
        (0, 0, 0.5, False, False),  # was empty, stays empty
        (10, 0, 0.5, False, True),  # emptied
        (10, 0, 1.0, False, True),  # emptied, even when any shrink is allowed
        (100, 50, 0.5, False, False),  # lost exactly the share allowed
        (100, 49, 0.5, False, True),
        (100, 99, 0.0, False, True),
        (100, 150, 0.0, False, False),  # grew
        (4, 1, 0.5, False, False),  # below the floor: a short list may shrink, not empty
        (publisher.SHRINK_MIN_ROWS, 1, 0.5, False, True),  # at the floor the share applies
    ],
)
def test_the_shrink_guard(
    published: int | None, new: int, max_shrink: float, required: bool, held: bool
) -> None:
    reason = publisher.shrink_reason(_table(required), published, new, max_shrink)
    assert (reason is not None) == held
    if reason is not None:
        assert reason.startswith("mart dim_accounts: ")
        assert f"{new} in this run" in reason or "no rows in this run" in reason


def test_a_mart_that_would_empty_or_shrink_is_held_back_until_forced(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _marts(settings.warehouse, 10)
    assert _publish(settings).success
    version = (settings.publish / "current").resolve().name
    before = _entries(settings.publish)
    _marts(settings.warehouse, 10, dim_accounts=0, fct_account_health=4, risk_list=6)

    held = _publish(settings)

    assert not held.success
    message, metadata = _failure(held)
    assert "mart dim_accounts: 10 rows published, 0 in this run" in message
    assert "mart fct_account_health: 10 rows published, 4 in this run" in message
    assert "risk_list" not in message, "lost 40%, within the 50% allowed"
    assert "--force-publish" in message and "CSW_FORCE_PUBLISH=1" in message
    assert metadata["held_back"] is True
    assert metadata["published_version"] == version
    assert metadata["row_counts"]["dim_accounts"] == 0
    assert metadata["published_row_counts"]["dim_accounts"] == 10
    assert _entries(settings.publish) == before
    assert _readers_see(settings.publish) == (_all(10), _all(10))

    forced = _publish(settings.model_copy(update={"force_publish": True}))

    assert forced.success
    metadata = _metadata(forced)
    assert metadata["held_back"] is False
    assert any("dim_accounts" in warning for warning in metadata["forced"])
    expected = _all(10, dim_accounts=0, fct_account_health=4, risk_list=6)
    assert _readers_see(settings.publish) == (expected, expected)


def test_a_mart_published_in_an_earlier_shape_is_no_baseline_for_the_shrink_guard(
    tmp_path: Path,
) -> None:
    """Upgrading splits fct_mrr_bridge's segment rows off (issue 15): the company totals have a
    fifth of the rows the mixed mart had. A published file of other columns is another table, so
    the run publishes instead of holding back every split mart; a mart of the same shape that
    shrinks is still held back."""
    settings = _settings(tmp_path)
    _marts(settings.warehouse, 10)
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("alter table marts.fct_mrr_bridge add column segment varchar")
    assert _publish(settings).success
    _marts(settings.warehouse, 10, fct_mrr_bridge=2)

    assert _publish(settings).success
    assert _readers_see(settings.publish)[0]["fct_mrr_bridge"] == 2

    _marts(settings.warehouse, 10, fct_mrr_monthly=2)
    held = _publish(settings)
    assert not held.success
    assert "mart fct_mrr_monthly: 10 rows published, 2 in this run" in _failure(held)[0]


def test_a_reshaped_mart_that_comes_out_empty_is_still_held_back(tmp_path: Path) -> None:
    """A new shape lifts only the shrink ratio: an emptied table is never published silently."""
    settings = _settings(tmp_path)
    _marts(settings.warehouse, 10)
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("alter table marts.fct_cohort_adoption add column segment varchar")
    assert _publish(settings).success
    _marts(settings.warehouse, 10, fct_cohort_adoption=0)

    held = _publish(settings)

    assert not held.success
    message, metadata = _failure(held)
    assert "mart fct_cohort_adoption: 10 rows published, 0 in this run" in message
    assert metadata["published_row_counts"]["fct_cohort_adoption"] == 10


def test_an_empty_dim_accounts_is_not_published_even_the_first_time(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _marts(settings.warehouse, 5, dim_accounts=0, risk_list=0)

    held = _publish(settings)

    assert not held.success
    message, _ = _failure(held)
    assert "mart dim_accounts: no rows in this run" in message
    assert "risk_list" not in message, "a list may be empty"
    assert not (settings.publish / "warehouse.duckdb").exists()
    assert not (settings.publish / "current").exists()


def test_a_list_that_would_shrink_is_held_back_and_latest_stays(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _marts(settings.warehouse, 10)
    assert _publish(settings, "lists").success
    _marts(settings.warehouse, 10, risk_list=2)

    held = _publish(_settings(tmp_path, as_of=date(2024, 5, 6)), "lists")

    assert not held.success
    assert "list risk_list: 10 rows published, 2 in this run" in _failure(held)[0]
    latest = settings.publish / "lists" / "latest"
    assert latest.resolve().name == AS_OF.isoformat()
    assert len((latest / "risk_list.csv").read_text().splitlines()) == 11
    assert not (settings.publish / "lists" / "2024-05-06").exists()


def test_a_finance_close_without_a_bridge_for_the_month_is_held_back(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _marts(settings.warehouse, 3, fct_mrr_bridge=0)

    held = _publish(settings, "finance_close")

    assert not held.success
    assert f"{CLOSED_MONTH} mrr_bridge: no rows in this run" in _failure(held)[0]
    assert not (settings.publish / "finance").exists()


# --- the real pipeline ----------------------------------------------------------------------


@pytest.mark.e2e  # three pipeline runs (~1.5 min): the e2e tier
def test_a_run_whose_accounts_are_all_gone_is_held_back_then_forced(tmp_path: Path) -> None:
    from ingestion.synthetic import GeneratorConfig, generate_extracts
    from orchestration.pipeline_run import run_job

    sample = GeneratorConfig(accounts=12, months=3, seed=5, start=date(2024, 1, 1))
    generate_extracts(tmp_path / "landing", sample)
    settings = Settings(
        home=tmp_path / "home",
        landing_dir=tmp_path / "landing",
        as_of=sample.last_day,
        duckdb_threads=2,
        duckdb_memory_limit="2GB",
    )
    good = run_job(settings)
    assert good.success, good.failures
    before = _entries(settings.publish)
    assert _readers_see(settings.publish)[0]["dim_accounts"] == sample.accounts
    # every row of the accounts extract quarantined: raw.accounts keeps none of them
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("delete from raw.accounts")

    held = run_job(settings)

    assert not held.success
    message = "\n".join(held.failures)
    assert f"mart dim_accounts: {sample.accounts} rows published, 0 in this run" in message
    assert "csw run --force-publish" in message
    assert _entries(settings.publish) == before
    served, files = _readers_see(settings.publish)
    assert served == files and served["dim_accounts"] == sample.accounts

    forced = _publish(settings.model_copy(update={"force_publish": True}))

    assert forced.success
    served, files = _readers_see(settings.publish)
    assert served == files and served["dim_accounts"] == 0


# --- publication of changed marts only (issue 16) -----------------------------------------------


def _mart_files(publish: Path) -> dict[str, int]:
    """The inode of every mart's Parquet file readers see: the same inode is the same file,
    carried forward into a version as a hard link, not written again."""
    return {m: (publish / "marts" / f"{m}.parquet").stat().st_ino for m in mart_names()}


def _record(publish: Path) -> dict[str, Any]:
    return json.loads(((publish / "current").resolve() / publisher.RECORD).read_text())


def test_a_second_publication_of_the_same_warehouse_writes_nothing_new(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    publish = settings.publish
    _marts(settings.warehouse, 3)
    first = _publish(settings)
    assert first.success
    assert _metadata(first)["unchanged"] is False
    assert sorted(_metadata(first)["marts_published"]) == sorted(mart_names())
    digests = _record(publish)["content"]["marts"]
    assert {m: d["rows"] for m, d in digests.items()} == _all(3)
    version = (publish / "current").resolve().name
    before = _entries(publish)
    serving = (publish / "warehouse.duckdb").stat()
    # a private column is never published: changing it changes nothing published
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("update marts.dim_accounts set email = 'other@example.com'")

    again = _publish(settings)

    assert again.success
    metadata = _metadata(again)
    assert metadata["unchanged"] is True
    assert metadata["published_version"] == version
    assert metadata["marts_published"] == [] and metadata["files"] == []
    assert metadata["row_counts"] == _all(3)
    assert _entries(publish) == before, "no new version, no new file"
    after = (publish / "warehouse.duckdb").stat()
    assert (after.st_ino, after.st_mtime_ns) == (serving.st_ino, serving.st_mtime_ns)
    assert _record(publish)["content"]["marts"] == digests

    # a lists publication carries the marts forward, and what they hold with them
    assert _publish(settings, "lists").success
    assert _record(publish)["content"]["marts"] == digests
    lists_version = (publish / "current").resolve().name
    assert _metadata(_publish(settings))["unchanged"] is True
    assert (publish / "current").resolve().name == lists_version


def test_one_changed_mart_rewrites_only_its_file_and_the_serving_copy(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    publish = settings.publish
    _marts(settings.warehouse, 3)
    assert _publish(settings).success
    files = _mart_files(publish)
    serving = (publish / "warehouse.duckdb").stat().st_ino
    # same row count, other values: the digest hashes every column, not only the count
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute(
            "update marts.dim_accounts set account_id = 'renamed' where account_id = 'acct-0'"
        )

    result = _publish(settings)

    assert result.success
    metadata = _metadata(result)
    assert metadata["unchanged"] is False
    assert metadata["marts_published"] == ["dim_accounts"]
    now = _mart_files(publish)
    assert {m for m in files if now[m] != files[m]} == {"dim_accounts"}
    assert (publish / "warehouse.duckdb").stat().st_ino != serving
    with duckdb.connect(str(publish / "warehouse.duckdb"), read_only=True) as con:
        ids = {i for (i,) in con.execute("select account_id from marts.dim_accounts").fetchall()}
        in_file = {
            i
            for (i,) in con.execute(
                "select account_id from read_parquet(?)",
                [str(publish / "marts/dim_accounts.parquet")],
            ).fetchall()
        }
    assert ids == in_file == {"renamed", "acct-1", "acct-2"}
    assert _readers_see(publish) == (_all(3), _all(3))


def test_an_emptied_mart_is_held_back_when_it_is_the_only_change(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    publish = settings.publish
    _marts(settings.warehouse, 10)
    assert _publish(settings).success
    before = _entries(publish)
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("delete from marts.fct_account_health")

    held = _publish(settings)

    assert not held.success
    message, metadata = _failure(held)
    assert "mart fct_account_health: 10 rows published, 0 in this run" in message
    assert metadata["held_back"] is True
    assert _entries(publish) == before
    assert _readers_see(publish) == (_all(10), _all(10))

    files = _mart_files(publish)
    forced = _publish(settings.model_copy(update={"force_publish": True}))

    assert forced.success
    assert _metadata(forced)["marts_published"] == ["fct_account_health"]
    now = _mart_files(publish)
    assert {m for m in files if now[m] != files[m]} == {"fct_account_health"}
    expected = _all(10, fct_account_health=0)
    assert _readers_see(publish) == (expected, expected)


def test_a_changed_mart_with_an_email_address_is_refused_and_nothing_switches(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    _marts(settings.warehouse, 3)
    assert _publish(settings).success
    before = _entries(settings.publish)
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("update marts.dim_accounts set account_name = 'jane.doe@customer.example'")

    refused = _publish(settings)

    assert not refused.success
    [event] = [e for e in refused.all_events if e.is_step_failure]
    assert event.step_failure_data is not None and event.step_failure_data.error is not None
    assert "marts.dim_accounts.account_name" in event.step_failure_data.error.to_string()
    assert _entries(settings.publish) == before


def test_a_changed_description_rebuilds_the_serving_copy_but_no_mart_file(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    publish = settings.publish
    _marts(settings.warehouse, 3)
    assert _publish(settings).success
    files = _mart_files(publish)
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("comment on table marts.dim_accounts is 'Accounts, described anew.'")

    result = _publish(settings)

    assert result.success
    metadata = _metadata(result)
    assert metadata["unchanged"] is False and metadata["marts_published"] == []
    assert _mart_files(publish) == files
    with duckdb.connect(str(publish / "warehouse.duckdb"), read_only=True) as con:
        [(comment,)] = con.execute(
            "select comment from duckdb_tables() where table_name = 'dim_accounts'"
        ).fetchall()
    assert comment == "Accounts, described anew."
