"""The nightly full refresh of every authorized district at ROSTER_SYNC_CRON in ROSTER_SYNC_TIMEZONE.

Districts go in batches of ROSTER_SYNC_BATCH_SIZE, one `district_batch` run each (see batch.py:
a run's process start would otherwise cost as much as a small district's whole sync). Every
district still gets its own `district_sync` run inside the batch.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

from dagster import DefaultScheduleStatus, ScheduleEvaluationContext, schedule

from roster_pipeline.clever.client import CleverAPIError
from roster_pipeline.defs.automation.batch import batch_run_requests
from roster_pipeline.defs.automation.sensors import clever_not_configured
from roster_pipeline.defs.constants import DISTRICT_BATCH_JOB, DISTRICT_PARTITIONS_NAME
from roster_pipeline.defs.resources import CleverResource, WarehouseResource
from roster_pipeline.operations.district_status import warehouse_facts


def paused_districts(warehouse: WarehouseResource, log) -> dict[str, str]:
    """district id → " until <date>" (or "") for the districts Clever says are paused now."""
    now = datetime.now(dt_timezone.utc)
    try:
        facts = warehouse_facts(warehouse.warehouse())
    except Exception as exc:  # an unreachable warehouse must not stop the night: every district is tried
        log.warning(f"Could not read the districts' pause state ({type(exc).__name__}); refreshing every district.")
        return {}
    return {district_id: f" until {fact.pause_end:%Y-%m-%d}" if fact.pause_end else ""
            for district_id, fact in facts.items() if fact.paused(now)}


def build_nightly_schedule(cron: str, timezone: str, batch_size: int):
    @schedule(
        name="nightly_full_refresh", cron_schedule=cron, execution_timezone=timezone, job_name=DISTRICT_BATCH_JOB,
        default_status=DefaultScheduleStatus.RUNNING,
        description="Every night, a full refresh of every registered district that still has a Clever token and that "
                    "Clever has not paused: "
                    f"deletions and unshared records disappear. Districts go {batch_size} to a run (one warm "
                    "process), each with its own district_sync run; the run key holds the night, so a tick "
                    "never starts a batch twice.",
    )
    def nightly_full_refresh(context: ScheduleEvaluationContext, clever: CleverResource, warehouse: WarehouseResource):
        if skip := clever_not_configured(clever):  # like the sensors: one line, not a traceback
            yield skip
            return
        paused = paused_districts(warehouse, context.log)
        night = context.scheduled_execution_time.astimezone(ZoneInfo(timezone)).date().isoformat()
        registered = sorted(context.instance.get_dynamic_partitions(DISTRICT_PARTITIONS_NAME))
        try:
            authorized = set(clever.district_tokens_by_id())
        except CleverAPIError as exc:  # discovery is down: try every district; each run reports its own failure
            context.log.warning(f"Token discovery failed ({exc}); requesting every registered district.")
            authorized = set(registered)
        wanted = []
        for district_id in registered:
            if district_id not in authorized:
                context.log.warning(f"District {district_id} has no Clever token any more (de-authorized?); "
                                    f"not synced. Its data is kept until `roster-pipeline forget --district {district_id}`.")
                continue
            if district_id in paused:
                context.log.info(f"District {district_id}: Clever has paused its syncs{paused[district_id]}, so its data "
                                 "cannot change; not refreshed tonight (the events sensor keeps watching).")
                continue
            wanted.append(district_id)
        yield from batch_run_requests(wanted, batch_size, lambda batch: f"nightly:{night}:{batch[0]}", trigger="schedule")

    return nightly_full_refresh
