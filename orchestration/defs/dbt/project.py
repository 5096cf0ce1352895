"""The dbt project and its manifest.

dagster-dbt prepares the manifest by itself only under ``dagster dev``. Everywhere else (``csw``,
tests, CI, ``dagster definitions validate``) :func:`prepared_manifest` runs ``dbt parse`` once,
when the manifest is missing or older than a file of the project, and never on a plain import.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"

#: What a change to should re-parse the project.
_PROJECT_INPUTS = (
    "dbt_project.yml",
    "profiles.yml",
    "models",
    "macros",
    "tests",
    "seeds",
    "snapshots",
)


@cache
def dbt_project() -> DbtProject:
    return DbtProject(project_dir=DBT_PROJECT_DIR)


def _newest_input_mtime(project_dir: Path) -> float:
    newest = 0.0
    for name in _PROJECT_INPUTS:
        path = project_dir / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            newest = max([newest, *(p.stat().st_mtime for p in path.rglob("*") if p.is_file())])
    return newest


def manifest_is_stale(project: DbtProject) -> bool:
    manifest = project.manifest_path
    return not manifest.exists() or manifest.stat().st_mtime < _newest_input_mtime(
        project.project_dir
    )


@cache
def prepared_manifest() -> Path:
    """The path of an up-to-date ``manifest.json``, running ``dbt parse`` first when needed."""
    project = dbt_project()
    if manifest_is_stale(project):
        from orchestration.defs.dbt.assets import dbt_resource

        dbt_resource().cli(["--quiet", "parse"], target_path=project.target_path).wait()
    return project.manifest_path


@cache
def mart_names() -> tuple[str, ...]:
    """The models under ``models/marts``, as named in the ``marts`` schema."""
    import json

    manifest = json.loads(prepared_manifest().read_text(encoding="utf-8"))
    return tuple(
        sorted(
            node["name"]
            for node in manifest["nodes"].values()
            if node["resource_type"] == "model" and node["fqn"][1:2] == ["marts"]
        )
    )


@cache
def exposure_marts(exposure: str) -> tuple[str, ...]:
    """The marts an exposure of ``models/_exposures.yml`` depends on: what that consumer reads."""
    import json

    manifest = json.loads(prepared_manifest().read_text(encoding="utf-8"))
    found = [e for e in manifest["exposures"].values() if e["name"] == exposure]
    if not found:
        raise KeyError(f"no exposure {exposure!r} in dbt_project/models/_exposures.yml")
    marts = set(mart_names())
    names = {node.rsplit(".", 1)[-1] for node in found[0]["depends_on"]["nodes"]}
    return tuple(sorted(names & marts))
