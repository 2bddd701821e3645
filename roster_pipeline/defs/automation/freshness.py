"""Freshness: a check per district on `roster/published`, red when the district is stale.

A daily schedule runs one `district_freshness` run that judges every district
(operations/freshness.py) and records the check's result for each district partition: hundreds
of districts cost one run, not hundreds. (Dagster's runless check evaluations cannot record a
partition twice: its asset_check_executions table is unique per run and partition.) The same
check can be run from the UI for one district.
"""


from datetime import datetime, timezone

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    DefaultScheduleStatus,
    MetadataValue,
    OpExecutionContext,
    ScheduleDefinition,
    asset_check,
    job,
    op,
)

from roster_pipeline.defs.automation.district_status import DistrictStatus, district_statuses
from roster_pipeline.defs.constants import FRESHNESS_CHECK, FRESHNESS_JOB
from roster_pipeline.defs.partitions import district_partitions
from roster_pipeline.defs.roster.assets import PUBLISHED_KEY
from roster_pipeline.operations.freshness import freshness_verdict
from roster_pipeline.settings import OperationsSettings

FRESHNESS_CRON = "0 6 * * *"
DESCRIPTION = ("Fresh when the district was published within ROSTER_FRESHNESS_HOURS (default 26), or Clever has paused "
               "it; a stale district fails with its last publish time and its last failure's reason. Judged for "
               "every district each morning by the daily_freshness schedule.")


def judged(status: DistrictStatus, now: datetime, hours: float) -> tuple[bool, str, dict]:
    published = datetime.fromisoformat(status.published_at) if status.published_at else None
    fresh, why = freshness_verdict(published, now, hours, paused=status.paused, last_failure=status.last_failure)
    metadata = {"last_publish": MetadataValue.text(status.last_publish or "never"),
                "hours_allowed": MetadataValue.float(hours), "paused_by_clever": MetadataValue.bool(status.paused)}
    if status.last_failure and not fresh:
        metadata["last_failure"] = MetadataValue.text(status.last_failure)
        metadata["last_failure_at"] = MetadataValue.text(status.last_failure_at or "")
    return fresh, why, metadata


@asset_check(asset=PUBLISHED_KEY, name=FRESHNESS_CHECK, partitions_def=district_partitions, description=DESCRIPTION)
def district_freshness_check(context: AssetCheckExecutionContext) -> AssetCheckResult:
    (status,) = district_statuses(context.instance, [context.partition_key])
    fresh, why, metadata = judged(status, datetime.now(timezone.utc), OperationsSettings.from_env().freshness_hours)
    return AssetCheckResult(passed=fresh, description=why, metadata=metadata, severity=AssetCheckSeverity.ERROR)


@op(name="judge_freshness", out={}, description="Records the freshness check of every district.")
def judge_freshness(context: OpExecutionContext):
    hours = OperationsSettings.from_env().freshness_hours
    now = datetime.now(timezone.utc)
    stale = 0
    for status in district_statuses(context.instance):
        fresh, why, metadata = judged(status, now, hours)
        stale += not fresh
        yield AssetCheckEvaluation(asset_key=PUBLISHED_KEY, check_name=FRESHNESS_CHECK, passed=fresh, description=why,
                                   metadata=metadata, severity=AssetCheckSeverity.ERROR, partition=status.district_id)
    context.log.info(f"Freshness judged: {stale} stale district(s).")


@job(name=FRESHNESS_JOB, description="Judges every district's freshness in one run (the freshness check of "
                                     "roster/published, one result per district).")
def district_freshness_job():
    judge_freshness()


def build_freshness_schedule(timezone_name: str) -> ScheduleDefinition:
    """Daily, in the morning after the nightly refresh (ROSTER_SYNC_TIMEZONE)."""
    return ScheduleDefinition(name="daily_freshness", job=district_freshness_job, cron_schedule=FRESHNESS_CRON,
                              execution_timezone=timezone_name, default_status=DefaultScheduleStatus.RUNNING,
                              description="Judges every district's freshness each morning.")
