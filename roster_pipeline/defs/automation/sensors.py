"""Sensors: new districts (token discovery) and intraday changes (Clever events).

Without Clever settings (a first `dagster dev`, before the sandbox's variables are exported) both
sensors skip with one line naming the missing variables: the settings are not an error the daemon
should print as a traceback every five minutes, just a step the reader has not taken yet.
"""

from __future__ import annotations

import hashlib
import json
import time

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from roster_pipeline.clever.client import CleverAPIError
from roster_pipeline.clever.events import newest_event
from roster_pipeline.defs.automation.batch import batch_run_requests
from roster_pipeline.defs.automation.jobs import run_tags, sync_run_config
from roster_pipeline.defs.constants import (
    DISTRICT_BATCH_JOB,
    DISTRICT_PARTITIONS_NAME,
    DISTRICT_SYNC_JOB,
)
from roster_pipeline.defs.partitions import district_partitions
from roster_pipeline.defs.resources import CleverResource

CLEVER_VARIABLES = "set CLEVER_DISTRICT_TOKENS, or CLEVER_CLIENT_ID and CLEVER_CLIENT_SECRET"


def clever_not_configured(clever: CleverResource) -> SkipReason | None:
    """A skip naming what is missing when Clever has neither district tokens nor client credentials.

    Only missing settings skip: a malformed value still fails the tick with its own sentence.
    """
    if clever.district_tokens or (clever.client_id and clever.client_secret):
        return None
    missing = ("" if not (clever.client_id or clever.client_secret)
               else f" ({'CLEVER_CLIENT_SECRET' if clever.client_id else 'CLEVER_CLIENT_ID'} is missing)")
    return SkipReason(f"Clever is not configured: {CLEVER_VARIABLES}{missing}.")


def district_sensor(name: str, interval_seconds: int, description: str, job_name: str = DISTRICT_SYNC_JOB):
    """A sensor that requests `district_sync` (or `job_name`) runs: running from the start (an
    installation keeps itself fresh), and skipping with one line while Clever is not configured."""

    def decorate(evaluate):
        @sensor(name=name, job_name=job_name, minimum_interval_seconds=interval_seconds,
                default_status=DefaultSensorStatus.RUNNING, description=description)
        def evaluation(context: SensorEvaluationContext, clever: CleverResource):
            return clever_not_configured(clever) or evaluate(context, clever)

        return evaluation

    return decorate


def discover_districts(context: SensorEvaluationContext, clever: CleverResource):
    authorized = set(clever.district_tokens_by_id())
    registered = set(context.instance.get_dynamic_partitions(DISTRICT_PARTITIONS_NAME))
    new = sorted(authorized - registered)
    gone = sorted(registered - authorized)
    reported = set(json.loads(context.cursor or "[]"))
    for district_id in sorted(set(gone) - reported):
        context.log.warning(
            f"District {district_id} no longer has a Clever token (the app was de-authorized): it is not synced "
            f"any more; its data is kept until `roster-pipeline forget --district {district_id}`.")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return SensorResult(
        run_requests=[RunRequest(partition_key=d, run_key=f"discovery:{d}:{stamp}",
                                 run_config=sync_run_config(incremental=False), tags=run_tags(d, "discovery"))
                      for d in new],
        dynamic_partitions_requests=[district_partitions.build_add_request(new)] if new else [],
        cursor=json.dumps(gone),
    )


def build_discovery_sensor(interval_seconds: int):
    description = ("Polls Clever's token list: a district that authorized the app becomes a partition and gets its "
                   "first full sync at once; a district whose token disappeared is reported and no longer synced.")
    return district_sensor("district_discovery", interval_seconds, description)(discover_districts)


def request_event_syncs(context: SensorEvaluationContext, clever: CleverResource, batch_size: int):
    """Districts with new events since the last tick, `batch_size` to a `district_batch` run
    (one warm process: an incremental district costs far less than a run's process start)."""
    seen: dict[str, str | None] = json.loads(context.cursor or "{}")
    tokens = clever.district_tokens_by_id()
    registered = context.instance.get_dynamic_partitions(DISTRICT_PARTITIONS_NAME)
    changed: dict[str, str] = {}  # district → its newest event id
    for district_id in sorted(set(registered) & set(tokens)):
        newest = None
        try:
            with clever.client_for(district_id, tokens[district_id]) as client:
                params = {"starting_after": seen[district_id]} if seen.get(district_id) else {}
                found = newest_event(client, params)
            newest = found.id
            if found.skipped:
                context.log.warning(f"District {district_id}: {found.skipped} malformed Clever events skipped "
                                    "(not an object or without an id).")
        except CleverAPIError as exc:
            if exc.status == 404:  # our last seen event expired: let the run decide (it refreshes fully)
                seen[district_id], newest = None, f"expired-{time.strftime('%Y%m%dT%H%M')}"
            else:  # events off (403) or Clever unreachable: the nightly full refresh covers the district
                context.log.info(f"District {district_id}: events not checked ({exc}).")
                continue
        except Exception as exc:  # one district's surprise never costs the others their tick (its message may quote data)
            context.log.warning(f"District {district_id}: events not checked ({type(exc).__name__}); the nightly "
                                "full refresh covers it.")
            continue
        if newest:
            changed[district_id] = newest
            if not newest.startswith("expired-"):
                seen[district_id] = newest

    def run_key(batch: list[str]) -> str:  # names the events: a tick that sees them again requests nothing new
        return f"events:{batch[0]}:{hashlib.sha1(json.dumps([[d, changed[d]] for d in batch]).encode()).hexdigest()[:16]}"

    requests = batch_run_requests(sorted(changed), batch_size, run_key, trigger="events", incremental=True)
    skip = None if requests else SkipReason("No district has new Clever events.")
    return SensorResult(run_requests=requests, cursor=json.dumps(seen), skip_reason=skip)


def build_events_sensor(interval_seconds: int, batch_size: int):
    description = ("Looks for new Clever events of every district; the districts that have some get an incremental "
                   f"sync (events applied to the raw tables, only the changed records rebuilt), {batch_size} to a "
                   "district_batch run (one warm process), each district in its own district_sync run.")
    return district_sensor("clever_events", interval_seconds, description, DISTRICT_BATCH_JOB)(
        lambda context, clever: request_event_syncs(context, clever, batch_size))
