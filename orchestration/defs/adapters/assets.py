"""One Dagster asset per configured adapter, upstream of the ingestion assets it feeds.

Asset ``adapters/<system>`` (group ``adapters``) runs the adapter on its configured source and
writes contract files into the landing directory (``<landing>/<system>/<table>/<file_stem>.*``,
reports under ``<landing>/_adapters/<system>/``). It writes files, not the warehouse, so it is
not in the warehouse writer pool. Its metadata: rows written per contract table, rows read,
rejected and excluded, the accounting per source table, the method and other details, the
warnings, where the rejects are.

Its check ``no_rejected_rows`` (ERROR) fails when any source row was rejected (or a table's
counts do not add up), naming the rejects file: the rows that could be mapped are still written
and ingested, and the run fails (``csw run`` exits 1), as a file with quarantined rows does in
ingestion. Its check ``no_warnings`` (WARN) fails when the adapter warned (e.g. a current-state
Stripe export: past MRR cannot be reconstructed), the warnings in its description: the run is
not failed, but its summary lists the warning. A source that cannot be read at all
(``AdapterInputError``) or a bad mapping file fails the asset, so the ingestion of its tables
does not run.

The ingestion asset of every table an adapter writes depends on the adapter's asset, so a run
adapts, then ingests. Without adapters configured nothing here is added.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from adapters.core import AdapterInputError, AdaptResult
from ingestion.contract import TABLES
from orchestration.defs.adapters.config import AdapterConfig
from orchestration.defs.adapters.registry import SYSTEMS
from orchestration.defs.ingestion.assets import build_raw_asset, require_landing
from orchestration.defs.settings_resource import SettingsResource

GROUP = "adapters"
CHECK_NAME = "no_rejected_rows"
WARNINGS_CHECK_NAME = "no_warnings"
OWNERS = ["team:data-engineering"]


def adapter_key(system: str) -> dg.AssetKey:
    return dg.AssetKey([GROUP, system])


def _md_list(lines: Sequence[str]) -> dg.MetadataValue:
    return dg.MetadataValue.md("\n".join(f"- {line}" for line in lines) or "none")


def result_metadata(result: AdaptResult, config: AdapterConfig) -> dict[str, Any]:
    """Materialisation metadata of an adapter asset."""
    return {
        "source": str(config.source),
        "mapping": str(config.mapping or "defaults"),
        "source_format": result.source_format,
        "method": result.details.get("history_method", "n/a"),
        "rows_read": sum(a.read for a in result.accounts),
        "rows_written": sum(a.written for a in result.accounts),
        "rows_rejected": result.rejected,
        "rows_excluded": sum(a.excluded for a in result.accounts),
        "dagster/row_count": sum(result.contract_rows.values()),
        "contract_rows": dg.MetadataValue.json(dict(sorted(result.contract_rows.items()))),
        "accounts": dg.MetadataValue.json(
            [
                {
                    "source_table": a.source_table,
                    "read": a.read,
                    "written": a.written,
                    "rejected": a.rejected,
                    "excluded": a.excluded,
                    "balanced": a.balanced,
                }
                for a in result.accounts
            ]
        ),
        "details": dg.MetadataValue.json(dict(result.details)),
        "warnings": _md_list(result.warnings),
        "rejects_file": str(result.rejects_file),
        "lineage_file": str(result.lineage_file),
        "summary": dg.MetadataValue.md(f"```\n{result.summary()}\n```"),
    }


def check_result(result: AdaptResult, config: AdapterConfig) -> dg.AssetCheckResult:
    """``no_rejected_rows``: passes only when every source row was written or excluded with its
    reason and every table's counts add up."""
    rejected = {a.source_table: a.rejected for a in result.accounts if a.rejected}
    unbalanced = [a.source_table for a in result.accounts if not a.balanced]
    problems = []
    if rejected:
        problems.append(
            f"{result.rejected} {config.system} source row(s) rejected ("
            + ", ".join(f"{t}: {n}" for t, n in rejected.items())
            + f"); each with its file, row and reason in {result.rejects_file}. Fix them at the"
            f" source or in the mapping ({config.mapping or 'defaults'}) and run again; the rows"
            " that could be mapped were written and ingested."
        )
    if unbalanced:
        problems.append(
            "counts do not add up (read != written + rejected + excluded) for "
            + ", ".join(unbalanced)
            + ": an adapter bug; report it with the source files."
        )
    excluded = sum(a.excluded for a in result.accounts)
    return dg.AssetCheckResult(
        check_name=CHECK_NAME,
        passed=result.ok,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows_rejected": result.rejected,
            "rows_excluded": excluded,
            "rejected_by_table": dg.MetadataValue.json(rejected),
            "rejects_file": str(result.rejects_file),
        },
        description=" ".join(problems)
        if problems
        else f"every {config.system} source row written, or excluded with its reason ({excluded}"
        f" excluded, listed in {result.rejects_file})",
    )


def warnings_check(result: AdaptResult, config: AdapterConfig) -> dg.AssetCheckResult:
    """``no_warnings`` (WARN): fails when the adapter warned (e.g. past MRR cannot be
    reconstructed, a table missing from the source), the warnings in its description, so a
    run's summary (``csw run``) lists them as a warning without failing the run."""
    warnings = list(result.warnings)
    return dg.AssetCheckResult(
        check_name=WARNINGS_CHECK_NAME,
        passed=not warnings,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"warnings_count": len(warnings), "warnings": _md_list(warnings)},
        description=(
            f"{len(warnings)} {config.system} adapter warning(s): "
            + " | ".join(warnings)
            + " (the data was written; read the warning to see what it lacks)"
        )
        if warnings
        else f"the {config.system} adapter gave no warning",
    )


def build_adapter_asset(config: AdapterConfig) -> dg.AssetsDefinition:
    system = SYSTEMS[config.system]
    key = adapter_key(config.system)

    @dg.asset(
        key=key,
        group_name=GROUP,
        description=(
            f"The {config.system} adapter: {config.source} in, contract files for"
            f" {', '.join(system.writes)} written into the landing directory (reports in"
            f" <landing>/_adapters/{config.system}/). Mapping: {config.mapping or 'the defaults'}."
        ),
        kinds={config.system},
        owners=OWNERS,
        metadata={"source": str(config.source), "mapping": str(config.mapping or "defaults")},
        check_specs=[
            dg.AssetCheckSpec(
                CHECK_NAME,
                asset=key,
                description=f"No {config.system} source row was rejected (every row written or"
                " excluded with its reason, counts adding up per source table).",
            ),
            dg.AssetCheckSpec(
                WARNINGS_CHECK_NAME,
                asset=key,
                description=f"The {config.system} adapter gave no warning (a warning, such as"
                " 'past MRR cannot be reconstructed', warns the run without failing it).",
            ),
        ],
    )
    def _adapt(context: AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
        landing = Path(settings.landing_dir)
        require_landing(landing)
        try:
            mapping = system.load_mapping(config.mapping)
            result = system.adapt(config.source, landing, mapping)
        except (AdapterInputError, ValueError) as exc:
            raise dg.Failure(
                description=f"{config.system} adapter: {exc} (CSW_ADAPTERS: {settings.adapters})",
                allow_retries=False,
            ) from exc
        for warning in result.warnings:
            context.log.warning(f"{config.system}: {warning}")
        if not result.ok:
            context.log.error(result.summary())
        return dg.MaterializeResult(
            metadata=result_metadata(result, config),
            check_results=[check_result(result, config), warnings_check(result, config)],
        )

    return _adapt


def build_adapter_assets(configs: Sequence[AdapterConfig]) -> list[dg.AssetsDefinition]:
    return [build_adapter_asset(c) for c in configs]


def feeding(configs: Sequence[AdapterConfig]) -> dict[dg.AssetKey, list[dg.AssetKey]]:
    """Ingestion asset key -> the keys of the configured adapters that write its table."""
    fed: dict[dg.AssetKey, list[dg.AssetKey]] = {}
    for config in configs:
        for table in SYSTEMS[config.system].writes:
            fed.setdefault(dg.AssetKey(table.split("/")), []).append(adapter_key(config.system))
    return fed


def with_adapter_deps(
    assets: Sequence[dg.AssetsDefinition], configs: Sequence[AdapterConfig]
) -> list[dg.AssetsDefinition]:
    """``assets`` (the ingestion assets) with the asset of each table an adapter writes built
    again with the adapters as dependencies; the others unchanged.

    Built again rather than with ``map_asset_specs(... merge_attributes(deps=...))``: in
    dagster 1.13 a dependency added that way shows in the asset graph but does not order or
    skip the step (the table was ingested before, or despite, a failed adapter).
    """
    fed = feeding(configs)
    by_key = {t.asset_path: t for t in TABLES}
    return [
        build_raw_asset(by_key[a.key.to_user_string()], fed[a.key]) if a.key in fed else a
        for a in assets
    ]
