"""What keeps every district fresh: the district job, the nightly batches, the schedule and the sensors."""

from collections.abc import Callable

from dagster import Definitions, JobDefinition

from roster_pipeline.defs.automation.alerts import build_alerts_sensor
from roster_pipeline.defs.automation.batch import build_district_batch_job
from roster_pipeline.defs.automation.freshness import (
    build_freshness_schedule,
    district_freshness_check,
    district_freshness_job,
)
from roster_pipeline.defs.automation.jobs import build_district_sync_job
from roster_pipeline.defs.automation.schedules import build_nightly_schedule
from roster_pipeline.defs.automation.sensors import build_discovery_sensor, build_events_sensor
from roster_pipeline.settings import FreshnessSettings


def automation_definitions(warehouse_kind: str, freshness: FreshnessSettings,
                           district_job: Callable[[], JobDefinition]) -> Definitions:
    """`district_job` returns the district job of the whole definitions, already built (a batch
    runs it in process)."""
    return Definitions(
        jobs=[build_district_sync_job(warehouse_kind), build_district_batch_job(warehouse_kind, district_job),
              district_freshness_job],
        schedules=[build_nightly_schedule(freshness.sync_cron, freshness.sync_timezone, freshness.batch_size),
                   build_freshness_schedule(freshness.sync_timezone)],
        sensors=[build_discovery_sensor(freshness.discovery_interval_seconds),
                 build_events_sensor(freshness.events_interval_seconds, freshness.batch_size),
                 build_alerts_sensor(freshness.sync_timezone)],
        asset_checks=[district_freshness_check],
    )
