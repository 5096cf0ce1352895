"""How a number, a ratio or a date is shown to a person: one rule for the HTML report (tables,
chart hovers, the waterfall's labels) and the CLI's table and Markdown output.

* money: US dollars with cents and a thousands separator, rounded half away from zero,
  ``$1,234.56``; a negative amount puts the minus before the dollar sign, ``-$305.00``. Only a
  chart's axis ticks may round to whole dollars (``USD_AXIS_FORMAT``).
* ratios (fractions, 1.0 = 100%): percentages with one decimal, ``104.3%``.
* dates ISO 8601, ``2025-06-30``; timestamps ``2025-06-30T12:00:00+00:00``.

Which columns are money and which are ratios follows the marts' naming convention
(docs/marts.md): money ends in ``_usd``; ratios are ``nrr``, ``grr`` or end in ``_rate``,
``_share``, ``_retention``, ``_utilisation`` or ``_probability``. CSV and JSON outputs are for
machines and keep the exact values: nothing here touches them.

No plotly import: the CLI imports this module.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import polars as pl

#: d3-format strings of the same rules, for Plotly hover templates and axes.
USD_FORMAT = "$,.2f"
#: Axis ticks only: whole dollars.
USD_AXIS_FORMAT = "$,.0f"
PERCENT_FORMAT = ".1%"
DATE_FORMAT = "%Y-%m-%d"

MONEY_SUFFIXES: tuple[str, ...] = ("_usd",)
RATIO_NAMES: frozenset[str] = frozenset({"nrr", "grr"})
RATIO_SUFFIXES: tuple[str, ...] = ("_rate", "_share", "_retention", "_utilisation", "_probability")

_CENT = Decimal("0.01")
_TENTH = Decimal("0.1")


def usd(value: Decimal | float | None) -> str:
    """``$1,234.57`` for 1234.565, ``-$305.00`` for -305; '' for null."""
    if value is None:
        return ""
    amount = Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,}"


def percent(value: Decimal | float | None) -> str:
    """``104.3%`` for 1.043; '' for null."""
    if value is None:
        return ""
    scaled = (Decimal(str(value)) * 100).quantize(_TENTH, rounding=ROUND_HALF_UP)
    return f"{scaled}%"


def iso(value: date | None) -> str:
    """``2025-06-30`` (a datetime keeps its time and offset); '' for null."""
    return "" if value is None else value.isoformat()


def is_money(column: str) -> bool:
    return column.endswith(MONEY_SUFFIXES)


def is_ratio(column: str) -> bool:
    return column in RATIO_NAMES or column.endswith(RATIO_SUFFIXES)


def _number(value: Decimal | float) -> str:
    """A number that is neither money nor a ratio (points, AUC, lift): four decimals below 10,
    two above."""
    return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"


def cell(column: str, value: object) -> str:
    """``value`` of mart column ``column`` as shown to a person."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal | float | int) and is_money(column):
        return usd(value)
    if isinstance(value, Decimal | float) and is_ratio(column):
        return percent(value)
    if isinstance(value, Decimal | float):
        return _number(value)
    if isinstance(value, datetime | date):
        return iso(value)
    return str(value)


def display_columns(frame: pl.DataFrame) -> list[list[str]]:
    """Every column of ``frame`` formatted by its name, column by column."""
    return [[cell(name, v) for v in frame[name].to_list()] for name in frame.columns]


def display_rows(frame: pl.DataFrame) -> list[tuple[str, ...]]:
    """The rows of ``frame`` as formatted cells (for a table or Markdown)."""
    return list(zip(*display_columns(frame), strict=True)) if frame.width else []
