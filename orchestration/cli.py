"""The ``csw`` command line. Each command resolves one Settings object and delegates."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from orchestration.settings import Settings, load_settings

if TYPE_CHECKING:
    import duckdb
    import polars as pl

app = typer.Typer(
    name="csw",
    help="cs-warehouse: customer-success analytics from CRM, product and billing extracts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
#: Piped output keeps wide report tables readable; a terminal uses its own width.
console = Console(width=None if sys.stdout.isatty() else 200)


@app.callback()
def _root() -> None:
    """cs-warehouse: customer-success analytics from CRM, product and billing extracts."""


LandingOpt = typer.Option(
    None, "--landing", help="Landing directory of the extracts [env CSW_LANDING_DIR]."
)
WarehouseOpt = typer.Option(
    None, "--warehouse", help="DuckDB warehouse file [env CSW_WAREHOUSE_PATH]."
)
PublishOpt = typer.Option(None, "--publish", help="Publish directory [env CSW_PUBLISH_DIR].")
AsOfOpt = typer.Option(
    None, "--as-of", help="Reporting date YYYY-MM-DD (UTC) [env CSW_AS_OF; default today]."
)


def _parse_month(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a month; write it as YYYY-MM, e.g. 2024-01"
        ) from None


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except ValueError as exc:
        console.print(f"[red]Invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.command()
def generate(
    out: Path | None = typer.Option(
        None, "--out", help="Landing directory to write [default: the settings' landing dir]."
    ),
    accounts: int = typer.Option(200, "--accounts", min=1, help="Number of CRM accounts."),
    months: int = typer.Option(18, "--months", min=1, max=120, help="Months of history."),
    seed: int = typer.Option(
        42, "--seed", help="Random seed; the same arguments give byte-identical files."
    ),
    events_per_user_day: float = typer.Option(
        4.0, "--events-per-user-day", min=0.0, help="Mean events per active user per active day."
    ),
    start: str | None = typer.Option(
        None, "--start", help="First month YYYY-MM [default 2024-01, fixed]."
    ),
) -> None:
    """Write synthetic extracts for all 14 contract tables in the landing layout."""
    first_month = _parse_month(start)
    from ingestion.synthetic import GeneratorConfig, generate_extracts

    target = out or _settings().landing
    config = GeneratorConfig(
        accounts=accounts,
        months=months,
        seed=seed,
        events_per_user_day=events_per_user_day,
        **({"start": first_month} if first_month else {}),
    )
    with console.status(f"Generating {accounts} accounts over {months} months..."):
        result = generate_extracts(target, config)
    console.print(result.summary())


@app.command()
def ingest(
    landing: Path | None = LandingOpt,
    warehouse: Path | None = WarehouseOpt,
) -> None:
    """Load new and changed extracts into the warehouse's raw tables (in-process, via Dagster).

    Exits 1 when a file was refused or an asset failed; the summary says where the reasons are.
    """
    from rich.table import Table

    from orchestration.defs.ingestion.summary import run_ingestion

    settings = _settings(landing_dir=landing, warehouse_path=warehouse)
    if not settings.landing.is_dir():
        console.print(
            f"[red]Landing directory {settings.landing} does not exist.[/red] Pass --landing,"
            " set CSW_LANDING_DIR, or write sample extracts with `csw generate`."
        )
        raise typer.Exit(2)
    with console.status(f"Ingesting {settings.landing} -> {settings.warehouse} ..."):
        outcome = run_ingestion(settings)
    summary = Table(
        title=f"Ingestion run {outcome.run_id}",
        caption="loaded/skipped/refused: files; rows: rows loaded; quarantined: bad rows;"
        " dups: event rows whose key was already in raw",
    )
    summary.add_column("table", no_wrap=True)
    for header in ("loaded", "skipped", "refused", "rows", "quarantined", "dups"):
        summary.add_column(header, justify="right")
    for t in outcome.tables:
        if t.error is not None:
            summary.add_row(t.table, "[red]failed[/red]", "", "", "", "", "")
            continue
        refused = f"[red]{t.files_refused}[/red]" if t.files_refused else "0"
        summary.add_row(
            t.table,
            str(t.files_loaded),
            str(t.files_skipped),
            refused,
            f"{t.rows_loaded:,}",
            f"{t.rows_quarantined:,}",
            f"{t.rows_duplicate:,}",
        )
    console.print(summary)
    for t in outcome.tables:
        for message in t.refused:
            console.print(f"[red]refused[/red] {message}")
        if t.error is not None:
            console.print(f"[red]failed[/red] {t.table}: {t.error}")
    if not outcome.ok:
        console.print(
            "Reasons per file: raw.ingest_manifest (status, message) and the JSON reports in"
            f" {settings.warehouse.parent / 'validation'}; bad rows: raw.quarantine."
        )
        raise typer.Exit(1)
    console.print(f"[green]Ingestion succeeded.[/green] Warehouse: {settings.warehouse}")


@app.command()
def run(
    landing: Path | None = LandingOpt,
    warehouse: Path | None = WarehouseOpt,
    publish: Path | None = PublishOpt,
    as_of: str | None = AsOfOpt,
) -> None:
    """Ingest new extracts, build and test every dbt model, publish, in-process through Dagster."""
    settings = _settings(
        landing_dir=landing, warehouse_path=warehouse, publish_dir=publish, as_of=as_of
    )
    _run_jobs(settings)


def _run_jobs(settings: Settings, jobs: tuple[str, ...] = ("pipeline",)) -> None:
    """Run ``jobs`` in order in-process; stop at the first failure with exit code 1.

    dbt's own progress output goes to ``<home>/logs/last-run.log`` rather than the terminal.
    """
    from contextlib import redirect_stdout

    from orchestration.pipeline_run import run_job

    log = settings.warehouse.parent / "logs" / "last-run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    console.print(
        f"Running {', '.join(jobs)} as of [bold]{settings.as_of}[/bold]: "
        f"{settings.landing} -> {settings.warehouse}"
    )
    for job in jobs:
        with console.status(f"Running {job}..."), log.open("w") as sink, redirect_stdout(sink):
            outcome = run_job(settings, job)
        for failure in outcome.failures:
            console.print(f"[red]failed[/red] {failure}")
        for check in outcome.failed_checks:
            console.print(f"[red]check failed[/red] {check}")
        for check in outcome.warned_checks:
            console.print(f"[yellow]warning[/yellow] {check}")
        if not outcome.success:
            console.print(
                f"[red]{job} run {outcome.run_id} failed.[/red] Fix the errors above and run "
                f"again; dbt's log of the run: {log}"
            )
            raise typer.Exit(1)
        console.print(f"[green]{job} run {outcome.run_id} succeeded.[/green]")


@app.command()
def demo(
    as_of: str | None = AsOfOpt,
) -> None:
    """Generate the embedded sample extracts if missing, run the whole pipeline, show results."""
    from ingestion.synthetic import GeneratorConfig, generate_extracts

    settings = _settings()
    config = GeneratorConfig()
    if not any(settings.landing.glob("*/*/*")):
        with console.status("Generating the sample extracts..."):
            result = generate_extracts(settings.landing, config)
        console.print(result.summary())
        sample_as_of = result.as_of
    else:
        sample_as_of = config.last_day
        console.print(f"Using the sample extracts already in {settings.landing}")
    settings = _settings(as_of=as_of or sample_as_of)
    _run_jobs(settings, ("pipeline", "weekly_lists", "finance_close"))
    _show_demo_results(settings)


def _show_demo_results(settings: Settings) -> None:
    from metrics.report_rendering import rich_table
    from metrics.reports import account_list, latest_closed_quarter, open_serving_copy

    with open_serving_copy(settings.serving_copy) as con:
        console.print(rich_table(latest_closed_quarter(con), "NRR and GRR, last complete quarter"))
        for name, columns in DEMO_LIST_COLUMNS.items():
            frame = account_list(con, name).head(5)
            shown = [c for c in columns if c in frame.columns]
            console.print(rich_table(frame.select(shown), f"Top five of the {name} list"))
    console.print(
        "\n".join(
            [
                f"Warehouse (working copy): {settings.warehouse}",
                f"Serving copy for BI tools and analysts: {settings.serving_copy}",
                f"Published marts, lists and finance close: {settings.publish}",
                "Dagster UI: .venv/bin/dagster dev, then http://127.0.0.1:3000",
                "Reports: .venv/bin/csw report retention --grain quarter --from 2024-07 --to 2025-04",
            ]
        )
    )


DEMO_LIST_COLUMNS: dict[str, tuple[str, ...]] = {
    "risk": (
        "list_rank",
        "account_id",
        "account_name",
        "owner",
        "arr_at_risk_usd",
        "health_score",
        "churn_risk",
        "play",
    ),
    "expansion": (
        "list_rank",
        "account_id",
        "account_name",
        "owner",
        "current_arr_usd",
        "signals",
        "estimated_opportunity_usd",
    ),
}


@app.command("dbt-vars")
def dbt_vars(as_of: str | None = AsOfOpt) -> None:
    """Print the dbt --vars (reporting date and metric configuration) as JSON."""
    import json

    from metrics.dbt_vars import dbt_vars as vars_for

    typer.echo(json.dumps(vars_for(_settings(as_of=as_of).as_of)))


@app.command()
def bench(
    tier: list[str] = typer.Option([], "--tier", help="S, M or L; repeatable (default S)."),
    size: list[str] = typer.Option(
        [], "--size", help="Extra tier ACCOUNTSxMONTHS, e.g. 500x12 (growth curve); repeatable."
    ),
    measure: list[str] = typer.Option(
        [], "--measure", help="floor, full, stages or incremental; repeatable (default all)."
    ),
    code_ref: str | None = typer.Option(
        None, "--code-ref", help="Measure this git revision instead of the working tree."
    ),
    memory_limit: str | None = typer.Option(
        None, "--memory-limit", help="DuckDB memory limit (env CSW_DUCKDB_MEMORY_LIMIT)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="DuckDB and dbt threads (env CSW_DUCKDB_THREADS; cores)."
    ),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds allowed per step."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Dataset cache (default benchmarks/data)."
    ),
    results_dir: Path | None = typer.Option(
        None, "--results-dir", help="Results JSON (default benchmarks/results)."
    ),
    keep_work: bool = typer.Option(False, "--keep-work", help="Keep the warehouses measured."),
    regenerate: bool = typer.Option(False, "--regenerate", help="Regenerate cached datasets."),
) -> None:
    """Measure wall time and peak memory of the pipeline per tier (benchmarks/README.md)."""
    root = Path(__file__).resolve().parents[1]  # the repository, when installed editable
    for candidate in (root, Path.cwd()):
        if (candidate / "benchmarks" / "harness.py").is_file():
            sys.path.insert(0, str(candidate))
            break
    else:
        console.print("[red]benchmarks/ not found:[/red] run csw bench from the repository root.")
        raise typer.Exit(2)
    from benchmarks import harness
    from benchmarks.datasets import tier as tier_named

    try:
        options = harness.BenchOptions(
            tiers=[tier_named(t) for t in [*(tier or ([] if size else ["S"])), *size]],
            measures=tuple(dict.fromkeys(measure)) or tuple(harness.MEASURE_GROUPS),
            code_ref=code_ref,
            memory_limit=memory_limit,
            threads=threads,
            timeout_s=timeout,
            keep_work=keep_work,
            regenerate=regenerate,
            **({"data_dir": data_dir} if data_dir else {}),
            **({"results_dir": results_dir} if results_dir else {}),
        )
        if unknown := set(options.measures) - set(harness.MEASURE_GROUPS):
            raise ValueError(f"--measure takes {', '.join(harness.MEASURE_GROUPS)}, not {unknown}")
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    raise typer.Exit(harness.run(options, console))


report_app = typer.Typer(
    help="Finance and RevOps reports from the published warehouse.", no_args_is_help=True
)
app.add_typer(report_app, name="report")

FormatOpt = typer.Option("table", "--format", help="table, csv, json or md.")


def _emit(frame: pl.DataFrame, fmt: str, title: str) -> None:
    from metrics.report_rendering import FORMATS, render_text, rich_table

    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    if fmt == "table":
        console.print(rich_table(frame, title))
        if frame.is_empty():
            console.print("[yellow]No rows for this selection.[/yellow]")
    else:
        typer.echo(render_text(frame, fmt), nl=False)


def _report(
    fetch: Callable[[duckdb.DuckDBPyConnection], pl.DataFrame],
    publish: Path | None,
    fmt: str,
    title: str,
) -> None:
    """Read a report from the serving copy and print it; a report error exits with code 2."""
    from metrics.reports import ReportError, open_serving_copy

    settings = _settings(publish_dir=publish)
    try:
        with open_serving_copy(settings.serving_copy) as con:
            frame = fetch(con)
    except ReportError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    _emit(frame, fmt, title)


def _segment_flag(by: str | None) -> bool:
    if by not in (None, "segment"):
        raise typer.BadParameter("--by takes 'segment'")
    return by == "segment"


@report_app.command("retention")
def report_retention(
    grain: str = typer.Option("quarter", "--grain", help="month, quarter, year or trailing_12m."),
    start: str = typer.Option(..., "--from", help="First period's start month, YYYY-MM."),
    end: str = typer.Option(..., "--to", help="Last period's start month, YYYY-MM."),
    by: str | None = typer.Option(None, "--by", help="'segment' to break down by segment."),
    fmt: str = FormatOpt,
    publish: Path | None = PublishOpt,
) -> None:
    """NRR, GRR and the cohort MRR bridge per period (point-to-point cohorts)."""
    from metrics.reports import MonthRange, retention

    _report(
        lambda con: retention(con, grain, MonthRange.parse(start, end), _segment_flag(by)),
        publish,
        fmt,
        f"Revenue retention by {grain}, {start} to {end}",
    )


@report_app.command("mrr")
def report_mrr(
    start: str = typer.Option(..., "--from", help="First month, YYYY-MM."),
    end: str = typer.Option(..., "--to", help="Last month, YYYY-MM."),
    by: str | None = typer.Option(None, "--by", help="'segment' to break down by segment."),
    fmt: str = FormatOpt,
    publish: Path | None = PublishOpt,
) -> None:
    """The monthly MRR bridge: start + new + expansion + reactivation - contraction - churn = end."""
    from metrics.reports import MonthRange, mrr_bridge

    _report(
        lambda con: mrr_bridge(con, MonthRange.parse(start, end), _segment_flag(by)),
        publish,
        fmt,
        f"MRR bridge, {start} to {end}",
    )


@app.command("lists")
def lists(
    name: str = typer.Argument(..., help="risk, expansion or alerts."),
    owner: str | None = typer.Option(None, "--owner", help="Only this CSM's accounts."),
    fmt: str = FormatOpt,
    publish: Path | None = PublishOpt,
) -> None:
    """The latest published risk list, expansion list or adoption alerts."""
    from metrics.reports import account_list

    title = f"{name} list" + (f" for {owner}" if owner else "")
    _report(lambda con: account_list(con, name, owner), publish, fmt, title)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
