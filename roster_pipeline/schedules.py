"""The nightly full refresh: one run per authorized district at ROSTER_SYNC_CRON in ROSTER_SYNC_TIMEZONE."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, schedule

from roster_pipeline.clever.client import CleverAPIError
from roster_pipeline.jobs import DISTRICT_SYNC_JOB, run_tags, sync_run_config
from roster_pipeline.partitions import DISTRICT_PARTITIONS_NAME
from roster_pipeline.resources import CleverResource


def build_nightly_schedule(cron: str, timezone: str):
    @schedule(
        name="nightly_full_refresh", cron_schedule=cron, execution_timezone=timezone, job_name=DISTRICT_SYNC_JOB,
        default_status=DefaultScheduleStatus.RUNNING,
        description="Every night, a full refresh of every registered district that still has a Clever token: "
                    "deletions and unshared records disappear. One run per district; the run key holds the "
                    "night, so a tick never starts a district twice.",
    )
    def nightly_full_refresh(context: ScheduleEvaluationContext, clever: CleverResource):
        night = context.scheduled_execution_time.astimezone(ZoneInfo(timezone)).date().isoformat()
        registered = sorted(context.instance.get_dynamic_partitions(DISTRICT_PARTITIONS_NAME))
        try:
            authorized = set(clever.district_tokens_by_id())
        except CleverAPIError as exc:  # discovery is down: try every district; each run reports its own failure
            context.log.warning(f"Token discovery failed ({exc}); requesting every registered district.")
            authorized = set(registered)
        for district_id in registered:
            if district_id not in authorized:
                context.log.warning(f"District {district_id} has no Clever token any more (de-authorized?); "
                                    f"not synced. Its data is kept until `roster-pipeline forget --district {district_id}`.")
                continue
            yield RunRequest(
                run_key=f"nightly:{night}:{district_id}", partition_key=district_id,
                run_config=sync_run_config(incremental=False), tags=run_tags(district_id, "schedule"),
            )

    return nightly_full_refresh
