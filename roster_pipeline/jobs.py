"""The one job: everything of one district (raw load, SQL models, checks, publish), and its run tags.

Every run of a district says which district and what started it, and the instance limits runs by
those tags. Runs reach the instance by several paths that tag them differently: sensors and the
schedule add their request's tags to the job's `run_tags`; the CLI and the nightly batch pass
tags to `execute_in_process`; the UI launches through GraphQL, which adds only the job's `tags`,
and its Materialize button runs Dagster's implicit `__ASSET_JOB`, which has no tags at all (just
`dagster/partition`). So the job's tags are `tags` (Dagster uses them as run tags too), the
one-run-per-district limit is keyed on `dagster/partition`, which every district run carries
however it was launched, and `RosterRunCoordinator` gives a queued run the roster tags it lacks.
"""

from __future__ import annotations

from dagster import AssetSelection, DagsterRun, QueuedRunCoordinator, SubmitRunContext, define_asset_job

from roster_pipeline.partitions import district_partitions

DISTRICT_SYNC_JOB = "district_sync"
RAW_LOAD_OP = "clever_raw"
DISTRICT_TAG = "roster/district"
TRIGGER_TAG = "roster/trigger"
DISTRICT_NAME_TAG = "roster/district_name"  # set by the run itself once it has read the district from Clever
WAREHOUSE_TAG = "roster/warehouse"
PARTITION_TAG = "dagster/partition"  # Dagster's: the district of every partitioned run
FROM_UI_TAG = "dagster/from_ui"  # Dagster's: the UI adds it to everything it launches


def build_district_sync_job(warehouse_kind: str):
    """The job, tagged with the warehouse kind (the instance lets two DuckDB runs go at once).

    `tags`, not `run_tags`: a launch from the UI merges only `tags` into the run. A launch that
    names no trigger is a person's, hence the default `manual`; sensors and the CLI name theirs.
    """
    return define_asset_job(
        DISTRICT_SYNC_JOB,
        selection=AssetSelection.all(),
        partitions_def=district_partitions,
        tags={WAREHOUSE_TAG: warehouse_kind, TRIGGER_TAG: "manual"},
        description="Sync one district: load its Clever data (full refresh or events), rebuild its roster "
                    "tables, check them, and publish them when every check passes.",
    )


def sync_run_config(incremental: bool) -> dict:
    """Run config choosing a full refresh or an incremental (events) load."""
    return {"ops": {RAW_LOAD_OP: {"config": {"incremental": incremental}}}}


def run_tags(district_id: str, trigger: str) -> dict[str, str]:
    """Every run says which district and what started it (schedule, discovery, events, manual)."""
    return {DISTRICT_TAG: district_id, TRIGGER_TAG: trigger}


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
