"""great-expectations 1.x suites generated from the contract, run on every extract file.

One :class:`great_expectations.ExpectationSuite` per contract table (:func:`build_suite`). It is
the readable, per-file second opinion next to the SQL rules of :mod:`ingestion.rules` (which
decide which rows are quarantined): the JSON result says, expectation by expectation, what was
wrong with a file and gives sample values and row numbers.

The suite runs with GX's pandas datasource on a frame built by DuckDB from the file
(:func:`validation_frame_sql`): the typed contract columns under their own names, the original
text of each non-text column as ``<column>__text`` (so "parses as its type" is an expectation:
the typed value is not null wherever the text is not), and one boolean ``rule__<name>`` column
per contract row rule (the rule is a DuckDB predicate, evaluated by DuckDB). The frame's index
is the file's data row number, so ``partial_unexpected_index_list`` points at file rows.

Entity files are validated whole. Event-table files (``kind == "event"``, e.g. 10M product
events a day) are validated on their first ``sample_rows`` rows; the report says so.

GX is imported inside the functions: importing it takes seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ingestion.contract import ISO_4217_CURRENCIES, ColumnType, TableSchema, table
from ingestion.readers import FileSource
from ingestion.rules import referenced_columns, row_rule_passes, typed_value
from ingestion.sql import ident

if TYPE_CHECKING:
    import great_expectations as gx

#: Rows of an event-table file that great-expectations sees.
DEFAULT_EVENT_SAMPLE_ROWS = 100_000

_RESULT_FORMAT = "SUMMARY"
_NULL_TEXT = "CAST(NULL AS VARCHAR)"


def text_column_name(column: str) -> str:
    return f"{column}__text"


def rule_column_name(rule: str) -> str:
    return f"rule__{rule}"


def build_suite(schema: TableSchema) -> gx.ExpectationSuite:
    """The contract of one table as an expectation suite (not yet added to a context)."""
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column as GxColumn

    e = gx.expectations
    suite = gx.ExpectationSuite(name=f"{schema.system}.{schema.name}")

    def add(expectation: Any, rule: str, column: str | None = None) -> None:
        expectation.meta = {"contract_rule": rule, **({"column": column} if column else {})}
        suite.add_expectation(expectation)

    for c in schema.columns:
        if c.required:
            add(e.ExpectColumnToExist(column=c.name), "required_column", c.name)
            add(e.ExpectColumnValuesToNotBeNull(column=c.name), "required", c.name)
        if c.type is not ColumnType.STRING:
            add(
                e.ExpectColumnValuesToNotBeNull(
                    column=c.name,
                    row_condition=GxColumn(name=text_column_name(c.name)).is_not_null(),
                    description=f"{c.name} parses as {c.type.duckdb_type} wherever it has text",
                ),
                "type",
                c.name,
            )
        if c.accepted_values:
            add(
                e.ExpectColumnValuesToBeInSet(column=c.name, value_set=list(c.accepted_values)),
                "accepted_values",
                c.name,
            )
        if c.is_currency:
            add(
                e.ExpectColumnValuesToBeInSet(column=c.name, value_set=sorted(ISO_4217_CURRENCIES)),
                "currency",
                c.name,
            )
        if c.min_value is not None or c.max_value is not None:
            add(
                e.ExpectColumnValuesToBeBetween(
                    column=c.name, min_value=c.min_value, max_value=c.max_value
                ),
                "range",
                c.name,
            )
    for rule in schema.row_rules:
        add(
            e.ExpectColumnValuesToBeInSet(
                column=rule_column_name(rule.name),
                value_set=[True],
                description=f"{rule.description} ({rule.predicate_sql})",
            ),
            rule.name,
        )
    if len(schema.key) == 1:
        add(e.ExpectColumnValuesToBeUnique(column=schema.key[0]), "unique_key", schema.key[0])
    else:
        add(e.ExpectCompoundColumnsToBeUnique(column_list=list(schema.key)), "unique_key")
    return suite


@cache
def _context() -> Any:
    """One ephemeral GX context per process, progress bars off."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_pandas("extracts")
    return context


@cache
def _suite_and_batch_definition(table_path: str) -> tuple[Any, Any]:
    schema = table(table_path)
    context = _context()
    suite = context.suites.add(build_suite(schema))
    asset = context.data_sources.get("extracts").add_dataframe_asset(name=table_path)
    return suite, asset.add_batch_definition_whole_dataframe(name=f"{table_path} file")


def validation_frame_sql(schema: TableSchema, source: FileSource, limit: int | None) -> str:
    """SQL for the frame GX validates (see the module docstring).

    A required contract column the file lacks is left out, so ``expect_column_to_exist`` fails
    for it; a missing optional column is all null, as it will be in the raw table.
    """
    present = [c for c in schema.columns if c.name in source.columns or not c.required]
    typed = [
        typed_value(
            c,
            ident(c.name) if c.name in source.columns else _NULL_TEXT,
            source.native_types.get(c.name),
            is_key=c.name in schema.key,
        )
        + f" AS {ident(c.name)}"
        for c in present
    ]
    texts = [
        f"{f'CAST({ident(c.name)} AS VARCHAR)' if c.name in source.columns else _NULL_TEXT}"
        f" AS {ident(text_column_name(c.name))}"
        for c in present
        if c.type is not ColumnType.STRING
    ]
    names = {c.name for c in present}
    rules = [
        f"{row_rule_passes(r)} AS {ident(rule_column_name(r.name))}"
        for r in schema.row_rules
        if set(referenced_columns(r, schema)) <= names
    ]
    limited = (
        f"SELECT * FROM ({source.relation_sql}) LIMIT {limit}" if limit else source.relation_sql
    )
    return f"""
WITH src AS ({limited}),
typed AS (SELECT _source_row, {", ".join(typed + texts)} FROM src)
SELECT *{"".join(", " + r for r in rules)} FROM typed"""


@dataclass(frozen=True)
class ValidationResult:
    success: bool
    evaluated: int
    failed: int
    rows_validated: int
    #: The sample size asked for (event tables), or None when the whole file was validated.
    sample_rows: int | None
    #: GX's ``ExpectationSuiteValidationResult.to_json_dict()``.
    details: dict[str, Any]

    def failed_expectations(self) -> list[str]:
        """``expectation_type(column) [contract rule]`` of each failed expectation."""
        failed = []
        for result in self.details.get("results", []):
            if not result.get("success"):
                config = result["expectation_config"]
                kwargs = config.get("kwargs", {})
                target = kwargs.get("column") or ",".join(kwargs.get("column_list", []))
                rule = (config.get("meta") or {}).get("contract_rule", "")
                failed.append(f"{config['type']}({target}) [{rule}]")
        return failed


def validate_source(
    conn: duckdb.DuckDBPyConnection,
    schema: TableSchema,
    source: FileSource,
    *,
    sample_rows: int | None,
) -> ValidationResult:
    """Run the table's suite on the file (on its first ``sample_rows`` rows when given)."""
    frame = conn.execute(validation_frame_sql(schema, source, sample_rows)).df()
    frame = frame.set_index("_source_row")
    suite, batch_definition = _suite_and_batch_definition(schema.asset_path)
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
        suite, result_format=_RESULT_FORMAT
    )
    details = result.to_json_dict()
    stats = details.get("statistics", {})
    return ValidationResult(
        success=bool(result.success),
        evaluated=int(stats.get("evaluated_expectations", 0)),
        failed=int(stats.get("unsuccessful_expectations", 0)),
        rows_validated=len(frame),
        sample_rows=sample_rows,
        details=details,
    )


def report_path(validation_dir: Path, schema: TableSchema, file_name: str, sha256: str) -> Path:
    """``<validation_dir>/<table>/<file name>-<sha8>.json``."""
    return validation_dir / schema.name / f"{file_name}-{sha256[:8]}.json"


def write_report(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
