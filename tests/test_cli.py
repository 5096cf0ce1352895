from pathlib import Path

import duckdb
import pytest
import typer.main
from typer.testing import CliRunner

from orchestration.cli import app

runner = CliRunner()


def _command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(command, prefix: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


def test_every_command_has_help() -> None:
    paths = _command_paths()
    assert ["generate"] in paths
    for path in [[], *paths]:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_bad_month_is_explained() -> None:
    result = runner.invoke(app, ["generate", "--out", "/tmp/never", "--start", "2024/01"])
    assert result.exit_code != 0
    assert "YYYY-MM" in result.output


# --- csw report html ----------------------------------------------------------------------------


def _serving_copy(folder: Path, as_of: str | None) -> Path:
    """A serving copy with only marts.dim_accounts (the report's reporting date): every other
    section says its marts are missing, which is enough to write the page."""
    folder.mkdir(parents=True)
    with duckdb.connect(str(folder / "warehouse.duckdb")) as con:
        con.execute("create schema marts")
        con.execute("create table marts.dim_accounts (account_id varchar, as_of_date date)")
        if as_of:
            con.execute("insert into marts.dim_accounts values ('acc_1', ?)", [as_of])
    return folder


def test_report_html_writes_the_serving_copys_report_and_prints_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish = _serving_copy(tmp_path / "published", "2025-03-31")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["report", "html", "--publish", str(publish)])
    assert result.exit_code == 0, result.output
    written = Path(result.stdout.strip())
    assert written == Path("cs-warehouse-report-2025-03-31.html")
    page = (tmp_path / written).read_text()
    assert page.startswith("<!DOCTYPE html>") and "Reporting date 2025-03-31" in page

    chosen = tmp_path / "out" / "page.html"
    chosen.parent.mkdir()
    again = runner.invoke(app, ["report", "html", "--out", str(chosen), "--publish", str(publish)])
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == str(chosen) and chosen.read_text() == page


@pytest.mark.parametrize(
    ("as_of", "message"), [(None, "no reporting date"), ("missing", "No published warehouse")]
)
def test_report_html_without_a_reportable_serving_copy_exits_2_and_writes_nothing(
    tmp_path: Path, as_of: str | None, message: str
) -> None:
    publish = tmp_path / "published"
    if as_of != "missing":
        _serving_copy(publish, as_of)
    out = tmp_path / "report.html"
    result = runner.invoke(
        app, ["report", "html", "--out", str(out), "--publish", str(publish)], terminal_width=200
    )
    assert result.exit_code == 2
    assert message in result.output and "csw run" in result.output
    assert not out.exists()


def test_help_keeps_bracketed_defaults_and_env_names() -> None:
    """Help text is plain: ``[env CSW_...]`` and ``[default: ...]`` are not eaten as markup."""
    run = " ".join(runner.invoke(app, ["run", "--help"], terminal_width=200).output.split())
    assert "[env CSW_WAREHOUSE_PATH]" in run
    html = " ".join(
        runner.invoke(app, ["report", "html", "--help"], terminal_width=200).output.split()
    )
    assert "[default: ./cs-warehouse-report-<reporting date>.html" in html


def test_report_html_on_marts_of_an_older_shape_says_to_rebuild(tmp_path: Path) -> None:
    """A serving copy published before the marts' renames (fct_mrr_movements.account_count, not
    accounts) gets a clean message and exit 2, not a traceback."""
    publish = _serving_copy(tmp_path / "published", "2025-03-31")
    with duckdb.connect(str(publish / "warehouse.duckdb")) as con:
        con.execute(
            "create table marts.fct_mrr_movements as select date '2025-03-01' as month,"
            " 'new' as movement, 1 as movement_order, 10.0 as mrr_usd, 1 as account_count"
        )
    out = tmp_path / "report.html"
    result = runner.invoke(
        app, ["report", "html", "--out", str(out), "--publish", str(publish)], terminal_width=200
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "not the shape this version reads" in text and "accounts" in text
    assert "csw run" in text and "Traceback" not in text
    assert not out.exists()
