"""Turning a report frame into text: a terminal table, CSV, JSON or Markdown."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Literal

import polars as pl
from rich.table import Table

Format = Literal["table", "csv", "json", "md"]
FORMATS: tuple[str, ...] = ("table", "csv", "json", "md")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return str(value)


def rich_table(frame: pl.DataFrame, title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for name, dtype in frame.schema.items():
        table.add_column(name, justify="right" if dtype.is_numeric() else "left")
    for row in frame.iter_rows():
        table.add_row(*(_cell(v) for v in row))
    return table


def render_text(frame: pl.DataFrame, fmt: Format) -> str:
    """CSV, JSON (one object per row; decimals as exact strings) or a Markdown table."""
    if fmt == "csv":
        return frame.write_csv()
    if fmt == "json":
        rows = frame.to_dicts()
        return json.dumps(rows, default=str, indent=2) + "\n"
    if fmt == "md":
        header = "| " + " | ".join(frame.columns) + " |"
        rule = "|" + "|".join("---" for _ in frame.columns) + "|"
        body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.iter_rows()]
        return "\n".join([header, rule, *body]) + "\n"
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
