"""The ``csw`` command line. Each command resolves one Settings object and delegates."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import typer
from rich.console import Console

from orchestration.settings import Settings, load_settings

app = typer.Typer(
    name="csw",
    help="cs-warehouse: customer-success analytics from CRM, product and billing extracts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()


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
    as_of: str | None = AsOfOpt,
) -> None:
    """Ingest new extracts, then build and test every dbt model, in-process through Dagster."""
    settings = _settings(landing_dir=landing, warehouse_path=warehouse, as_of=as_of)
    _run_pipeline(settings)


def _run_pipeline(settings: Settings) -> None:
    from orchestration.pipeline_run import run_job

    console.print(
        f"Running the pipeline as of [bold]{settings.as_of}[/bold]: "
        f"{settings.landing} -> {settings.warehouse}"
    )
    with console.status("Ingesting, building and testing..."):
        outcome = run_job(settings)
    for failure in outcome.failures:
        console.print(f"[red]failed[/red] {failure}")
    for check in outcome.failed_checks:
        console.print(f"[red]check failed[/red] {check}")
    for check in outcome.warned_checks:
        console.print(f"[yellow]warning[/yellow] {check}")
    if not outcome.success:
        console.print(
            f"[red]Run {outcome.run_id} failed.[/red] Fix the errors above and run again."
        )
        raise typer.Exit(1)
    console.print(f"[green]Run {outcome.run_id} succeeded.[/green] Warehouse: {settings.warehouse}")


@app.command()
def demo(
    as_of: str | None = AsOfOpt,
) -> None:
    """Generate the embedded sample extracts if missing, then run the whole pipeline on them."""
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
    _run_pipeline(settings)


@app.command("dbt-vars")
def dbt_vars(as_of: str | None = AsOfOpt) -> None:
    """Print the dbt --vars (reporting date and metric configuration) as JSON."""
    import json

    from metrics.dbt_vars import dbt_vars as vars_for

    typer.echo(json.dumps(vars_for(_settings(as_of=as_of).as_of)))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
