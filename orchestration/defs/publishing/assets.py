"""Publication assets: what BI tools, analysts, CSMs and finance read.

They depend on the marts, so a failed build or a failed dbt test stops them: the previous
publication stays in place untouched.
"""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.defs.dbt.project import mart_names
from orchestration.defs.publishing import publisher
from orchestration.defs.settings_resource import WAREHOUSE_WRITER_POOL, SettingsResource

GROUP = "publishing"


def _mart_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["marts", name])


def build_publishing_assets() -> list[dg.AssetsDefinition]:
    marts = mart_names()
    lists = [name for name in publisher.LIST_MARTS if name in marts]

    @dg.asset(
        key=["published", "warehouse"],
        group_name=GROUP,
        deps=[_mart_key(m) for m in marts],
        pool=WAREHOUSE_WRITER_POOL,
        description="Every mart as Parquet under published/marts/ and the read-only serving copy "
        "published/warehouse.duckdb, each replaced atomically.",
    )
    def published_warehouse(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: SettingsResource
    ) -> dg.MaterializeResult:
        publish_dir = Path(settings.publish_dir)
        with duckdb.get_connection() as con:
            files = publisher.publish_marts(con, marts, publish_dir)
        serving = publisher.publish_serving_copy(Path(settings.warehouse_path), publish_dir)
        context.log.info(f"published {len(files)} marts and {serving}")
        return dg.MaterializeResult(
            metadata={
                "serving_copy": dg.MetadataValue.path(str(serving)),
                "marts": dg.MetadataValue.json([str(f) for f in files]),
            }
        )

    @dg.asset(
        key=["published", "lists"],
        group_name=GROUP,
        deps=[_mart_key(m) for m in lists],
        pool=WAREHOUSE_WRITER_POOL,
        description="The risk list, expansion list and adoption alerts as CSV and Parquet under "
        "published/lists/<as-of date>/, with lists/latest pointing at the newest day.",
    )
    def published_lists(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: SettingsResource
    ) -> dg.MaterializeResult:
        as_of = settings.as_of_for(context)
        with duckdb.get_connection() as con:
            files = publisher.publish_lists(con, Path(settings.publish_dir), as_of)
        return dg.MaterializeResult(
            metadata={
                "as_of": as_of.isoformat(),
                "files": dg.MetadataValue.json([str(f) for f in files]),
            }
        )

    @dg.asset(
        key=["published", "finance_close"],
        group_name=GROUP,
        deps=[_mart_key("fct_revenue_retention"), _mart_key("fct_mrr_bridge")],
        pool=WAREHOUSE_WRITER_POOL,
        description="The closed month's retention report (NRR/GRR of every period ending that "
        "month) and MRR bridge under published/finance/<YYYY-MM>/.",
    )
    def finance_close_report(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: SettingsResource
    ) -> dg.MaterializeResult:
        month = publisher.previous_month(settings.as_of_for(context))
        with duckdb.get_connection() as con:
            files = publisher.publish_finance_close(con, Path(settings.publish_dir), month)
        return dg.MaterializeResult(
            metadata={
                "month": month.strftime("%Y-%m"),
                "files": dg.MetadataValue.json([str(f) for f in files]),
            }
        )

    return [published_warehouse, published_lists, finance_close_report]
