"""Runs launched from the UI get the roster tags before the queue judges them.

Every run of a district says which district and what started it, and the instance limits runs by
those tags. Sensors, the schedule, the CLI and the nightly batch tag their runs themselves; the UI
launches through GraphQL, which adds only the job's `tags`, and its Materialize button runs
Dagster's implicit `__ASSET_JOB`, which has no tags at all (just `dagster/partition`). So the
one-run-per-district limit is keyed on `dagster/partition`, and this coordinator gives a queued
run the roster tags it lacks. dagster.yaml names it.
"""

from __future__ import annotations

from dagster import DagsterRun, QueuedRunCoordinator, SubmitRunContext

from roster_pipeline.defs.automation.batch import release_dead_runs
from roster_pipeline.defs.constants import (
    DISTRICT_SYNC_JOB,
    DISTRICT_TAG,
    FROM_UI_TAG,
    PARTITION_TAG,
    TRIGGER_TAG,
    WAREHOUSE_TAG,
)


class RosterRunCoordinator(QueuedRunCoordinator):
    """Dagster's queued run coordinator, which first gives a run of this project the tags it lacks.

    Tagged when it is queued, a run launched from the UI shows `roster/district` and
    `roster/trigger=manual` in the UI like any other run, and the `roster/warehouse` limit holds
    it back like any other (tagged later, at run start, it would already have been let through).
    Dagster's own docs use a run coordinator subclass this way ("run attribution").
    """

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        missing = self.missing_tags(context)
        if missing:
            self._instance.add_run_tags(context.dagster_run.run_id, missing)
        district = context.dagster_run.tags.get(PARTITION_TAG)
        if district and project_job(context) is not None:
            # A command-line sync killed mid-run left its run STARTED: it would hold the district's
            # one-run limit until the next nightly or command-line sync of the district noticed.
            release_dead_runs(self._instance, district)
        return super().submit_run(context)  # queues the run and returns it reloaded, tags included

    @staticmethod
    def missing_tags(context: SubmitRunContext) -> dict[str, str]:
        run = context.dagster_run
        district_sync = project_job(context)
        if district_sync is None:  # a run of another code location: not ours to tag
            return {}
        tags = {}
        if run.tags.get(PARTITION_TAG):
            tags[DISTRICT_TAG] = run.tags.get(DISTRICT_TAG) or run.tags[PARTITION_TAG]
        # From the UI (a launch, a re-execution, a backfill) a person started it, whatever the parent run said.
        if run.tags.get(FROM_UI_TAG) == "true" or not run.tags.get(TRIGGER_TAG):
            tags[TRIGGER_TAG] = "manual"
        if WAREHOUSE_TAG in district_sync.tags:  # __ASSET_JOB runs: the warehouse of this code location
            tags[WAREHOUSE_TAG] = run.tags.get(WAREHOUSE_TAG) or district_sync.tags[WAREHOUSE_TAG]
        return {key: value for key, value in tags.items() if run.tags.get(key) != value}


def project_job(context: SubmitRunContext):
    """The `district_sync` job of the run's code location, or None when it has none (not this project)."""
    origin = context.dagster_run.remote_job_origin
    if origin is None:
        return None
    try:
        repository = context.workspace.get_code_location(origin.location_name).get_repository(
            origin.repository_origin.repository_name)
    except Exception:  # noqa: BLE001 -- a location that failed to load: queue the run untagged, never refuse it
        return None
    return repository.get_full_job(DISTRICT_SYNC_JOB) if repository.has_job(DISTRICT_SYNC_JOB) else None
