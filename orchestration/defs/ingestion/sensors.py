"""Start ingestion when extract files land: one run per tick for every new or changed file, never
one for a file already seen (keyed by path and SHA-256), and none while the previous one is still
queued or running.

A first start over a landing directory that already holds hundreds of files therefore queues one
run, not one per file (560 for the demo sample before this), and a burst of files arriving while
a run loads the previous ones is picked up, all together, by the first tick after that run ends.
"""

import hashlib
import json
from pathlib import Path

import dagster as dg

from ingestion.contract import TABLES
from ingestion.landing import discover, sha256_of, unrecognised_files
from orchestration.defs.ingestion.assets import UNRECOGNISED_FILES_KEY
from orchestration.defs.jobs import INGEST_JOB
from orchestration.defs.settings_resource import SettingsResource

SENSOR_NAME = "landing_sensor"
#: Run tag naming the sensor that requested a run, to find its runs still in progress.
SENSOR_TAG = "csw/sensor"

#: cursor: {relative path: [size, mtime_ns, sha256]}; size and mtime spare re-hashing unchanged files.
Seen = dict[str, list]

#: A run in one of these states has not finished loading its files yet.
UNFINISHED = (
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)


def candidates(landing: Path) -> list[tuple[str, dg.AssetKey]]:
    """Every file a run would act on, with the asset that does: the extracts of each table, and
    the files outside the table folders that look like data (``landing/unrecognised_files``
    lists them, so a typo in a folder name is reported by the run it starts). Marker and hidden
    files are neither."""
    files = [
        (file.relative, dg.AssetKey([schema.system, schema.name]))
        for schema in TABLES
        for file in discover(landing, schema)
    ]
    files += [
        (f.source_file, UNRECOGNISED_FILES_KEY) for f in unrecognised_files(landing) if f.blocking
    ]
    return files


def new_files(landing: Path, seen: Seen) -> tuple[list[tuple[str, str, dg.AssetKey]], Seen]:
    """The files whose content the cursor has not seen, and the updated cursor."""
    found: list[tuple[str, str, dg.AssetKey]] = []
    current: Seen = {}
    for relative, key in candidates(landing):
        path = landing / relative
        stat = path.stat()
        before = seen.get(relative)
        if before and before[:2] == [stat.st_size, stat.st_mtime_ns]:
            current[relative] = before
            continue
        digest = sha256_of(path)
        current[relative] = [stat.st_size, stat.st_mtime_ns, digest]
        if not before or before[2] != digest:
            found.append((relative, digest, key))
    return found, current


def digest_of(found: list[tuple[str, str, dg.AssetKey]]) -> str:
    """One SHA-256 over the (path, content) pairs: the same set of file versions, the same key."""
    lines = sorted(f"{relative}\t{sha}" for relative, sha, _ in found)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def run_request(found: list[tuple[str, str, dg.AssetKey]]) -> dg.RunRequest:
    """One run loading every table with a new or changed file."""
    keys = sorted({key for _, _, key in found}, key=lambda k: k.to_user_string())
    digest = digest_of(found)
    return dg.RunRequest(
        run_key=f"landing:{digest}",
        asset_selection=keys,
        tags={
            SENSOR_TAG: SENSOR_NAME,
            "csw/files": str(len(found)),
            "csw/tables": ",".join(k.to_user_string() for k in keys),
            "csw/digest": digest,
        },
    )


def unfinished_run_id(instance: dg.DagsterInstance) -> str | None:
    """The id of a run this sensor requested that is still queued or running, if any."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(statuses=list(UNFINISHED), tags={SENSOR_TAG: SENSOR_NAME}),
        limit=1,
    )
    return runs[0].run_id if runs else None


@dg.sensor(
    name=SENSOR_NAME,
    job_name=INGEST_JOB,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts one ingestion run for all new or changed extract files of a tick, "
    "loading only the tables concerned; waits while its previous run is queued or running.",
)
def landing_sensor(
    context: dg.SensorEvaluationContext, settings: SettingsResource
) -> dg.SensorResult:
    landing = Path(settings.landing_dir)
    if not landing.is_dir():
        return dg.SensorResult(skip_reason=f"no landing directory at {landing}")
    running = unfinished_run_id(context.instance)
    if running is not None:
        # The cursor stays as it was: the files that arrived meanwhile are new to the next tick.
        return dg.SensorResult(
            skip_reason=f"ingest run {running} started by this sensor has not finished yet;"
            " new files are picked up by the first tick after it"
        )
    seen: Seen = json.loads(context.cursor) if context.cursor else {}
    found, current = new_files(landing, seen)
    return dg.SensorResult(
        run_requests=[run_request(found)] if found else [],
        cursor=json.dumps(current, sort_keys=True),
    )
