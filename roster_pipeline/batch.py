"""Many districts in one warm process: how the nightly refresh runs hundreds of districts.

A run launched by the daemon is a new Python process that imports Dagster, dlt, pandera and the
project before any work (4–5 s on the 2-core machine, about what a 2,000-student district's
whole sync costs). So the nightly schedule asks for one `nightly_batch` run per
ROSTER_SYNC_BATCH_SIZE districts, and that run executes `district_sync` for each of its districts
inside its own process (`execute_in_process`, as the CLI does). Every district still gets its
own Dagster run, partition materializations, check results and tags (`roster/batch` names the
batch run); only the process start is shared. One district's failure never stops the others.
"""


import time
from dataclasses import dataclass, field

from dagster import Config, Failure, OpExecutionContext, job, op

from roster_pipeline.jobs import DISTRICT_SYNC_JOB, run_tags, sync_run_config
from roster_pipeline.resources import WarehouseResource
from roster_pipeline.roster_assets import SKIP_ANALYST_COPY_TAG

NIGHTLY_BATCH_JOB = "nightly_batch"
BATCH_OP = "sync_districts"
BATCH_TAG = "roster/batch"
# The full event log goes to the instance (and the UI); the terminal gets warnings and a summary.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class DistrictOutcome:
    district_id: str
    run_id: str
    success: bool
    seconds: float
    problems: list[str] = field(default_factory=list)  # failed checks and step errors, one sentence each

    def line(self) -> str:
        status = "ok" if self.success else "FAILED"
        return f"district {self.district_id}: {status} in {self.seconds:.1f}s (run {self.run_id})"


def root_cause(error) -> str:
    """The innermost message of a Dagster error chain: the sentence that says what went wrong."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[-1]


def sync_in_process(district_job, instance, district_id: str, *, incremental: bool, tags: dict[str, str]) -> DistrictOutcome:
    """One district's `district_sync` run in this process, recorded in `instance` like any run."""
    started = time.monotonic()
    result = district_job.execute_in_process(
        partition_key=district_id, instance=instance, raise_on_error=False, tags=tags,
        run_config={**QUIET_CONSOLE, **sync_run_config(incremental)},
    )
    outcome = DistrictOutcome(district_id, result.run_id, result.success, time.monotonic() - started)
    if not result.success:
        for event in result.all_events:
            data = event.event_specific_data
            if event.event_type_value == "ASSET_CHECK_EVALUATION" and not data.passed:
                outcome.problems.append(f"check {data.asset_key.to_user_string()}:{data.check_name} failed: "
                                        f"{data.description or 'see its metadata in the UI'}")
            error = getattr(data, "error", None) if event.is_step_failure else None
            if error is not None:
                outcome.problems.append(f"{event.step_key}: {root_cause(error)}")
    return outcome


class BatchConfig(Config):
    """The districts of one batch, and whether to apply events instead of refreshing fully."""

    districts: list[str]
    incremental: bool = False
    trigger: str = "schedule"


def batch_run_config(districts: list[str], incremental: bool = False, trigger: str = "schedule") -> dict:
    return {"ops": {BATCH_OP: {"config": {"districts": districts, "incremental": incremental, "trigger": trigger}}}}


@op(name=BATCH_OP, description="Runs district_sync for each district of the batch in this process, one run each.")
def sync_districts(context: OpExecutionContext, config: BatchConfig, warehouse: WarehouseResource) -> None:
    from roster_pipeline.definitions import build_definitions  # the definitions import this module

    # Built from the run's environment (0.2 s): the batch run's own job has no repository
    # attached when it is itself executed in process (tests, scripts).
    district_job = build_definitions().resolve_job_def(DISTRICT_SYNC_JOB)
    failed = []
    for district_id in config.districts:
        tags = {**run_tags(district_id, config.trigger), BATCH_TAG: context.run_id, SKIP_ANALYST_COPY_TAG: "true"}
        outcome = sync_in_process(district_job, context.instance, district_id, incremental=config.incremental, tags=tags)
        (context.log.info if outcome.success else context.log.error)(
            "; ".join([outcome.line(), *outcome.problems]))
        if not outcome.success:
            failed.append(district_id)
    wh = warehouse.warehouse()
    if wh.kind == "duckdb":  # one refresh of the analysts' file for the whole batch
        from roster_pipeline.analyst_copy import refresh_analyst_file

        refresh_analyst_file(wh)
    if failed:
        raise Failure(description=f"{len(failed)} of {len(config.districts)} districts failed: {', '.join(failed)} "
                                  "(each district's own run says why).")


def build_nightly_batch_job(warehouse_kind: str):
    @job(name=NIGHTLY_BATCH_JOB, tags={"roster/warehouse": warehouse_kind},
         description="A batch of districts synced one after another in one process (the nightly refresh).")
    def nightly_batch():
        sync_districts()

    return nightly_batch
