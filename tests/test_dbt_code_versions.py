"""The dbt var ``code_versions`` the incremental models stamp on their rows: a model's entry
changes when its own code or the code of any model upstream of it changes, so an upgraded staging
model recomputes the incremental history built from it instead of leaving it stale."""

from __future__ import annotations

from typing import Any

from orchestration.defs.dbt.project import lineage_code_versions


def _model(name: str, sql: str, parents: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "resource_type": "model",
        "raw_code": sql,
        "depends_on": {"nodes": [f"model.p.{p}" for p in parents], "macros": []},
    }


def _manifest(staging_sql: str, history_sql: str) -> dict[str, Any]:
    nodes = {
        "model.p.stg": _model("stg", staging_sql, []),
        "model.p.history": _model("history", history_sql, ["stg"]),
        "model.p.other": _model("other", "select 3", []),
        "model.p.scores": _model("scores", "select 2", ["history", "other"]),
    }
    nodes["source.p.raw.events"] = {"name": "events", "resource_type": "source"}
    nodes["model.p.stg"]["depends_on"]["nodes"].append("source.p.raw.events")
    return {"nodes": nodes, "macros": {}}


def test_a_change_upstream_changes_the_code_version_of_every_model_downstream() -> None:
    before = lineage_code_versions(_manifest("select 1", "select 1"))
    after = lineage_code_versions(_manifest("select 1 -- upgraded", "select 1"))
    assert set(before) == {"stg", "history", "other", "scores"}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"stg", "history", "scores"}


def test_a_change_downstream_leaves_the_models_upstream_alone() -> None:
    before = lineage_code_versions(_manifest("select 1", "select 1"))
    after = lineage_code_versions(_manifest("select 1", "select 1 -- changed"))
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"history", "scores"}


def test_a_config_or_seed_file_change_changes_the_code_version() -> None:
    from orchestration.defs.dbt.project import node_code_version

    manifest = {"macros": {}}
    test = {"raw_code": "", "config": {"where": None, "severity": "error"}}
    seed = {"raw_code": "", "config": {}, "checksum": {"name": "sha256", "checksum": "a"}}
    assert node_code_version(manifest, test) != node_code_version(
        manifest, {**test, "config": {"where": "day > 1", "severity": "error"}}
    )
    assert node_code_version(manifest, seed) != node_code_version(
        manifest, {**seed, "checksum": {"name": "sha256", "checksum": "b"}}
    )


def test_what_a_models_yaml_declares_changes_its_code_version() -> None:
    """A contract's data type or constraint builds another table; a description is a comment
    the table carries (persist_docs)."""
    from orchestration.defs.dbt.project import node_code_version

    manifest = {"macros": {}}
    column = {"name": "mrr", "data_type": "decimal(18,2)", "constraints": [], "description": "MRR"}
    model = {"raw_code": "select 1", "config": {}, "description": "d", "columns": {"mrr": column}}
    version = node_code_version(manifest, model)
    for changed in (
        {**column, "data_type": "double"},
        {**column, "constraints": [{"type": "not_null"}]},
        {**column, "description": "Monthly recurring revenue"},
    ):
        assert node_code_version(manifest, {**model, "columns": {"mrr": changed}}) != version
    assert node_code_version(manifest, {**model, "description": "other"}) != version
    assert node_code_version(manifest, dict(model)) == version
