"""The HTML report's Plotly figures (metrics/html_report.py reads the marts).

Every figure is built from frames the report read from the marts, with no arithmetic on them: a
trace's values are the mart's values (money as float dollars, ratios as fractions), so the page's
figure data can be compared with the marts. The display rules are metrics/formatting.py's (money
``$1,234.56`` in hovers and the waterfall's labels, ratios ``104.3%``, ISO dates), the rules the
CLI's tables use too; only an axis's ticks round money to whole dollars (``USD_AXIS_FORMAT``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import plotly.graph_objects as go
import polars as pl
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from metrics.formatting import (
    DATE_FORMAT,
    PERCENT_FORMAT,
    USD_AXIS_FORMAT,
    USD_FORMAT,
    iso,
    usd,
)
from metrics.formatting import percent as percent  # re-exported: the report's tests use it

#: Plotly's config for every chart: no link to plotly's site, no cloud button.
PLOTLY_CONFIG: dict[str, object] = {"displaylogo": False, "responsive": True}
#: The figures' height in pixels (the page stacks them; the width follows the page).
HEIGHT = 420
#: Colours of the usual health bands; any other band gets Plotly's default colour.
BAND_COLOURS = {"red": "#d62728", "yellow": "#e6b800", "green": "#2ca02c"}
#: The MRR movements in the bridge's order, with the sign they take in the waterfall.
BRIDGE_STEPS: tuple[tuple[str, str, int], ...] = (
    ("new_mrr_usd", "New", 1),
    ("expansion_mrr_usd", "Expansion", 1),
    ("reactivation_mrr_usd", "Reactivation", 1),
    ("contraction_mrr_usd", "Contraction", -1),
    ("churned_mrr_usd", "Churned", -1),
)
TTV_DAYS = (7, 14, 30, 60, 90)


# --- figures ------------------------------------------------------------------------------------


def _layout(fig: go.Figure, title: str, **axes: object) -> go.Figure:
    fig.update_layout(
        title={"text": title},
        template="plotly_white",
        height=HEIGHT,
        margin={"l": 70, "r": 30, "t": 60, "b": 50},
        legend={"orientation": "h", "y": -0.15},
        **axes,
    )
    return fig


def _dates(frame: pl.DataFrame, column: str) -> list[str]:
    return [iso(v) for v in frame[column].to_list()]


def retention_trend(frame: pl.DataFrame, title: str, *, by: str | None = None) -> go.Figure:
    """NRR (solid) and GRR (dotted) per period_start, one pair of lines per ``by`` value."""
    fig = go.Figure()
    groups = frame.partition_by(by, maintain_order=True) if by else [frame]
    for group in groups:
        prefix = f"{group[by][0]} " if by else ""
        for column, dash in (("nrr", "solid"), ("grr", "dot")):
            fig.add_trace(
                go.Scatter(
                    x=_dates(group, "period_start"),
                    y=group[column].to_list(),
                    name=f"{prefix}{column.upper()}",
                    meta=[group[by][0] if by else None, column],
                    mode="lines+markers",
                    line={"dash": dash},
                    hovertemplate=f"%{{x|{DATE_FORMAT}}}: %{{y:{PERCENT_FORMAT}}}<extra>%{{fullData.name}}</extra>",
                )
            )
    return _layout(
        fig,
        title,
        xaxis={"title": {"text": "quarter start"}, "type": "date", "tickformat": DATE_FORMAT},
        yaxis={"title": {"text": "retention"}, "tickformat": PERCENT_FORMAT},
    )


def mrr_waterfall(row: dict[str, object], title: str) -> go.Figure:
    """Starting MRR, each movement (contraction and churn negative) and ending MRR of one month."""
    labels = ["Starting MRR", *(label for _, label, _ in BRIDGE_STEPS), "Ending MRR"]
    values = [
        row["starting_mrr_usd"],
        *(sign * row[column] for column, _, sign in BRIDGE_STEPS),  # type: ignore[operator]
        row["ending_mrr_usd"],
    ]
    fig = go.Figure(
        go.Waterfall(
            x=labels,
            y=values,
            measure=["absolute", *("relative" for _ in BRIDGE_STEPS), "absolute"],
            text=[usd(v) for v in values],  # type: ignore[arg-type]
            textposition="outside",
            hovertemplate=f"%{{x}}: %{{y:{USD_FORMAT}}}<extra></extra>",
            connector={"line": {"color": "#999"}},
        )
    )
    return _layout(fig, title, yaxis={"title": {"text": "MRR"}, "tickformat": USD_AXIS_FORMAT})


def movements_bars(frame: pl.DataFrame, title: str) -> go.Figure:
    """One bar trace per movement (in movement_order), stacked per month; negatives below 0."""
    fig = go.Figure()
    for group in frame.partition_by("movement", maintain_order=True):
        fig.add_trace(
            go.Bar(
                x=_dates(group, "month"),
                y=group["mrr_usd"].to_list(),
                customdata=group["accounts"].to_list(),
                name=group["movement"][0],
                meta=group["movement"][0],
                hovertemplate=(
                    f"%{{x|{DATE_FORMAT}}}: %{{y:{USD_FORMAT}}} (%{{customdata}} accounts)"
                    "<extra>%{fullData.name}</extra>"
                ),
            )
        )
    return _layout(
        fig,
        title,
        barmode="relative",
        xaxis={"title": {"text": "month"}, "type": "date", "tickformat": DATE_FORMAT},
        yaxis={"title": {"text": "MRR change"}, "tickformat": USD_AXIS_FORMAT},
    )


def cohort_heatmap(frame: pl.DataFrame, title: str) -> go.Figure:
    """revenue_retention per cohort_month (rows) and months_since_start (columns)."""
    wide = frame.pivot(
        on="months_since_start", index="cohort_month", values="revenue_retention", sort_columns=True
    ).sort("cohort_month")
    months = [c for c in wide.columns if c != "cohort_month"]
    fig = go.Figure(
        go.Heatmap(
            x=[int(m) for m in months],
            y=_dates(wide, "cohort_month"),
            z=[list(row) for row in wide.select(months).iter_rows()],
            colorscale="Blues",
            colorbar={"tickformat": PERCENT_FORMAT, "title": {"text": "revenue retention"}},
            hovertemplate=("cohort %{y}, month %{x}: %{z:" + PERCENT_FORMAT + "}<extra></extra>"),
        )
    )
    return _layout(
        fig,
        title,
        xaxis={"title": {"text": "months since start"}, "dtick": 1},
        yaxis={"title": {"text": "cohort month"}, "type": "category", "autorange": "reversed"},
    )


def _month_colours(months: Sequence[date]) -> dict[date, str]:
    """A sequential colour per start month, the oldest light, the latest dark."""
    ordered = sorted(set(months))
    points = [0.15 + 0.85 * i / max(len(ordered) - 1, 1) for i in range(len(ordered))]
    return dict(zip(ordered, sample_colorscale("Blues", points), strict=True))


def ttv_curves(frame: pl.DataFrame, title: str, *, by: str | None = None) -> go.Figure:
    """One line per start cohort: the share at first value within 7..90 days (the mart's
    columns reached_within_<n>d_share, a NULL share a gap in the line), the hover naming the
    accounts observed n days (observed_<n>d_accounts); with ``by``, one panel per ``by`` value."""
    panels = frame.partition_by(by, maintain_order=True) if by else [frame]
    names = [str(p[by][0]) for p in panels] if by else [""]
    fig = make_subplots(
        rows=1, cols=len(panels), shared_yaxes=True, subplot_titles=names if by else None
    )
    colours = _month_colours(frame["start_month"].to_list())
    share_columns = [f"reached_within_{n}d_share" for n in TTV_DAYS]
    observed_columns = [f"observed_{n}d_accounts" for n in TTV_DAYS]
    in_legend: set[date] = set()
    for column, (panel, name) in enumerate(zip(panels, names, strict=True), start=1):
        for row in panel.iter_rows(named=True):
            month = row["start_month"]
            fig.add_trace(
                go.Scatter(
                    x=list(TTV_DAYS),
                    y=[row[c] for c in share_columns],
                    customdata=[row[c] for c in observed_columns],
                    name=iso(month),
                    legendgroup=iso(month),
                    showlegend=month not in in_legend,
                    mode="lines+markers",
                    line={"color": colours[month]},
                    meta=name or None,
                    hovertemplate=(
                        "within %{x} days: %{y:"
                        + PERCENT_FORMAT
                        + "} of %{customdata} accounts observed"
                        + (
                            "<extra>%{meta} %{fullData.name}</extra>"
                            if name
                            else "<extra>%{fullData.name}</extra>"
                        )
                    ),
                ),
                row=1,
                col=column,
            )
            in_legend.add(month)
        fig.update_xaxes(tickvals=list(TTV_DAYS), row=1, col=column)
    fig.update_xaxes(title={"text": "days since start"})
    fig.update_yaxes(tickformat=PERCENT_FORMAT)
    fig.update_yaxes(title={"text": "share at first value"}, row=1, col=1)
    return _layout(fig, title)


def band_bars(frame: pl.DataFrame, title: str, *, x: str, x_title: str) -> go.Figure:
    """Accounts per health band (one trace per band, in the frame's order) stacked per ``x``,
    shown as shares of each bar (Plotly normalises: the traces hold the mart's counts)."""
    fig = go.Figure()
    for group in frame.partition_by("health_band", maintain_order=True):
        band = str(group["health_band"][0])
        xs = _dates(group, x) if frame.schema[x] == pl.Date else group[x].to_list()
        fig.add_trace(
            go.Bar(
                x=xs,
                y=group["accounts"].to_list(),
                customdata=group["accounts"].to_list(),
                name=band,
                meta=band,
                marker={"color": BAND_COLOURS.get(band)},
                hovertemplate=(
                    "%{x}: %{customdata} accounts (%{y:" + PERCENT_FORMAT + "})"
                    "<extra>%{fullData.name}</extra>"
                ),
            )
        )
    axis: dict[str, object] = {"title": {"text": x_title}}
    if frame.schema[x] == pl.Date:
        axis |= {"type": "date", "tickformat": DATE_FORMAT}
    return _layout(
        fig,
        title,
        barmode="stack",
        barnorm="fraction",
        xaxis=axis,
        yaxis={"title": {"text": "share of accounts"}, "tickformat": PERCENT_FORMAT},
    )


def scorer_lines(
    frame: pl.DataFrame,
    title: str,
    *,
    x: str,
    y: str,
    x_title: str,
    y_title: str,
    y_format: str,
    diagonal: bool = False,
) -> go.Figure:
    """One line per scorer and horizon (the backtest's lift by decile, or calibration)."""
    fig = go.Figure()
    for group in frame.partition_by(["scorer", "horizon_days"], maintain_order=True):
        fig.add_trace(
            go.Scatter(
                x=group[x].to_list(),
                y=group[y].to_list(),
                customdata=group["scored_rows"].to_list(),
                name=f"{group['scorer'][0]} ({group['horizon_days'][0]}-day horizon)",
                meta=[group["scorer"][0], group["horizon_days"][0]],
                mode="lines+markers",
                hovertemplate=(
                    ("%{x:" + PERCENT_FORMAT + "}" if diagonal else "%{x}")
                    + ": %{y:"
                    + y_format
                    + "} (%{customdata} scored rows)"
                    "<extra>%{fullData.name}</extra>"
                ),
            )
        )
    if diagonal:
        fig.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line={"dash": "dash", "color": "#999"})
    x_axis: dict[str, object] = {"title": {"text": x_title}}
    if diagonal:
        x_axis["tickformat"] = PERCENT_FORMAT
    else:
        x_axis["dtick"] = 1
    return _layout(
        fig, title, xaxis=x_axis, yaxis={"title": {"text": y_title}, "tickformat": y_format}
    )
