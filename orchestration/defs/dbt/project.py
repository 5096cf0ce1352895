"""The dbt project and its manifest.

dagster-dbt prepares the manifest by itself only under ``dagster dev``. Everywhere else (``csw``,
tests, CI, ``dagster definitions validate``) :func:`prepared_manifest` runs ``dbt parse`` once,
when the manifest is missing or older than a file of the project, and never on a plain import.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

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


#: Resource types whose code version the pipeline tracks (what dbt builds, and the tests).
_VERSIONED_TYPES = frozenset({"model", "seed", "snapshot", "test"})
#: Macros that read the var named by their argument (``cs_metric_var('feature_map')``): the
#: call sites name the var, not the macro's own ``var(name)``.
VAR_WRAPPERS = ("cs_metric_var",)
_VAR_CALL = re.compile(r"\b(?:var|" + "|".join(VAR_WRAPPERS) + r")\(")
_LITERAL_VAR = re.compile(r"\b(?:var|" + "|".join(VAR_WRAPPERS) + r")\(\s*['\"](\w+)['\"]")


def _macro_closure(manifest: Mapping[str, Any], roots: list[str]) -> list[str]:
    """The macros ``roots`` call, and the macros those call, and so on (sorted ids)."""
    macros, seen, todo = manifest["macros"], set(), list(roots)
    while todo:
        uid = todo.pop()
        if uid in seen or uid not in macros:
            continue
        seen.add(uid)
        todo.extend(macros[uid].get("depends_on", {}).get("macros", []))
    return sorted(seen)


def _node_code(
    manifest: Mapping[str, Any], node: Mapping[str, Any], skip: tuple[str, ...] = ()
) -> list[str]:
    """The code a node runs: its SQL, a generic test's arguments, its config (materialisation,
    a test's ``where`` and severity, hooks) and file checksum (a seed's CSV), then every macro it
    uses (but those named in ``skip``)."""
    macros = manifest["macros"]
    used = _macro_closure(manifest, node.get("depends_on", {}).get("macros", []))
    own = node.get("raw_code", "") + json.dumps(
        [node.get("test_metadata"), node.get("config"), node.get("checksum")], sort_keys=True
    )
    return [own, *(macros[m]["macro_sql"] for m in used if macros[m]["name"] not in skip)]


def node_code_version(manifest: Mapping[str, Any], node: Mapping[str, Any]) -> str:
    """sha256 of a node's SQL plus the code of every macro it depends on, transitively.

    dagster-dbt's default code version is ``sha1(raw_code)``: a change to a macro (the health
    model's scoring, the incremental date ranges) would not show. This is the code version the
    Dagster UI shows and the ``code_versions`` var the incremental models stamp on their rows.
    """
    digest = hashlib.sha256()
    for code in [*_node_code(manifest, node), _declared(node)]:
        digest.update(code.encode() + b"\0")
    return digest.hexdigest()


def _declared(node: Mapping[str, Any]) -> str:
    """What a node's YAML declares beside its config: its description and columns (names,
    contract data types, constraints, descriptions: a contract builds the table with them and
    ``persist_docs`` writes the descriptions as comments), and its constraints."""
    columns = {
        name: [c.get("data_type"), c.get("constraints"), c.get("description")]
        for name, c in (node.get("columns") or {}).items()
    }
    return json.dumps(
        [node.get("description"), columns, node.get("constraints")], sort_keys=True, default=str
    )


def vars_used(manifest: Mapping[str, Any], node: Mapping[str, Any]) -> frozenset[str] | None:
    """The vars a node's code reads, by name; None when one is read by a computed name."""
    names: set[str] = set()
    for code in _node_code(manifest, node, skip=VAR_WRAPPERS):
        literal = _LITERAL_VAR.findall(code)
        if len(literal) != len(_VAR_CALL.findall(code)):
            return None
        names.update(literal)
    return frozenset(names)


@cache
def loaded_manifest() -> Mapping[str, Any]:
    return json.loads(prepared_manifest().read_text(encoding="utf-8"))


@cache
def code_versions() -> Mapping[str, str]:
    """unique_id -> :func:`node_code_version` of every model, seed, snapshot and test."""
    manifest = loaded_manifest()
    return {
        uid: node_code_version(manifest, node)
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] in _VERSIONED_TYPES
    }


def lineage_code_versions(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Model name -> sha256 of its :func:`node_code_version` and those of every model upstream.

    An incremental model keeps rows built by earlier code, so the version it compares must move
    when any model it is built from changes (an upgraded staging model), not only its own SQL."""
    nodes = manifest["nodes"]
    models = {uid: n for uid, n in nodes.items() if n["resource_type"] == "model"}
    done: dict[str, str] = {}

    def version(uid: str) -> str:
        if uid not in done:
            parents = sorted(p for p in models[uid]["depends_on"].get("nodes", []) if p in models)
            digest = hashlib.sha256(node_code_version(manifest, models[uid]).encode())
            for parent in parents:
                digest.update(b"\0" + version(parent).encode())
            done[uid] = digest.hexdigest()
        return done[uid]

    return {models[uid]["name"]: version(uid) for uid in sorted(models)}


@cache
def model_code_versions() -> dict[str, str]:
    """The dbt var ``code_versions``: :func:`lineage_code_versions` of the prepared manifest."""
    return lineage_code_versions(loaded_manifest())
