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
