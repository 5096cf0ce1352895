"""Start ingestion when extract files land: one run per new or changed file, never one for a file
already seen (keyed by path and SHA-256)."""

import json
from pathlib import Path

import dagster as dg

from ingestion.contract import TABLES
from ingestion.landing import discover, sha256_of
from orchestration.defs.jobs import INGEST_JOB
from orchestration.defs.settings_resource import SettingsResource

#: cursor: {relative path: [size, mtime_ns, sha256]}; size and mtime spare re-hashing unchanged files.
Seen = dict[str, list]


def new_files(landing: Path, seen: Seen) -> tuple[list[tuple[str, str, dg.AssetKey]], Seen]:
    """The files whose content the cursor has not seen, and the updated cursor."""
    found: list[tuple[str, str, dg.AssetKey]] = []
    current: Seen = {}
    for schema in TABLES:
        for file in discover(landing, schema):
            stat = file.path.stat()
            before = seen.get(file.relative)
            if before and before[:2] == [stat.st_size, stat.st_mtime_ns]:
                current[file.relative] = before
                continue
            digest = sha256_of(file.path)
            current[file.relative] = [stat.st_size, stat.st_mtime_ns, digest]
            if not before or before[2] != digest:
                found.append((file.relative, digest, dg.AssetKey([schema.system, schema.name])))
    return found, current


@dg.sensor(
    name="landing_sensor",
    job_name=INGEST_JOB,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts an ingestion run for each new or changed extract file in the landing directory.",
)
def landing_sensor(
    context: dg.SensorEvaluationContext, settings: SettingsResource
) -> dg.SensorResult:
    landing = Path(settings.landing_dir)
    if not landing.is_dir():
        return dg.SensorResult(skip_reason=f"no landing directory at {landing}")
    seen: Seen = json.loads(context.cursor) if context.cursor else {}
    found, current = new_files(landing, seen)
    requests = [
        dg.RunRequest(
            run_key=f"{relative}:{digest}",
            asset_selection=[key],
            tags={"csw/file": relative, "csw/sha256": digest},
        )
        for relative, digest, key in found
    ]
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(current, sort_keys=True))
