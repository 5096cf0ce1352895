"""Turning a report frame into text: a terminal table, CSV, JSON or Markdown.

The table and Markdown are for people and follow metrics/formatting.py (``$1,234.56``,
``104.3%``, ISO dates, by the column's name); CSV and JSON are for machines and keep the marts'
exact values (decimals as exact strings).
"""

from __future__ import annotations

import json
from typing import Literal

import polars as pl
from rich.table import Table

from metrics.formatting import display_rows

Format = Literal["table", "csv", "json", "md"]
FORMATS: tuple[str, ...] = ("table", "csv", "json", "md")
#: The formats a person reads (formatted); the others are exact.
FORMATTED: tuple[str, ...] = ("table", "md")


def rich_table(frame: pl.DataFrame, title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for name, dtype in frame.schema.items():
        table.add_column(name, justify="right" if dtype.is_numeric() else "left")
    for row in display_rows(frame):
        table.add_row(*row)
    return table


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


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
        body = ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in display_rows(frame)]
        return "\n".join([header, rule, *body]) + "\n"
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
