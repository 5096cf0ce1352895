"""Results JSON as the Markdown tables of ``docs/performance.md``.

``python -m benchmarks.report [RESULTS_DIR] [TIER ...]`` prints a summary across tiers, then one
table per tier, so the document quotes the files rather than hand-copied numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.harness import DEFAULT_RESULTS_DIR


def load(results_dir: Path, tiers: list[str]) -> list[dict[str, Any]]:
    paths = [results_dir / f"{t}.json" for t in tiers] or sorted(results_dir.glob("*.json"))
    results = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    return sorted(results, key=lambda r: (r["dataset"]["events"], r["tier"]))


def _s(m: dict[str, Any] | None) -> str:
    return f"{m['wall_s']:.1f}" if m and m.get("ok") else (str(m["exit_status"]) if m else "-")


def _mb(m: dict[str, Any] | None) -> str:
    return f"{m['peak_rss_mb']:,.0f}" if m and m.get("ok") else "-"


def summary(results: list[dict[str, Any]]) -> str:
    lines = [
        "| tier | accounts x months | events | extract MB | floor s | full s | full / floor"
        " | full peak RSS MB | incremental s | incremental / full | other cores (full) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ds, m = r["dataset"], r["measurements"]
        full, incr = m.get("full"), m.get("incremental")
        ratio = r.get("ratios_to_floor", {}).get("full", {}).get("wall")
        share = (
            f"{incr['wall_s'] / full['wall_s']:.0%}"
            if full and incr and full.get("ok") and incr.get("ok")
            else "-"
        )
        other = (
            f"{full['other_cores']:.2f}" if full and full.get("other_cores") is not None else "-"
        )
        lines.append(
            f"| {r['tier']} | {ds['accounts']:,} x {ds['months']} | {ds['events']:,} | {ds['mb']:,}"
            f" | {_s(m.get('floor'))} | {_s(full)} | {f'{ratio:.1f}' if ratio else '-'}"
            f" | {_mb(full)} | {_s(incr)} | {share} | {other} |"
        )
    return "\n".join(lines)


def _where(m: dict[str, Any]) -> str:
    d = m.get("detail") or {}
    if "stages_s" in d:
        parts = [f"{k} {v:.1f}" for k, v in d["stages_s"].items()]
        if d.get("dagster_run_s") is not None:
            parts.append(f"outside the run {m['wall_s'] - d['dagster_run_s']:.1f}")
        return ", ".join(parts) + f" ({d.get('files_decided', '?')} files)"
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
    for r in results:
        print(tier_table(r), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
