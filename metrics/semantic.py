"""MetricFlow queries of the semantic layer (dbt_project/models/semantic) from Python.

``mf query`` run in dbt_project/ reads ``target/semantic_manifest.json`` of the project, always
there: :func:`metricflow_engine` takes the semantic manifest from any path instead (a test's own
``dbt parse``, a CI artifact), and otherwise builds the engine as ``mf`` does: ``dbt debug`` on
the project (which registers dbt-duckdb with the profile, so ``CSW_WAREHOUSE_PATH`` chooses the
warehouse), then MetricFlow over that adapter. :func:`query` returns a polars frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl
from dbt.adapters.factory import get_adapter_by_type
from dbt_metricflow.cli.dbt_connectors.adapter_backed_client import AdapterBackedSqlClient
from dbt_metricflow.cli.dbt_connectors.dbt_config_accessor import dbtProjectMetadata
from metricflow.engine.metricflow_engine import MetricFlowEngine, MetricFlowQueryRequest
from metricflow_semantics.model.dbt_manifest_parser import (
    parse_manifest_from_dbt_generated_manifest,
)
from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

#: The dbt project (its profiles.yml is next to dbt_project.yml).
PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"


class SemanticManifestMissingError(FileNotFoundError):
    """No semantic manifest where one was expected."""


def metricflow_engine(semantic_manifest: Path, project_dir: Path = PROJECT_DIR) -> MetricFlowEngine:
    """A MetricFlow engine over ``semantic_manifest`` (written by ``dbt parse`` into its target
    path), querying the warehouse the project's profile names (``CSW_WAREHOUSE_PATH``)."""
    if not semantic_manifest.is_file():
        raise SemanticManifestMissingError(
            f"no semantic manifest at {semantic_manifest}: run `dbt parse` in {project_dir}"
            " (with --target-path set to the manifest's folder) first"
        )
    metadata = dbtProjectMetadata.load_from_paths(
        profiles_path=project_dir, project_path=project_dir
    )
    adapter = get_adapter_by_type(metadata.profile.credentials.type)
    manifest = parse_manifest_from_dbt_generated_manifest(
        manifest_json_string=semantic_manifest.read_text(encoding="utf-8")
    )
    return MetricFlowEngine(
        semantic_manifest_lookup=SemanticManifestLookup(manifest),
        sql_client=AdapterBackedSqlClient(adapter),
    )


def query(
    engine: MetricFlowEngine,
    metrics: Sequence[str],
    group_by: Sequence[str],
    where: Sequence[str] = (),
) -> pl.DataFrame:
    """``mf query --metrics ... --group-by ... --where ...`` as a polars frame, one column per
    group-by and metric, named as ``mf`` names them (``metric_time__month``, ``nrr``); times are
    datetimes and DECIMAL sums floats, as MetricFlow returns them."""
    request = MetricFlowQueryRequest.create(
        metric_names=list(metrics),
        group_by_names=list(group_by),
        where_constraints=list(where) or None,
    )
    result = engine.query(request).result_df
    if result is None:
        raise RuntimeError(f"MetricFlow returned no table for {list(metrics)} by {list(group_by)}")
    return pl.DataFrame(
        list(result.rows),
        schema=list(result.column_names),
        orient="row",
        infer_schema_length=None,
    )
