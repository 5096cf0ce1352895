"""The ``csw`` command line. Each command resolves one Settings object and delegates."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.markup import escape

from orchestration.settings import Settings, load_settings

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from ingestion.synthetic import GenerationResult
    from metrics.health_config import HealthConfig
    from orchestration.backtest_report import Backtest, Candidate
    from orchestration.defs.dbt.test_failures import StoredFailures
    from orchestration.defs.ingestion.summary import IgnoredFile, TableSummary
    from orchestration.pipeline_run import CheckOutcome, EventListener, RunOutcome

T = TypeVar("T")

app = typer.Typer(
    name="csw",
    help="cs-warehouse: customer-success analytics from CRM, product and billing extracts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    # plain help: "[env CSW_...]" and "[default: ...]" are text, not rich markup
    rich_markup_mode=None,
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
    events_per_user_day: float | None = typer.Option(
        None,
        "--events-per-user-day",
        min=0.0,
        help="Mean events per active user per active day [default 4.0; consumer: per listener"
        " per active day, default 8.0, at least 1].",
    ),
    start: str | None = typer.Option(
        None, "--start", help="First month YYYY-MM [default 2024-01, fixed]."
    ),
    scenario: str = typer.Option(
        "b2b",
        "--scenario",
        help="b2b (teams of users, the shipped health model's events) or consumer (one user per"
        " account, its own events and health model; docs/synthetic-data.md).",
    ),
) -> None:
    """Write synthetic extracts for all 14 contract tables in the landing layout."""
    first_month = _parse_month(start)
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"--scenario takes {' or '.join(SCENARIOS)}, not {scenario!r}")
    target = out or _settings().landing
    sized = {
        "accounts": accounts,
        "months": months,
        "seed": seed,
        **({"start": first_month} if first_month else {}),
    }
    rate = events_per_user_day
    with console.status(f"Generating {accounts} {scenario} accounts over {months} months..."):
        if scenario == "consumer":
            result = _generate_consumer(target, sized, rate)
        else:
            from ingestion.synthetic import GeneratorConfig, generate_extracts

            config = GeneratorConfig(
                **sized,  # type: ignore[arg-type]
                **({} if rate is None else {"events_per_user_day": rate}),
            )
            result = generate_extracts(target, config)
    console.print(result.summary())
    if scenario == "consumer":
        from ingestion.synthetic.consumer import CONSUMER_HEALTH_MODEL

        console.print(
            "Its events are the consumer product's: score them with its own model, e.g."
            f" `csw run --landing {escape(str(target))} --health-model"
            f" {escape(str(CONSUMER_HEALTH_MODEL))}`.",
            highlight=False,
        )


SCENARIOS = ("b2b", "consumer")


def _generate_consumer(
    target: Path, sized: Mapping[str, object], rate: float | None
) -> GenerationResult:
    from ingestion.synthetic.consumer import ConsumerConfig, generate_consumer_extracts

    try:
        config = ConsumerConfig(
            **sized,  # type: ignore[arg-type]
            **({} if rate is None else {"events_per_active_day": rate}),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return generate_consumer_extracts(target, config)


WaitOpt = typer.Option(
    None,
    "--wait",
    min=0,
    help="Seconds to wait for another run writing the same warehouse [env CSW_RUN_LOCK_WAIT_S;"
    " default 0: exit at once with code 3].",
)
ForcePublishOpt = typer.Option(
    False,
    "--force-publish",
    help="Publish even a mart or list that would shrink beyond CSW_PUBLISH_MAX_SHRINK or come"
    " out empty [env CSW_FORCE_PUBLISH].",
)
QuarantineShareOpt = typer.Option(
    None,
    "--max-quarantine-share",
    min=0.0,
    max=1.0,
    help="Share of a file's or a table's rows that may be quarantined before the run fails"
    " [env CSW_MAX_QUARANTINE_SHARE; default 0.05].",
)
HealthModelOpt = typer.Option(
    None,
    "--health-model",
    help="The health-model YAML to score with; a relative path is from the working directory"
    " [env CSW_HEALTH_MODEL; default the shipped metrics/config/health_model.yaml].",
)
FullRefreshOpt = typer.Option(
    False,
    "--full-refresh",
    help="Rebuild every dbt model from scratch (dbt --full-refresh; the events lake and the"
    " backtest history are kept) and skip nothing.",
)
ForceOpt = typer.Option(
    False,
    "--force",
    help="Run even when nothing changed since the last successful run (landing files,"
    " configuration, code, as-of date, warehouse and publication).",
)

#: Exit codes: 0 all good; 1 data refused, a check or step failed, publication held back;
#: 2 bad usage or configuration; 3 another run holds the warehouse; 128 + N killed by signal N.
EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 1, 2, 3


def _say(label: str, text: str, style: str = "red") -> None:
    """One line: a coloured label, then text printed as is (no rich markup in data)."""
    console.print(f"[{style}]{label}[/{style}] {escape(text)}" if label else escape(text))


def _require_landing(settings: Settings) -> None:
    if not settings.landing.is_dir():
        console.print(
            f"[red]Landing directory {escape(str(settings.landing))} does not exist.[/red] Pass"
            " --landing, set CSW_LANDING_DIR, or write sample extracts with `csw generate`."
            " Nothing was run."
        )
        raise typer.Exit(EXIT_USAGE)


def _require_health_config(settings: Settings) -> HealthConfig:
    """The configured health model (``settings.health_model``, else the shipped one); stop with
    exit code 2 before anything runs when it is missing or invalid."""
    from metrics.health_config import HealthConfigError, load_health_config

    try:
        return load_health_config(settings.health_model)
    except HealthConfigError as exc:
        _say("Invalid health model configuration:", str(exc))
        console.print(
            "Fix the file, or point --health-model / CSW_HEALTH_MODEL at the right one, and run"
            " again; nothing was run."
        )
        raise typer.Exit(EXIT_USAGE) from None


def _require_adapters_config(settings: Settings) -> None:
    """Stop with exit code 2 before anything runs when CSW_ADAPTERS names a bad file."""
    if settings.adapters is None:
        return
    from orchestration.defs.adapters.config import AdaptersConfigError, load_adapters_config

    try:
        load_adapters_config(settings.adapters)
    except AdaptersConfigError as exc:
        _say("Invalid adapters configuration:", str(exc))
        raise typer.Exit(EXIT_USAGE) from None


@contextmanager
def _exclusive(settings: Settings, wait: float | None) -> Iterator[None]:
    """Hold the warehouse's run lock; exit with code 3 when another run keeps it."""
    from orchestration.run_lock import WarehouseBusyError, warehouse_lock

    try:
        with warehouse_lock(settings.warehouse, settings.run_lock_wait_s if wait is None else wait):
            _require_warehouse_writable(settings.warehouse)
            yield
    except WarehouseBusyError as busy:
        _say("", str(busy))
        raise typer.Exit(EXIT_BUSY) from None


def _require_warehouse_writable(warehouse: Path) -> None:
    """Exit with code 3 when a process outside ``csw`` (a Dagster run, a notebook) has the
    warehouse open for writing; every asset would otherwise retry DuckDB's lock for minutes."""
    import duckdb

    try:
        duckdb.connect(str(warehouse)).close()
    except duckdb.Error as exc:  # anything but a lock conflict is the run's to report
        # imported here: pipeline_run imports Dagster, which a run with nothing to do never needs
        from orchestration.pipeline_run import compact_error, is_duckdb_lock_error

        if is_duckdb_lock_error(str(exc)):
            _say("", compact_error(str(exc)))
            raise typer.Exit(EXIT_BUSY) from None


@contextmanager
def _interruptible() -> Iterator[None]:
    """A stop signal ends the command with 128 + its number once the run's children are gone."""
    from orchestration.pipeline_run import RunInterruptedError

    try:
        yield
    except RunInterruptedError as stop:
        stopped = f"stopped {len(stop.children)} child process(es) (dbt); " if stop.children else ""
        _say(
            f"Interrupted by {stop}:",
            f"{stopped}the run did not finish. What it had not published stays as it was;"
            " run again to finish (ingestion and dbt pick up where they are).",
        )
        # Leave at once, without the interpreter's shutdown: the run's thread may still be inside
        # a DuckDB write, and even once it has returned, finalising DuckDB's objects after an
        # interrupted query aborted the process (SIGABRT instead of 128 + the signal) under
        # load. The kernel releases the run lock; the next run removes what was left behind.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(stop.exit_code)


def _in_background(settings: Settings, work: Callable[[EventListener], T], dbt_nodes: int = 0) -> T:
    """Run ``work`` (given the progress listener) in a worker thread while the terminal shows
    progress; Dagster's and dbt's own output goes to ``<warehouse dir>/logs/last-run.log``."""
    from orchestration.pipeline_run import run_in_worker
    from orchestration.progress import RunProgress

    log = _run_log(settings)
    # Progress goes to standard error (captured now, before the redirection below), so standard
    # output carries the summary alone.
    progress = RunProgress(Console(file=sys.stderr, width=console.width), dbt_nodes)
    with (
        progress,
        log.open("a", encoding="utf-8") as sink,
        redirect_stdout(sink),
        redirect_stderr(sink),
    ):
        return run_in_worker(lambda: work(progress.listener), progress.tick)


def _run_log(settings: Settings) -> Path:
    return settings.warehouse.parent / "logs" / "last-run.log"


def _start_log(settings: Settings) -> Path:
    log = _run_log(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("", encoding="utf-8")
    return log


@app.command()
def ingest(
    landing: Path | None = LandingOpt,
    warehouse: Path | None = WarehouseOpt,
    max_quarantine_share: float | None = QuarantineShareOpt,
    wait: float | None = WaitOpt,
) -> None:
    """Load new and changed extracts into the warehouse's raw tables (in-process, via Dagster).

    Exits 1 when a file was refused, quarantined beyond the share or left outside the table
    folders, or a check or asset failed; 3 when another run is writing the warehouse.
    """
    from orchestration.defs.ingestion.summary import run_ingestion

    settings = _settings(
        landing_dir=landing, warehouse_path=warehouse, max_quarantine_share=max_quarantine_share
    )
    _require_landing(settings)
    with _exclusive(settings, wait), _interruptible():
        _start_log(settings)
        outcome = _in_background(
            settings, lambda listener: run_ingestion(settings, listener=listener)
        )
    console.print(_tables_view(outcome.tables, f"Ingestion run {outcome.run_id}"))
    for t in outcome.tables:
        _print_table_notes(t, settings.max_quarantine_share)
    _print_ignored(outcome.ignored)
    for check in outcome.failed_checks:
        _say("check failed", check)
    if not outcome.ok:
        console.print(
            "Reasons per file: raw.ingest_manifest (status, message) and the JSON reports in"
            f" {escape(str(settings.warehouse.parent / 'validation'))}; bad rows: raw.quarantine."
        )
        console.print("[red]Failed:[/red] fix or re-send the files named above and run again.")
        raise typer.Exit(EXIT_FAILED)
    console.print(
        f"[green]Ingestion succeeded.[/green] Warehouse: {escape(str(settings.warehouse))}"
    )


def _tables_view(
    tables: Sequence[TableSummary], title: str, *, collapse_skipped: bool = False
) -> RenderableType:
    """Per table: files loaded/skipped/refused, rows loaded/quarantined/duplicate. Tables without
    extracts (and, with ``collapse_skipped``, those whose files were all loaded before) collapse
    into one line each."""
    from rich.console import Group
    from rich.table import Table

    view = Table(title=title, title_justify="left")
    view.add_column("table", no_wrap=True)
    for header in ("loaded", "skipped", "refused", "rows", "quarantined", "dups"):
        view.add_column(header, justify="right")
    empty, unchanged = [], []
    for t in tables:
        if t.error is not None:
            view.add_row(t.table, "[red]failed[/red]", "", "", "", "", "")
        elif not t.has_news and not t.files_skipped:
            empty.append(t.table)
        elif not t.has_news and collapse_skipped:
            unchanged.append(t)
        else:
            view.add_row(
                t.table,
                str(t.files_loaded),
                str(t.files_skipped),
                f"[red]{t.files_refused}[/red]" if t.files_refused else "0",
                f"{t.rows_loaded:,}",
                f"[red]{t.rows_quarantined:,}[/red]" if t.over_share else f"{t.rows_quarantined:,}",
                f"{t.rows_duplicate:,}",
            )
    parts: list[RenderableType] = [view] if view.rows else [title]
    if unchanged:
        skipped = sum(t.files_skipped for t in unchanged)
        parts.append(
            f"Nothing new for {len(unchanged)} table(s) ({skipped:,} files loaded before): "
            + ", ".join(t.table for t in unchanged)
        )
    if empty:
        parts.append(f"No extracts for {len(empty)} table(s): {', '.join(empty)}")
    return Group(*parts)


def _print_table_notes(table: TableSummary, share: float) -> None:
    for note in table.notes:
        _say("refused" if note.outcome == "refused" else "over quarantine share", note.describe())
    if table.over_share and not table.over_share_files:
        _say(
            "over quarantine share",
            f"{table.table}: {table.rows_quarantined:,} rows quarantined, more than"
            f" {share:.0%} of the rows read; reasons in raw.quarantine",
        )
    if table.error is not None:
        _say("failed", f"{table.table}: {table.error}")


def _print_ignored(ignored: Sequence[IgnoredFile]) -> None:
    for f in ignored:
        _say(
            "not loaded" if f.blocking else "ignored",
            f"{f.source_file}: {f.message}",
            "red" if f.blocking else "yellow",
        )


@app.command()
def run(
    landing: Path | None = LandingOpt,
    warehouse: Path | None = WarehouseOpt,
    publish: Path | None = PublishOpt,
    as_of: str | None = AsOfOpt,
    force_publish: bool = ForcePublishOpt,
    max_quarantine_share: float | None = QuarantineShareOpt,
    wait: float | None = WaitOpt,
    health_model: Path | None = HealthModelOpt,
    full_refresh: bool = FullRefreshOpt,
    force: bool = ForceOpt,
) -> None:
    """Ingest new extracts, build and test every dbt model, publish, in-process through Dagster.

    When nothing changed since the last successful run (landing files, configuration, code,
    as-of date, warehouse, publication), says so and exits 0 without running; --force runs anyway.
    Exits 0 only when everything loaded, every check passed and the run published; 1 when a
    file was refused or quarantined beyond the share, a check or step failed, or publication was
    held back; 2 for bad usage or configuration; 3 when another run is writing the warehouse;
    128 + N when stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
    """
    settings = _settings(
        landing_dir=landing,
        warehouse_path=warehouse,
        publish_dir=publish,
        as_of=as_of,
        force_publish=force_publish or None,
        max_quarantine_share=max_quarantine_share,
        health_model=health_model,
    )
    _require_health_config(settings)
    _require_adapters_config(settings)
    _require_landing(settings)
    with _exclusive(settings, wait):
        outcome = _run_unless_unchanged(settings, full_refresh=full_refresh, force=force)
    if outcome is not None:
        _finish(settings, [outcome])


def _run_unless_unchanged(
    settings: Settings, *, full_refresh: bool, force: bool
) -> RunOutcome | None:
    """The pipeline's outcome, or None (and says why) when nothing changed since the last
    successful run: ``run_state.run_or_skip`` decides without importing Dagster or dbt, runs,
    and records a run that was ok."""
    from orchestration import run_state

    def running(reason: str) -> None:
        console.print(f"Running: {reason}.", highlight=False)

    def pipeline() -> RunOutcome:
        with _interruptible():
            return _run_jobs(settings, full_refresh=full_refresh)[0]

    decision = run_state.run_or_skip(
        settings, full_refresh=full_refresh, force=force, runner=pipeline, on_run=running
    )
    if decision.skipped:
        console.print(
            f"Nothing to do: {decision.reason} (landing files, configuration, code, as-of date,"
            " warehouse and publication unchanged). Run with --force to run anyway.",
            highlight=False,
        )
    return decision.outcome


def _run_jobs(
    settings: Settings, jobs: tuple[str, ...] = ("pipeline",), full_refresh: bool = False
) -> list[RunOutcome]:
    """Run ``jobs`` in order in-process, showing progress; stop after the first that fails.

    Dagster's and dbt's own output goes to ``<warehouse dir>/logs/last-run.log``. Nothing is
    recorded here: ``csw run`` records through ``run_state.run_or_skip``, and ``csw demo`` not
    at all (its churn model job rebuilds marts the pipeline published, so the next ``csw run``
    must run and publish them).
    """
    from orchestration.pipeline_run import run_job
    from orchestration.progress import pipeline_dbt_node_count

    _start_log(settings)
    console.print(
        f"Running {', '.join(jobs)} as of [bold]{settings.as_of}[/bold]: "
        f"{escape(str(settings.landing))} -> {escape(str(settings.warehouse))}"
    )
    outcomes = []
    for job in jobs:
        nodes = pipeline_dbt_node_count() if job == "pipeline" else 0
        outcome = _in_background(
            settings,
            lambda listener, job=job: run_job(
                settings, job, listener=listener, full_refresh=full_refresh
            ),
            nodes,
        )
        outcomes.append(outcome)
        if not outcome.ok:
            break
    return outcomes


def _finish(
    settings: Settings, outcomes: Sequence[RunOutcome], jobs: int = 1, publishes: bool = True
) -> None:
    """Print the run's summary and exit 1 unless every job ran and was ok; ``publishes``: the
    jobs publish, so the summary says what they published."""
    ok = len(outcomes) == jobs and all(o.ok for o in outcomes)
    _print_summary(settings, outcomes, ok, publishes)
    if not ok:
        raise typer.Exit(EXIT_FAILED)


def _print_summary(
    settings: Settings, outcomes: Sequence[RunOutcome], ok: bool, publishes: bool = True
) -> None:
    runs = ", ".join(f"{o.job} {o.run_id[:8]}" for o in outcomes)
    console.print(f"Summary of {runs} as of {settings.as_of}", highlight=False)
    tables = [t for o in outcomes for t in o.tables]
    if tables:
        console.print(_tables_view(tables, "Ingestion", collapse_skipped=True))
        for t in tables:
            _print_table_notes(t, settings.max_quarantine_share)
    _print_ignored([f for o in outcomes for f in o.ignored])
    for o in outcomes:
        for step, error in o.step_errors.items():
            if not step.startswith("published__"):
                _say("failed", f"{step}: {error}")
    _print_checks([c for o in outcomes for c in o.checks], settings.warehouse)
    if publishes:
        _print_publication(settings, outcomes)
    log = _run_log(settings)
    if ok:
        done = "everything loaded, checks passed, published" if publishes else "checks passed"
        console.print(f"[green]Succeeded:[/green] {done}. Log: {log}", highlight=False)
    else:
        console.print(
            "[red]Failed:[/red] see the lines above; fix the cause and run again (re-running is"
            f" safe). Log of the run: {escape(str(log))}",
            highlight=False,
        )


def _print_checks(checks: Sequence[CheckOutcome], warehouse: Path) -> None:
    """Failed and warned checks with their row counts and, for dbt tests that store their
    failures, a few of the rows."""
    import dagster as dg

    samples = _stored_failures(warehouse, [c.name for c in checks])
    for c in checks:
        failed = c.severity == dg.AssetCheckSeverity.ERROR
        rows = f" ({c.failed_rows:,} row(s))" if c.failed_rows is not None else ""
        detail = f": {c.description}" if c.description else ""
        _say(
            "check failed" if failed else "warning",
            f"{c.label}{rows}{detail}",
            "red" if failed else "yellow",
        )
        stored = samples.get(c.name)
        if stored is not None:
            _say("", f"    {stored.count:,} row(s) in {stored.relation}, e.g.:")
            for line in stored.sample_lines()[:3]:
                _say("", f"      {line}")


def _stored_failures(warehouse: Path, names: Sequence[str]) -> Mapping[str, StoredFailures]:
    """Count and sample rows of dbt tests' stored failures (empty when unavailable)."""
    if not names:
        return {}
    try:
        from orchestration.defs.dbt.test_failures import stored_failures
    except ImportError:  # pragma: no cover - the helper ships with the dbt assets
        return {}
    try:
        return stored_failures(warehouse, names, limit=3)
    except Exception:  # a summary must not fail on a warehouse it cannot read now
        return {}


def _print_publication(settings: Settings, outcomes: Sequence[RunOutcome]) -> None:
    held = [
        (step, error)
        for o in outcomes
        for step, error in o.step_errors.items()
        if step.startswith("published__")
    ]
    for step, error in held:
        how = "" if "force-publish" in error else " To publish anyway: --force-publish."
        reason = error.removeprefix("Publication held back:").strip()
        _say(f"publication held back ({step.replace('__', '/')}):", f"{reason}{how}")
    published = {k: v for o in outcomes for k, v in o.published.items()}
    parts = []
    if (warehouse := published.get("published/warehouse")) is not None:
        marts = warehouse.get("row_counts") or warehouse.get("marts") or ()
        written = warehouse.get("marts_published")
        if warehouse.get("unchanged"):
            parts.append(
                f"nothing new, the {len(marts)} marts are as version"
                f" {warehouse.get('published_version')} holds them (nothing written)"
            )
        else:
            changed = f" ({len(written)} written)" if written is not None else ""
            parts.append(
                f"serving copy {warehouse.get('serving_copy')} and {len(marts)} marts{changed}"
            )
    if (lists := published.get("published/lists")) is not None:
        parts.append(f"lists for {lists.get('as_of')}")
    if (close := published.get("published/finance_close")) is not None:
        parts.append(f"finance close {close.get('month')}")
    if parts:
        _say("Published:", "; ".join(parts), "green")
    forced = [str(reason) for values in published.values() for reason in values.get("forced") or ()]
    if forced:
        _say("Published although held back (--force-publish):", "", "yellow")
        for reason in forced:
            _say("", f"  {reason}")
    if not parts and not held:
        _say(
            "Nothing published:",
            f"an earlier step failed; the previous publication in {settings.publish} stays.",
            "yellow",
        )


@app.command()
def demo(
    as_of: str | None = AsOfOpt,
    force_publish: bool = ForcePublishOpt,
    wait: float | None = WaitOpt,
    health_model: Path | None = HealthModelOpt,
) -> None:
    """Generate the embedded sample extracts if missing, run the whole pipeline, show results.

    The sample's events are those of the shipped health model; ``--health-model`` scores them
    with another."""
    from ingestion.synthetic import GeneratorConfig, generate_extracts

    settings = _settings(health_model=health_model)
    _require_health_config(settings)
    config = GeneratorConfig()
    jobs = DEMO_JOBS
    with _exclusive(settings, wait), _interruptible():
        if not any(settings.landing.glob("*/*/*")):
            with console.status("Generating the sample extracts..."):
                result = generate_extracts(settings.landing, config)
            console.print(result.summary())
            sample_as_of = result.as_of
        else:
            sample_as_of = config.last_day
            console.print(f"Using the sample extracts already in {escape(str(settings.landing))}")
        settings = _settings(
            as_of=as_of or sample_as_of,
            force_publish=force_publish or None,
            health_model=health_model,
        )
        outcomes = _run_jobs(settings, jobs)
    _finish(settings, outcomes, len(jobs))
    _show_demo_results(settings)


#: What ``csw demo`` runs, in order: the pipeline, the churn model's fit (its probabilities then
#: reach the risk list), the lists, the finance close.
DEMO_JOBS = ("pipeline", "churn_model", "weekly_lists", "finance_close")


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
                f"HTML report (charts and lists, offline): {settings.publish / 'report.html'}"
                " (or .venv/bin/csw report html)",
                "How well the health score predicted churn: .venv/bin/csw backtest",
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


@app.command()
def adapt(
    system: str = typer.Argument(..., help="stripe, salesforce, hubspot or segment."),
    source: Path = typer.Option(
        ..., "--from", help="The folder of the system's files (connector tables or export)."
    ),
    to: Path | None = typer.Option(
        None, "--to", help="Landing directory to write contract files into [env CSW_LANDING_DIR]."
    ),
    mapping: Path | None = typer.Option(
        None, "--mapping", help="The mapping YAML (docs/adapters.md) [default: the defaults]."
    ),
) -> None:
    """Turn one system's export into contract files in a landing directory (one-off load).

    Prints what happened to every source table's rows (read, written, rejected, excluded), the
    method used and any warnings. Exits 0 when every row was written or excluded with its
    reason; 1 when any row was rejected (the rejects file is named); 2 for a bad system, mapping
    or unreadable source (nothing written).
    """
    from adapters.core import AdapterInputError
    from orchestration.defs.adapters.registry import SYSTEMS

    if system not in SYSTEMS:
        _say("Unknown system:", f"{system!r}; adapt takes {', '.join(SYSTEMS)}.")
        raise typer.Exit(EXIT_USAGE)
    landing = to or _settings().landing
    try:
        loaded = SYSTEMS[system].load_mapping(mapping)
    except (OSError, ValueError) as exc:
        _say("Invalid mapping:", f"{exc}. Fix the file (docs/adapters.md); nothing was written.")
        raise typer.Exit(EXIT_USAGE) from None
    try:
        result = SYSTEMS[system].adapt(source, landing, loaded)
    except AdapterInputError as exc:
        _say("Cannot adapt:", str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    _say("", result.summary())
    if not result.ok:
        unbalanced = [a.source_table for a in result.accounts if not a.balanced]
        _say(
            "Failed:",
            f"{result.rejected} {system} source row(s) were rejected; each is listed with its file,"
            f" row and reason in {result.rejects_file}. The other rows were written to {landing};"
            " fix the rejected ones at the source or in the mapping and run csw adapt again"
            " before ingesting, or the warehouse will miss them."
            if result.rejected
            else f"the row counts of {', '.join(unbalanced)} do not add up (read != written +"
            " rejected + excluded): an adapter bug; report it with the source files.",
        )
        raise typer.Exit(EXIT_FAILED)
    console.print(
        f"[green]Adapted.[/green] Contract files in {escape(str(landing))}; load them with"
        f" `csw ingest --landing {escape(str(landing))}` (or `csw run`)."
    )


@app.command("dbt-vars")
def dbt_vars(as_of: str | None = AsOfOpt, health_model: Path | None = HealthModelOpt) -> None:
    """Print the dbt --vars (reporting date and the configured health model) as JSON."""
    import json

    from metrics.dbt_vars import dbt_vars as vars_for

    settings = _settings(as_of=as_of, health_model=health_model)
    config = _require_health_config(settings)
    typer.echo(json.dumps(vars_for(settings.as_of, config, settings.max_unmapped_event_share)))


BacktestFormatOpt = typer.Option("table", "--format", help="table or json.")


@app.command()
def backtest(
    warehouse: Path | None = WarehouseOpt,
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="Evaluate as of this reporting date, YYYY-MM-DD [default: the date the warehouse's"
        " backtest was computed as of]. Another date is evaluated on a copy of the warehouse.",
    ),
    candidate: list[Path] = typer.Option(
        [],
        "--candidate",
        help="A health-model YAML to compare with the current one on the same history, scored"
        " on a temporary copy of the warehouse (which is not changed); repeatable.",
    ),
    segment: str | None = typer.Option(
        None, "--segment", help="One segment [default: all, plus an AUC table per segment]."
    ),
    fmt: str = BacktestFormatOpt,
    health_model: Path | None = HealthModelOpt,
) -> None:
    """How well the health score, churn risk and fitted churn probability separated the accounts
    that churned, against a 30-day activity baseline (marts.fct_health_backtest).

    Reads the warehouse read-only, for the configured health model and churn horizon
    (CSW_CHURN_HORIZON_DAYS). Exits 0 when a report was printed; 1 when there is nothing to
    evaluate (no complete outcome window) or a candidate's build failed; 2 for bad usage or an
    invalid health model or candidate; 3 when another process is writing the warehouse.
    """
    from orchestration import backtest_report as bt

    if fmt not in ("table", "json"):
        raise typer.BadParameter("--format takes table or json")
    as_of_date = _parse_date(as_of, "--as-of")
    settings = _settings(warehouse_path=warehouse, health_model=health_model)
    config = _require_health_config(settings)
    try:
        candidates = bt.load_candidates(candidate)
        current, compared = _backtests(settings, config, candidates, as_of_date)
        for backtest in (current, *compared):
            if segment is not None:
                bt.require_segment(backtest, segment)
    except bt.BacktestError as exc:
        _say("", str(exc))
        raise typer.Exit(exc.exit_code) from None
    if candidates:
        _print_comparison(current, candidates, compared, segment or bt.ALL, fmt)
    elif fmt == "json":
        typer.echo(bt.dumps(bt.report_json(current, segment, *_churn_fits(settings, current))))
    else:
        _print_backtest(current, segment, *_churn_fits(settings, current))


def _backtests(
    settings: Settings,
    config: HealthConfig,
    candidates: Sequence[Candidate],
    as_of: date | None,
) -> tuple[Backtest, list[Backtest]]:
    """The configured model's backtest and each candidate's, all as of one date: the stored
    rows where the warehouse has them for that date, the others built on a copy of it."""
    from orchestration import backtest_report as bt

    current = bt.model_version(config)
    horizon = settings.churn_horizon_days
    with _closing(bt.open_read_only(settings.warehouse, settings.serving_copy)) as con:
        stored = bt.read_backtest(con, current.version, horizon)
        if stored is None and not candidates and as_of is None:
            raise bt.nothing_to_evaluate(con, current, horizon)
        target = bt.require_complete_window(
            con, horizon, as_of or (stored.evaluated_as_of_date if stored else None)
        )
    known = {current.version: stored} if stored and stored.evaluated_as_of_date == target else {}
    todo = {current.version: config, **{c.version.version: c.config for c in candidates}}
    missing = [c for version, c in todo.items() if version not in known]
    if missing:
        progress = Console(file=sys.stderr, width=console.width)
        built = bt.score_candidates(
            settings, missing, target, lambda line: progress.print(escape(line), highlight=False)
        )
        known.update({b.version: b for b in built})
    return known[current.version], [known[c.version.version] for c in candidates]


def _churn_fits(
    settings: Settings, backtest: Backtest
) -> tuple[dict[str, object] | None, dict[str, object] | None]:
    """The latest fit and the fit in use as of the backtest's date."""
    from orchestration import backtest_report as bt

    with _closing(bt.open_read_only(settings.warehouse, settings.serving_copy)) as con:
        return bt.churn_model_fits(
            con, backtest.version, backtest.horizon_days, backtest.evaluated_as_of_date
        )


@contextmanager
def _closing(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    try:
        yield con
    finally:
        con.close()


def _parse_date(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{flag} {value!r} is not a date; write it as YYYY-MM-DD"
        ) from None


def _print_backtest(
    backtest: Backtest, segment: str | None, fit: dict | None, in_use: dict | None = None
) -> None:
    from orchestration import backtest_report as bt
    from orchestration.backtest_report import rich_table

    shown = segment or bt.ALL
    rows = bt.segment_rows(backtest, shown)
    first = rows["first_scored_date"].min()
    last = rows["last_scored_date"].max()
    console.print(
        f"Backtest of health model [bold]{escape(backtest.label)}[/bold], churn within"
        f" {backtest.horizon_days} days (MRR went to 0), evaluated as of"
        f" {backtest.evaluated_as_of_date}: scored dates {first} to {last}, segment {escape(shown)}",
        highlight=False,
    )
    console.print(
        rich_table(bt.scorer_table(backtest, shown), "AUC per scorer (1 = perfect, 0.5 = chance)")
    )
    _print_verdicts(rows)
    bands = bt.bands_table(backtest, shown)
    if not bands.is_empty():
        console.print(rich_table(bands, "Churn by band"))
    calibration = bt.calibration_table(backtest, shown)
    if not calibration.is_empty():
        console.print(rich_table(calibration, "Calibration: predicted probability against churn"))
    if segment is None:
        per_segment = bt.segment_table(backtest)
        if not per_segment.is_empty():
            console.print(rich_table(per_segment, "AUC per segment (--segment S for one in full)"))
    for line in bt.churn_model_lines(fit, in_use):
        _say("", line)


def _print_verdicts(rows: pl.DataFrame) -> bool:
    """The sentences against the baseline, worse ones in red, then what to do; True when one
    scorer did worse."""
    from orchestration import backtest_report as bt

    said = bt.verdicts(rows)
    for worse, sentence in said:
        _say("", sentence) if not worse else console.print(f"[red]{escape(sentence)}[/red]")
    if any(worse for worse, _ in said):
        _say("", bt.WHAT_TO_DO)
    return any(worse for worse, _ in said)


def _print_comparison(
    current: Backtest,
    candidates: Sequence[Candidate],
    compared: Sequence[Backtest],
    segment: str,
    fmt: str,
) -> None:
    from orchestration import backtest_report as bt
    from orchestration.backtest_report import rich_table

    named = [(str(c.path), b) for c, b in zip(candidates, compared, strict=True)]
    if fmt == "json":
        typer.echo(bt.dumps(bt.comparison_json(current, named, segment)))
        return
    console.print(
        f"What-if as of {current.evaluated_as_of_date}, churn within {current.horizon_days} days,"
        f" segment {escape(segment)}: the current model {escape(current.label)} against"
        f" {len(named)} candidate(s) on the same history; the warehouse is unchanged.",
        highlight=False,
    )
    for n, (path, backtest) in enumerate(named, start=1):
        _say("", f"  candidate {n}: {path} = {backtest.label}")
    table = bt.comparison_table(current, compared, segment)
    console.print(rich_table(table, "AUC per scorer (change n: candidate n minus current)"))
    bands = bt.comparison_bands(current, compared, segment)
    if not bands.is_empty():
        console.print(rich_table(bands, "Churn by band"))
    for role, backtest in [("current", current), *(("candidate", b) for b in compared)]:
        console.print(f"[bold]{role} {escape(backtest.label)}[/bold]")
        _print_verdicts(bt.segment_rows(backtest, segment))
        if not bt.same_history(current, backtest):
            _say(
                "not the same history:",
                "its scored or churned rows differ from the current model's (extracts loaded"
                " since the last `csw run`?); run `csw run`, then compare again.",
                "yellow",
            )


@app.command("fit-churn-model")
def fit_churn_model(
    warehouse: Path | None = WarehouseOpt,
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="The warehouse's reporting date, YYYY-MM-DD [env CSW_AS_OF; default: the date the"
        " warehouse was last built for]. Another date exits 2: run `csw run --as-of` first.",
    ),
    wait: float | None = WaitOpt,
    health_model: Path | None = HealthModelOpt,
) -> None:
    """Fit the churn model on the warehouse's history (the Dagster job churn_model), then say
    whether it beat the configured score, the 30-day baseline and chance out of time and is used.

    The fit, and the models the job rebuilds after it (health, risk list), are as of the
    warehouse's reporting date, the as_of it was last built for: fitting as of another date
    would rebuild them as of that date without the extracts of a `csw run` for it.

    Exit codes as for `csw run`: 0 the job ran (whether or not the model was accepted), 1 a
    step failed, 2 bad usage or configuration (an --as-of other than the warehouse's
    reporting date), 3 another run is writing the warehouse.
    """
    from orchestration import backtest_report as bt
    from orchestration.defs.jobs import CHURN_MODEL_JOB

    _parse_date(as_of, "--as-of")
    settings = _settings(warehouse_path=warehouse, as_of=as_of, health_model=health_model)
    config = _require_health_config(settings)
    if not settings.warehouse.is_file():
        _say(
            f"No warehouse at {settings.warehouse}.",
            "Pass --warehouse or set CSW_WAREHOUSE_PATH, or build one with `csw run`.",
        )
        raise typer.Exit(EXIT_USAGE)
    with _exclusive(settings, wait), _interruptible():
        settings = _fit_settings(settings, as_of)
        outcomes = _run_jobs(settings, (CHURN_MODEL_JOB,))
    _finish(settings, outcomes, publishes=False)
    with _closing(duckdb_read_only(settings.warehouse)) as con:
        fits = bt.churn_model_fits(
            con, bt.model_version(config).version, settings.churn_horizon_days, settings.as_of
        )
    for line in bt.churn_model_lines(*fits):
        _say("", line)


def _fit_settings(settings: Settings, flag: str | None) -> Settings:
    """``settings`` as of the warehouse's reporting date; exit 2 when the warehouse has none or
    the date asked for (--as-of or CSW_AS_OF) is another."""
    from orchestration import backtest_report as bt

    with _closing(duckdb_read_only(settings.warehouse)) as con:
        reporting = bt.reporting_date(con)
    if reporting is None:
        _say(
            f"The warehouse {settings.warehouse} has no reporting date",
            "(marts.fct_account_health has no row of the date it was built for). Build it with"
            " `csw run`, then fit.",
        )
        raise typer.Exit(EXIT_USAGE)
    if "as_of" in settings.model_fields_set and settings.as_of != reporting:
        given = "--as-of" if flag is not None else "CSW_AS_OF"
        _say(
            f"{given} {settings.as_of} is not the warehouse's reporting date:",
            f"the warehouse was built as of {reporting}. The fit rebuilds the health and"
            f" risk-list models after it as of its own date, which would put them on"
            f" {settings.as_of} without a run for it, and `csw run --as-of` an earlier date"
            f" ignores a later fit. Build the warehouse for that date first, `csw run --as-of"
            f" {settings.as_of}`, then fit; or leave {given} out to fit as of {reporting}.",
        )
        raise typer.Exit(EXIT_USAGE)
    console.print(
        f"Fitting the churn model as of {reporting}, the warehouse's reporting date (the date"
        " it was last built for, marts.fct_account_health).",
        highlight=False,
    )
    return settings.model_copy(update={"as_of": reporting})


def duckdb_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    import duckdb

    return duckdb.connect(str(path), read_only=True)


def _bench_measures(measure: list[str], engine: str, defaults: tuple[str, ...]) -> tuple[str, ...]:
    """--measure's groups; --engine spark adds the engines group (alone without --measure)."""
    if engine not in ("duckdb", "spark"):
        raise ValueError(f"--engine takes duckdb or spark, not {engine!r}")
    chosen = list(dict.fromkeys(measure))
    if engine == "spark":
        return (*[m for m in chosen if m != "engines"], "engines")
    return tuple(chosen) or defaults


@app.command()
def bench(
    tier: list[str] = typer.Option([], "--tier", help="S, M or L; repeatable (default S)."),
    size: list[str] = typer.Option(
        [], "--size", help="Extra tier ACCOUNTSxMONTHS, e.g. 500x12 (growth curve); repeatable."
    ),
    measure: list[str] = typer.Option(
        [],
        "--measure",
        help="floor, full, rerun, fixed, stages, incremental or engines; repeatable (default"
        " all but engines).",
    ),
    engine: str = typer.Option(
        "duckdb",
        "--engine",
        help="spark: measure the dbt models that build on Spark, on Spark and on DuckDB from the"
        " same ingested warehouse (the engines measure; needs the spark extra and Java 17;"
        " docs/engines.md).",
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
            measures=_bench_measures(measure, engine, harness.DEFAULT_MEASURES),
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
    help="Finance and RevOps reports from the published warehouse.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(report_app, name="report")

FormatOpt = typer.Option(
    "table",
    "--format",
    help="table, csv, json or md. table and md are for people: money $1,234.56, ratios as"
    " percentages (104.3%), ISO dates. csv and json are for machines: the marts' exact values.",
)
#: Said by every report and list command's help.
EMPTY_HELP = (
    " An empty selection is not an error: it exits 0 and says what the warehouse covers (after"
    " the table; on stderr for csv and json, so stdout stays valid). csv and json keep the"
    " exact values; table and md are formatted."
)


def _emit(frame: pl.DataFrame, fmt: str, title: str, empty_reason: str | None) -> None:
    from metrics.report_rendering import FORMATS, render_text, rich_table

    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    if fmt == "table":
        console.print(rich_table(frame, title))
    else:
        typer.echo(render_text(frame, fmt), nl=False)
    if empty_reason is None:
        return
    if fmt in ("table", "md"):
        console.print(f"[yellow]{escape(empty_reason)}[/yellow]")
    else:
        typer.echo(empty_reason, err=True)


def _report(
    fetch: Callable[[duckdb.DuckDBPyConnection], pl.DataFrame],
    explain: Callable[[duckdb.DuckDBPyConnection], str],
    publish: Path | None,
    fmt: str,
    title: str,
) -> None:
    """Read a report from the serving copy and print it, with ``explain``'s reason when it is
    empty; a report error exits with code 2."""
    from metrics.reports import ReportError, open_serving_copy

    settings = _settings(publish_dir=publish)
    try:
        with open_serving_copy(settings.serving_copy) as con:
            frame = fetch(con)
            reason = explain(con) if frame.is_empty() else None
    except ReportError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    _emit(frame, fmt, title, reason)


def _segment_flag(by: str | None) -> bool:
    if by not in (None, "segment"):
        raise typer.BadParameter("--by takes 'segment'")
    return by == "segment"


@report_app.command(
    "retention",
    help=("NRR, GRR and the cohort MRR bridge per period (point-to-point cohorts)." + EMPTY_HELP),
)
def report_retention(
    grain: str = typer.Option("quarter", "--grain", help="month, quarter, year or trailing_12m."),
    start: str = typer.Option(..., "--from", help="First period's start month, YYYY-MM."),
    end: str = typer.Option(..., "--to", help="Last period's start month, YYYY-MM."),
    by: str | None = typer.Option(None, "--by", help="'segment' to break down by segment."),
    fmt: str = FormatOpt,
    publish: Path | None = PublishOpt,
) -> None:
    from metrics.reports import MonthRange, retention, retention_empty_reason

    def fetch(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
        return retention(con, grain, MonthRange.parse(start, end), _segment_flag(by))

    def explain(con: duckdb.DuckDBPyConnection) -> str:
        return retention_empty_reason(con, grain, MonthRange.parse(start, end))

    _report(fetch, explain, publish, fmt, f"Revenue retention by {grain}, {start} to {end}")


@report_app.command(
    "mrr",
    help=(
        "The monthly MRR bridge: start + new + expansion + reactivation - contraction - churn = end."
        + EMPTY_HELP
    ),
)
def report_mrr(
    start: str = typer.Option(..., "--from", help="First month, YYYY-MM."),
    end: str = typer.Option(..., "--to", help="Last month, YYYY-MM."),
    by: str | None = typer.Option(None, "--by", help="'segment' to break down by segment."),
    fmt: str = FormatOpt,
    publish: Path | None = PublishOpt,
) -> None:
    from metrics.reports import MonthRange, mrr_bridge, mrr_empty_reason

    def fetch(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
        return mrr_bridge(con, MonthRange.parse(start, end), _segment_flag(by))

    def explain(con: duckdb.DuckDBPyConnection) -> str:
        return mrr_empty_reason(con, MonthRange.parse(start, end))

    _report(fetch, explain, publish, fmt, f"MRR bridge, {start} to {end}")


@report_app.command("html")
def report_html(
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Where to write the page [default: ./cs-warehouse-report-<reporting date>.html in"
        " the current directory; the published copy is <publish>/report.html, written by each"
        " lists run and finance close].",
    ),
    publish: Path | None = PublishOpt,
) -> None:
    """Write the HTML report (charts and lists, one offline page) of the published warehouse and
    print its path. Exits 2 when there is no published warehouse or it has no marts to report."""
    import duckdb

    from metrics import html_report
    from metrics.reports import ReportError, open_serving_copy

    settings = _settings(publish_dir=publish)
    try:
        with open_serving_copy(settings.serving_copy) as con:
            target = out or Path(f"cs-warehouse-report-{html_report.reporting_date(con)}.html")
            written = html_report.write_report(con, target)
    except (ReportError, html_report.ReportError) as exc:
        _say(
            "No report",
            f"{exc}. The report reads the serving copy {settings.serving_copy}: run `csw run`"
            " (or `csw demo`) to publish it, or pass --publish DIR.",
        )
        raise typer.Exit(2) from exc
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0]
        _say(
            "No report",
            f"The marts of {settings.serving_copy} are not the shape this version reads"
            f" ({reason}): they were published by an older version. Run `csw run` to rebuild"
            " and republish them.",
        )
        raise typer.Exit(2) from exc
    except OSError as exc:
        _say("No report", f"cannot write {out}: {exc.strerror}. Pass --out to a writable path.")
        raise typer.Exit(2) from exc
    typer.echo(str(written))


@app.command(
    "lists",
    help=("The latest published risk list, expansion list or adoption alerts." + EMPTY_HELP),
)
def lists(
    name: str = typer.Argument(..., help="risk, expansion or alerts."),
    owner: str | None = typer.Option(
        None, "--owner", help="Only this CSM's accounts (dim_accounts.owner)."
    ),
    fmt: str = FormatOpt,
    publish: Path | None = PublishOpt,
) -> None:
    from metrics.reports import account_list, list_empty_reason

    title = f"{name} list" + (f" for {owner}" if owner else "")
    _report(
        lambda con: account_list(con, name, owner),
        lambda con: list_empty_reason(con, name, owner),
        publish,
        fmt,
        title,
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
