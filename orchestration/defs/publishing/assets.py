"""Publication assets: what BI tools, analysts, CSMs and finance read.

They depend on the marts, so a failed build or a failed dbt test stops them: the previous
publication stays in place untouched. Each asset's publication is one version switched in at once
(``publisher.new_version``), held back when a mart or list would shrink or empty.

Metadata of every publication (the CLI's summary reads it): ``published_version`` (the version
``published/current`` points at), ``held_back`` (False; a held-back publication fails, with the
same keys in its failure's metadata and ``held_back`` True), ``row_counts`` and
``published_row_counts`` (rows per table in this run and in the publication it replaces),
``forced`` (what ``force_publish`` let through), ``files``; ``serving_copy`` for the warehouse.

The warehouse's publication also says ``unchanged`` (True: the current version already holds
every mart as this run built it, so nothing was written and ``published_version`` is that
version) and ``marts_published`` (the marts whose Parquet files this run wrote; the others were
carried forward), and its data version is the digest of what it holds (``publisher.Content``).
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from orchestration.defs.dbt.project import exposure_marts, mart_names
from orchestration.defs.publishing import publisher
from orchestration.defs.settings_resource import WAREHOUSE_WRITER_POOL, SettingsResource

GROUP = "publishing"
#: The dbt exposure of the HTML report: its depends_on are the marts the report reads.
REPORT_EXPOSURE = "html_report"


def _mart_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["marts", name])


def _publication_metadata(
    version: publisher.Version | None, error: publisher.PublicationHeldBackError | None = None
) -> dict[str, Any]:
    if error is not None:
        return {
            "held_back": True,
            "published_version": error.current or "",
            "reasons": dg.MetadataValue.json(error.reasons),
            "row_counts": dg.MetadataValue.json(error.row_counts),
            "published_row_counts": dg.MetadataValue.json(error.published_row_counts),
        }
    assert version is not None
    return {
        "held_back": False,
        "published_version": version.name,
        "row_counts": dg.MetadataValue.json(version.row_counts),
        "published_row_counts": dg.MetadataValue.json(version.published_row_counts),
        "forced": dg.MetadataValue.json(version.forced),
        "files": dg.MetadataValue.json([str(version.stable(f)) for f in version.files]),
    }


@contextmanager
def _held_back_fails() -> Iterator[None]:
    """A held-back publication fails the asset with the reasons, and what stays published, in
    its message and metadata."""
    try:
        yield
    except publisher.PublicationHeldBackError as held:
        raise dg.Failure(
            description=str(held), metadata=_publication_metadata(None, held), allow_retries=False
        ) from None


def _published(context: dg.AssetExecutionContext, version: publisher.Version) -> None:
    for reason in version.forced:
        context.log.warning(f"published although held back (force_publish): {reason}")
    context.log.info(f"published version {version.name}: {len(version.files)} files")


def _publish(
    context: dg.AssetExecutionContext,
    settings: SettingsResource,
    kind: str,
    replaces: Sequence[str],
    write: Callable[[publisher.Version], None],
) -> publisher.Version:
    """Run ``write`` into a new version and switch it in; a held-back publication fails."""
    with (
        _held_back_fails(),
        publisher.new_version(
            Path(settings.publish_dir), kind, context.run_id, replaces
        ) as version,
    ):
        write(version)
    _published(context, version)
    return version


def _unchanged_metadata(publish_dir: Path, content: publisher.Content) -> dict[str, Any]:
    current = publisher.current_version(publish_dir)
    rows = content.row_counts
    return {
        "held_back": False,
        "unchanged": True,
        "published_version": current.name if current is not None else "",
        "row_counts": dg.MetadataValue.json(rows),
        "published_row_counts": dg.MetadataValue.json(rows),
        "forced": dg.MetadataValue.json([]),
        "files": dg.MetadataValue.json([]),
        "marts_published": dg.MetadataValue.json([]),
    }


def build_publishing_assets() -> list[dg.AssetsDefinition]:
    marts = mart_names()
    lists = [name for name in publisher.LIST_MARTS if name in marts]
    # The HTML report published beside the lists and the finance close reads these marts.
    report = list(exposure_marts(REPORT_EXPOSURE))

    @dg.asset(
        key=["published", "warehouse"],
        group_name=GROUP,
        deps=[_mart_key(m) for m in marts],
        pool=WAREHOUSE_WRITER_POOL,
        description="Every mart as Parquet under published/marts/ and the serving copy for BI "
        "tools, published/warehouse.duckdb (the marts and the reporting views with their "
        "descriptions as comments, no raw layer and no personal data, in DuckDB's 1.1 storage "
        "format), switched in together as one version; held back when a mart would shrink or "
        "empty. Only the marts that changed since the current version are written (the others "
        "are carried forward); when none did, nothing is written (metadata unchanged: true).",
    )
    def published_warehouse(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: SettingsResource
    ) -> dg.MaterializeResult:
        publish_dir = Path(settings.publish_dir)
        with duckdb.get_connection() as con:
            tables = publisher.mart_tables(con, marts)
            content = publisher.warehouse_content(con, tables)
        with (
            _held_back_fails(),
            publisher.changed_version(
                publish_dir, "warehouse", context.run_id, ("warehouse.duckdb",), content
            ) as version,
        ):
            if version is not None:
                with duckdb.get_connection() as con:
                    version.guard(con, tables, settings.publish_max_shrink, settings.force_publish)
                    version.write_marts(con, tables, content)
                version.copy_warehouse(Path(settings.warehouse_path), marts)
        serving = dg.MetadataValue.path(str(publish_dir / "warehouse.duckdb"))
        data_version = dg.DataVersion(content.fingerprint)
        if version is None:
            metadata = _unchanged_metadata(publish_dir, content)
            context.log.info(
                f"every mart as version {metadata['published_version']} holds it: nothing"
                " written, no new version"
            )
            return dg.MaterializeResult(
                metadata={**metadata, "serving_copy": serving}, data_version=data_version
            )
        _published(context, version)
        return dg.MaterializeResult(
            metadata={
                **_publication_metadata(version),
                "unchanged": False,
                "marts_published": dg.MetadataValue.json(version.marts_written),
                "serving_copy": serving,
            },
            data_version=data_version,
        )

    @dg.asset(
        key=["published", "lists"],
        group_name=GROUP,
        deps=[_mart_key(m) for m in sorted({*lists, *report})],
        pool=WAREHOUSE_WRITER_POOL,
        description="The risk list and its reasons (one row per reason), the expansion list and "
        "its signals (one row per signal) and the adoption alerts as CSV and Parquet under "
        "published/lists/<as-of date>/, with lists/latest pointing at the newest day, and the HTML "
        "report (report.html there and at the top); held back when a list would shrink or empty.",
    )
    def published_lists(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: SettingsResource
    ) -> dg.MaterializeResult:
        as_of = settings.as_of_for(context)

        def write(version: publisher.Version) -> None:
            with duckdb.get_connection() as con:
                tables = publisher.list_tables(con, as_of)
                version.guard(con, tables, settings.publish_max_shrink, settings.force_publish)
                version.write(con, tables)
                version.write_report(con, f"lists/{as_of.isoformat()}")
            if tables:
                version.point_latest_at(as_of)

        replaces = (f"lists/{as_of.isoformat()}", "lists/latest", publisher.REPORT)
        version = _publish(context, settings, "lists", replaces, write)
        return dg.MaterializeResult(
            metadata={**_publication_metadata(version), "as_of": as_of.isoformat()}
        )

    @dg.asset(
        key=["published", "finance_close"],
        group_name=GROUP,
        deps=[_mart_key(m) for m in sorted({*publisher.FINANCE_MARTS, *report}) if m in marts],
        pool=WAREHOUSE_WRITER_POOL,
        description="The closed month's retention report (NRR/GRR of every period ending that "
        "month) and MRR bridge, for the company and per segment, under "
        "published/finance/<YYYY-MM>/ with the HTML report (report.html there and at the top); held "
        "back when the month has no MRR bridge.",
    )
    def finance_close_report(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: SettingsResource
    ) -> dg.MaterializeResult:
        month = publisher.previous_month(settings.as_of_for(context))
        tables = publisher.finance_tables(month)

        def write(version: publisher.Version) -> None:
            with duckdb.get_connection() as con:
                version.guard(con, tables, settings.publish_max_shrink, settings.force_publish)
                version.write(con, tables)
                version.write_report(con, f"finance/{month.strftime('%Y-%m')}", month=month)

        replaces = (f"finance/{month.strftime('%Y-%m')}", publisher.REPORT)
        version = _publish(context, settings, "finance", replaces, write)
        return dg.MaterializeResult(
            metadata={**_publication_metadata(version), "month": month.strftime("%Y-%m")}
        )

    return [published_warehouse, published_lists, finance_close_report]
