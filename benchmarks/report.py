"""Results JSON as the Markdown tables of ``docs/performance.md``.

``python -m benchmarks.report [RESULTS_DIR] [TIER ...]`` prints a summary across tiers, the
issue's targets with whether each is met, then one table per tier, so the document quotes the
files rather than hand-copied numbers.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import DEFAULT_RESULTS_DIR, ratios_to_full

MET, MISSED = "✓", "✗"


def _wall(r: dict[str, Any], name: str) -> float | None:
    m = r["measurements"].get(name)
    return m["wall_s"] if m and m.get("ok") else None


def _full_over_floor(r: dict[str, Any]) -> float | None:
    return r.get("ratios_to_floor", {}).get("full", {}).get("wall")


def _to_full(name: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda r: ratios_to_full(r["measurements"]).get(name)


def _full_rss(r: dict[str, Any]) -> float | None:
    m = r["measurements"].get("full")
    return m["peak_rss_mb"] if m and m.get("ok") else None


@dataclass(frozen=True)
class Target:
    """A target of issue 16: the tiers it applies to (None: all), the summary column it marks,
    how its figure is read from a tier's results, and the limit (``strict``: below it)."""

    label: str
    tiers: frozenset[str] | None
    column: str
    value: Callable[[dict[str, Any]], float | None]
    limit: float
    strict: bool = False
    unit: str = ""

    def applies(self, r: dict[str, Any]) -> bool:
        return self.tiers is None or r["tier"] in self.tiers

    def met(self, r: dict[str, Any]) -> bool | None:
        """Whether the tier meets it; None when it does not apply or was not measured."""
        value = self.value(r) if self.applies(r) else None
        if value is None:
            return None
        return value < self.limit if self.strict else value <= self.limit


TARGETS = (
    Target("rerun with nothing new at most 5% of the full run at M", frozenset({"M"}),
           "rerun / full", _to_full("rerun"), 0.05, unit="%"),
    Target("one new day at most 10% of the full run at M and L", frozenset({"M", "L"}),
           "incremental / full", _to_full("incremental"), 0.10, unit="%"),
    Target("full run at L within 10x the floor", frozenset({"L"}), "full / floor",
           _full_over_floor, 10.0, unit="x"),
    Target("full run at L under 5 minutes", frozenset({"L"}), "full s",
           lambda r: _wall(r, "full"), 300.0, strict=True, unit="s"),
    Target("peak RSS at L under 6 GB", frozenset({"L"}), "full peak RSS MB", _full_rss, 6 * 1024.0,
           strict=True, unit="MB"),
    # The fixed cost: a forced run with nothing new (every step runs, nothing to do).
    Target("fixed cost on the demo sample (S forced run, nothing new) under 15 s",
           frozenset({"S"}), "fixed s", lambda r: _wall(r, "fixed"), 15.0, strict=True, unit="s"),
)  # fmt: skip


def _marked(text: str, r: dict[str, Any], column: str) -> str:
    """``text`` with the check mark of the target on ``column`` for this tier, if any."""
    for target in TARGETS:
        if target.column == column and (met := target.met(r)) is not None:
            return f"{text} {MET if met else MISSED}"
    return text


def load(results_dir: Path, tiers: list[str]) -> list[dict[str, Any]]:
    paths = [results_dir / f"{t}.json" for t in tiers] or sorted(results_dir.glob("*.json"))
    results = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    return sorted(results, key=lambda r: (r["dataset"]["events"], r["tier"]))


def _s(m: dict[str, Any] | None) -> str:
    return f"{m['wall_s']:.1f}" if m and m.get("ok") else (str(m["exit_status"]) if m else "-")


def _mb(m: dict[str, Any] | None) -> str:
    return f"{m['peak_rss_mb']:,.0f}" if m and m.get("ok") else "-"


def _share(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "-"


def summary(results: list[dict[str, Any]]) -> str:
    lines = [
        "| tier | accounts x months | events | extract MB | floor s | full s | full / floor"
        " | full peak RSS MB | rerun s | rerun / full | fixed s | incremental s"
        " | incremental / full | other cores (full) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ds, m = r["dataset"], r["measurements"]
        full, rerun, incr = m.get("full"), m.get("rerun"), m.get("incremental")
        ratio = _full_over_floor(r)
        to_full = ratios_to_full(m)
        other = (
            f"{full['other_cores']:.2f}" if full and full.get("other_cores") is not None else "-"
        )
        cells = [
            r["tier"],
            f"{ds['accounts']:,} x {ds['months']}",
            f"{ds['events']:,}",
            f"{ds['mb']:,}",
            _s(m.get("floor")),
            _marked(_s(full), r, "full s"),
            _marked(f"{ratio:.1f}" if ratio else "-", r, "full / floor"),
            _marked(_mb(full), r, "full peak RSS MB"),
            _s(rerun),
            _marked(_share(to_full.get("rerun")), r, "rerun / full"),
            _marked(_s(m.get("fixed")), r, "fixed s"),
            _s(incr),
            _marked(_share(to_full.get("incremental")), r, "incremental / full"),
            other,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _figure(target: Target, value: float) -> str:
    if target.unit == "%":
        return f"{value:.1%}"
    if target.unit == "x":
        return f"{value:.1f}x"
    return f"{value:,.1f} {target.unit}"


def targets(results: list[dict[str, Any]]) -> str:
    """Every target of issue 16 with each tier it applies to: the figure, and whether it is met."""
    lines = ["| target | tier | measured | met |", "|---|---|---:|---|"]
    for target in TARGETS:
        for r in results:
            if not target.applies(r):
                continue
            value, met = target.value(r), target.met(r)
            figure = _figure(target, value) if value is not None else "not measured"
            mark = "-" if met is None else MET if met else MISSED
            lines.append(f"| {target.label} | {r['tier']} | {figure} | {mark} |")
    return "\n".join(lines)


def _where(m: dict[str, Any]) -> str:
    d = m.get("detail") or {}
    if d.get("skipped"):
        return f"skipped, decided in {d.get('run_or_skip_s', 0):.1f} s: {d.get('reason', '')}"
    if "stages_s" in d:
        parts = [f"{k} {v:.1f}" for k, v in d["stages_s"].items()]
        if d.get("dagster_run_s") is not None:
            parts.append(f"outside the run {m['wall_s'] - d['dagster_run_s']:.1f}")
        counts = [f"{d.get('files_decided', '?')} files"]
        if d.get("dbt_nodes_run") is not None:
            counts.append(f"{d['dbt_nodes_run']} dbt nodes run")
        if d.get("marts_published") is not None:
            counts.append(f"{d['marts_published']} marts published")
        return ", ".join(parts) + f" ({', '.join(counts)})"
    if "models" in d:
        top = list(d["slowest_nodes_s"].items())[:4]
        slowest = ", ".join(f"`{k.split('.')[0]}` {v:.1f}" for k, v in top)
        return (
            f"{d['models']} models {d['models_s']:.1f} s + {d['tests']} tests {d['tests_s']:.1f} s"
            f" of thread time; slowest: {slowest}"
        )
    if "marts" in d:
        return f"{d['marts']} marts {d['marts_s']:.1f} s, serving copy {d['serving_copy_s']:.1f} s"
    if "total_rows" in d:
        return f"{d['total_rows']:,} rows in {d['files']} files"
    return ""


def tier_table(r: dict[str, Any]) -> str:
    ds, ratios = r["dataset"], r.get("ratios_to_floor", {})
    lines = [
        f"**{r['tier']}**: {ds['accounts']:,} accounts x {ds['months']} months, as of"
        f" {ds['as_of']}, {ds['events']:,} events in {ds['files']} files ({ds['mb']} MB); code"
        f" {(r['code'].get('commit') or '?')[:10]}, DuckDB {r['settings']['duckdb_memory_limit']}"
        f" x {r['settings']['duckdb_threads']} threads, measured {r['created_at'][:10]}.",
        "",
        "| run | wall s | x floor | peak RSS MB | exit | other cores | where the time went (s) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, m in r["measurements"].items():
        ratio = (
            "1.0" if name == "floor" else f"{ratios[name]['wall']:.1f}" if name in ratios else "-"
        )
        other = f"{m['other_cores']:.2f}" if m.get("other_cores") is not None else "-"
        lines.append(
            f"| {name} | {_s(m)} | {ratio} | {_mb(m)} | {m['exit_status']} | {other}"
            f" | {_where(m) if m.get('ok') else m.get('error', '')} |"
        )
    return "\n".join(lines)


def machine(r: dict[str, Any]) -> str:
    mc = r["machine"]
    v = mc["versions"]
    return (
        f"{mc['cores']} cores ({mc['cpu_model']}), {mc['memory_gb']} GB, {mc['os']}; Python"
        f" {mc['python']}, DuckDB {v.get('duckdb')}, dbt-core {v.get('dbt-core')}, dbt-duckdb"
        f" {v.get('dbt-duckdb')}, Dagster {v.get('dagster')}"
    )


def main(argv: list[str]) -> int:
    results_dir = Path(argv[0]) if argv else DEFAULT_RESULTS_DIR
    results = load(results_dir, argv[1:])
    if not results:
        print(f"no results in {results_dir}", file=sys.stderr)
        return 1
    print(machine(results[-1]), end="\n\n")
    print(summary(results), end="\n\n")
    print(targets(results), end="\n\n")
    for r in results:
        print(tier_table(r), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
