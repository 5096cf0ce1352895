"""Failure alerts: a failed run of any job is sent to a webhook and/or a command as JSON.

``CSW_ALERT_WEBHOOK`` receives a ``POST`` with the JSON body (``Content-Type:
application/json``); ``CSW_ALERT_COMMAND`` is started without a shell (split with
:func:`shlex.split`) with the JSON on its standard input. The payload::

    {"event": "run_failure", "job": "pipeline", "run_id": "...", "status": "FAILURE",
     "message": "<Dagster's failure message>",
     "failed_steps": [{"step": "crm__accounts", "error": "RuntimeError: disk full"}],
     "tags": {"csw/as_of": "2026-11-23", ...},
     "url": "http://dagster.internal:3000/runs/<run id>" or null (CSW_DAGSTER_URL unset),
     "text": "one line for chat webhooks (Slack, Mattermost and Teams show the text key)"}

An alert that cannot be delivered (webhook down, command failing or hanging past
:data:`ALERT_TIMEOUT_S`) is logged on the sensor's tick and not raised: Dagster has moved on to
the next failed run either way, and raising would only hide the other channel's result.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import dagster as dg

from orchestration.defs.settings_resource import SettingsResource

SENSOR_NAME = "run_failure_alert"
#: Seconds a webhook call or the alert command may take.
ALERT_TIMEOUT_S = 30.0
#: Run tags worth repeating in an alert: what the run was for and what started it.
_TAG_PREFIXES = ("csw/", "dagster/schedule_name", "dagster/sensor_name")


def _root_cause(error: Any) -> str:
    """The innermost error of Dagster's wrapped step error, e.g. ``RuntimeError: disk full``."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def failed_steps(events: Sequence[dg.DagsterEvent]) -> list[dict[str, str]]:
    """Each failed step with the error that stopped it."""
    steps = []
    for event in events:
        data = event.step_failure_data
        error = _root_cause(data.error) if data and data.error else "no error recorded"
        steps.append({"step": event.step_key or "?", "error": error})
    return steps


def failure_payload(
    run: dg.DagsterRun, message: str | None, steps: list[dict[str, str]], dagster_url: str
) -> dict[str, Any]:
    """The JSON an alert carries (module docstring)."""
    url = f"{dagster_url.rstrip('/')}/runs/{run.run_id}" if dagster_url else None
    reason = "; ".join(f"{s['step']}: {s['error']}" for s in steps) or (message or "").strip()
    return {
        "event": "run_failure",
        "job": run.job_name,
        "run_id": run.run_id,
        "status": run.status.value,
        "message": message,
        "failed_steps": steps,
        "tags": {k: v for k, v in sorted(run.tags.items()) if k.startswith(_TAG_PREFIXES)},
        "url": url,
        "text": f"cs-warehouse: run {run.run_id[:8]} of job {run.job_name} failed: {reason}"
        + (f" ({url})" if url else ""),
    }


def post_json(url: str, body: bytes, timeout_s: float) -> None:
    """POST ``body`` to ``url``; raises on a refused connection or a non-2xx answer."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("the alert webhook must be an http:// or https:// URL")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "cs-warehouse-alert"},
    )
    with urllib.request.urlopen(request, timeout=timeout_s):  # scheme checked above
        pass  # urlopen raises HTTPError for 4xx and 5xx


def pipe_to_command(command: str, body: bytes, timeout_s: float) -> None:
    """Run ``command`` (no shell) with ``body`` on its standard input; raises unless it exits 0."""
    try:
        done = subprocess.run(
            shlex.split(command), input=body, capture_output=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError:
        raise RuntimeError(f"not found: {shlex.split(command)[0]}") from None
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace").strip()[-500:]
        raise RuntimeError(f"exit status {done.returncode}: {stderr or 'no output'}")


def deliver(
    payload: dict[str, Any], *, webhook: str, command: str, timeout_s: float = ALERT_TIMEOUT_S
) -> list[str]:
    """Send ``payload`` to the configured destinations; the problems, one line each (empty: sent)."""
    body = json.dumps(payload, sort_keys=True).encode("utf-8")
    problems = []
    if webhook:
        try:
            post_json(webhook, body, timeout_s)
        except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
            problems.append(f"webhook {webhook}: {exc}")
    if command:
        try:
            pipe_to_command(command, body, timeout_s)
        except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
            problems.append(f"command {command!r}: {exc}")
    return problems


@dg.run_failure_sensor(
    name=SENSOR_NAME,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends every failed run (job, run id, failed steps and their errors, UI link) to "
    "CSW_ALERT_WEBHOOK as a JSON POST and/or to CSW_ALERT_COMMAND on standard input.",
)
def run_failure_alert(context: dg.RunFailureSensorContext, settings: SettingsResource) -> None:
    run = context.dagster_run
    if not (settings.alert_webhook or settings.alert_command):
        context.log.info(
            f"run {run.run_id} of {run.job_name} failed; no alert sent: set CSW_ALERT_WEBHOOK"
            " or CSW_ALERT_COMMAND"
        )
        return
    payload = failure_payload(
        run,
        context.failure_event.message,
        failed_steps(context.get_step_failure_events()),
        settings.dagster_url,
    )
    problems = deliver(payload, webhook=settings.alert_webhook, command=settings.alert_command)
    for problem in problems:
        context.log.error(f"alert for failed run {run.run_id} not delivered: {problem}")
    if not problems:
        context.log.info(f"alert sent for failed run {run.run_id} of {run.job_name}")
