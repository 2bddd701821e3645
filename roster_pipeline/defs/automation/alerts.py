"""Alerts: a district's failed or blocked sync is posted to ROSTER_ALERT_WEBHOOK_URL, once a night.

A Dagster run-failure sensor watches `district_sync` runs however they were launched: the UI and
the sensors' runs (launched by the daemon from this code location), and the runs the nightly and
events batches and the CLI execute in their own process. Those carry no code-location origin
(`execute_in_process` records none), so a sensor that watched only its own location never saw
them: it watches every run of the instance instead, and keeps to `district_sync` runs by name and
partition tag. A blocked publish is a failed run too: its
failed mass-change checks make it "blocked", with `roster-pipeline approve` as the fix. At most
one message per district per night (noon to noon in ROSTER_SYNC_TIMEZONE), remembered in the
instance's key-value store, so a district that fails again on every events poll is not repeated.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

from dagster import DefaultSensorStatus, RunFailureSensorContext, SkipReason, run_failure_sensor

from roster_pipeline.defs.automation.batch import run_problems
from roster_pipeline.defs.constants import (
    APPROVAL_TAG,
    CONTRACT_CHECK,
    DISTRICT_NAME_TAG,
    DISTRICT_SYNC_JOB,
    MASS_CHANGE_CHECK,
    PARTITION_TAG,
)
from roster_pipeline.operations.alerts import Alert, post_alert
from roster_pipeline.publishing.guard import without_approval_hint
from roster_pipeline.settings import OperationsSettings

ALERTED_KEY = "roster/alerted/{district_id}"  # → the night (a date) of the last alert sent for the district


def night_of(moment: datetime, timezone: str) -> str:
    """The night a moment belongs to: noon to noon local time, named by the evening's date."""
    return (moment.astimezone(ZoneInfo(timezone)) - timedelta(hours=12)).date().isoformat()


def alert_for_run(run, events) -> Alert:
    """What went wrong in a failed `district_sync` run, and what resolves it."""
    district_id = run.tags.get(PARTITION_TAG, "?")
    problems = run_problems(events)
    blocked = [p for p in problems if f":{MASS_CHANGE_CHECK} failed" in p]
    contracts = [p for p in problems if f":{CONTRACT_CHECK} failed" in p]
    name = run.tags.get(DISTRICT_NAME_TAG)
    if blocked:
        # The guard's sentences end with how to approve; the alert's `fix` says that once.
        return Alert(district_id, name, "blocked", "; ".join(without_approval_hint(p) for p in blocked),
                     f"review the change (the mass_change_guard checks of run {run.run_id} in the Dagster UI, "
                     f"or the school confirmation pages), then run `roster-pipeline approve --district {district_id}` "
                     f"or launch district_sync for partition {district_id} with the tag {APPROVAL_TAG}=true.")
    if contracts:
        return Alert(district_id, name, "failed", "; ".join(contracts),
                     "fix the failing records named in the pandera_contract checks of run "
                     f"{run.run_id} (in the SIS, or the rules profile); the next sync publishes once they pass.")
    reason = "; ".join(problems) or "the run failed (see its log)"
    return Alert(district_id, name, "failed", reason,
                 f"see run {run.run_id} in the Dagster UI; once the cause is fixed, "
                 f"`roster-pipeline sync --district {district_id}` (or the next nightly sync) retries.")


def build_alerts_sensor(timezone: str):
    @run_failure_sensor(
        name="district_alerts", minimum_interval_seconds=30, default_status=DefaultSensorStatus.RUNNING,
        monitor_all_code_locations=True,  # the in-process runs of batches and the CLI have no origin (see above)
        description="Posts a failed or blocked district sync to ROSTER_ALERT_WEBHOOK_URL (Slack-compatible JSON), "
                    "naming the district, the reason and what resolves it; at most one message per district per "
                    "night. Does nothing while the variable is unset; a failing webhook never fails a sync.")
    def district_alerts(context: RunFailureSensorContext):
        run = context.dagster_run
        # A run passed over returns None: Dagster ends a run-status sensor's tick at the first run
        # its function returns something for, so a SkipReason per batch run or repeated failure
        # would handle one failed run per 30 s tick and leave a busy night's alerts behind.
        if run.job_name != DISTRICT_SYNC_JOB or PARTITION_TAG not in run.tags:
            return None
        operations = OperationsSettings.from_env()
        url = operations.alert_webhook_url
        if url is None:
            return SkipReason("ROSTER_ALERT_WEBHOOK_URL is not set: no alert sent.")
        district_id = run.tags[PARTITION_TAG]
        record = context.instance.get_run_record_by_id(run.run_id)
        failed_at = datetime.fromtimestamp(record.end_time or time.time(), tz=dt_timezone.utc)
        night, key = night_of(failed_at, timezone), ALERTED_KEY.format(district_id=district_id)
        storage = context.instance.run_storage
        if storage.get_cursor_values({key}).get(key) == night:
            context.log.info(f"District {district_id} was already alerted for the night of {night}; run "
                             f"{run.run_id} is not alerted again.")
            return None
        events = [e.dagster_event for e in context.instance.all_logs(run.run_id) if e.dagster_event]
        alert = alert_for_run(run, events)
        if post_alert(url, alert, allow_private=operations.alert_webhook_allow_private):
            storage.set_cursor_values({key: night})
            context.log.info(f"Alert sent for district {district_id} ({alert.problem}).")
        else:
            context.log.warning(f"Alert for district {district_id} could not be delivered; the sync is not affected.")
        return None

    return district_alerts
