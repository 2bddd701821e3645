"""Many districts in one warm process: how the nightly refresh (and the events sensor) runs hundreds of districts.

A run launched by the daemon is a new Python process that imports Dagster, dlt, pandera and the
project before any work (4–5 s on the 2-core machine, about what a 2,000-student district's
whole sync costs, and many times an incremental run's). So the nightly schedule and the events
sensor ask for one `district_batch` run per ROSTER_SYNC_BATCH_SIZE districts, and that run executes `district_sync` for each of its districts
inside its own process (`execute_in_process`, as the CLI does). Every district still gets its
own Dagster run, partition materializations, check results and tags (`roster/batch` names the
batch run); only the process start is shared. One district's failure never stops the others.

A run executed in process never passes the instance's queue, so the one-run-per-district limit
cannot hold it back: `sync_in_process` (the batch's and the CLI's) holds the district's claim
(`Warehouse.district_claim`, taken atomically) for the whole run, and within it waits until no
queued run of that district is in progress. The other way round the queue does the work:
the in-process run carries `dagster/partition` while it is in progress, so the daemon keeps a
queued run of the same district (a sensor's, a UI launch) waiting until it ends.

A run executed in process also records no code-location origin, which is what the UI lists a
job's runs by and what run-status sensors match: each one is tagged with its code location's
repository label (the batch run's own, or this project's location for the CLI), so the job's page
lists it beside the daemon's runs, and the alerts sensor watches every run of the instance.

A process killed outright (SIGKILL, the OOM killer, a lost node) cannot mark its run failed: the
run stays STARTED in the instance and would hold its district for good. So each in-process run
is tagged with the process executing it (`roster/process`), and a run whose process is gone from
this machine is marked failed, and its pool slots freed, instead of being waited for (see
`release_dead_runs`).
"""


import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dagster import (
    Config,
    DagsterRunStatus,
    Failure,
    JobDefinition,
    OpExecutionContext,
    RunRequest,
    RunsFilter,
    job,
    op,
)
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG  # the UI's "runs of this job" filter (no public name)

from roster_pipeline.defs.automation.jobs import run_tags, sync_kind, sync_run_config
from roster_pipeline.defs.constants import (
    BATCH_OP,
    BATCH_SIZE_TAG,
    BATCH_TAG,
    DISTRICT_BATCH_JOB,
    DISTRICT_NAME_TAG,
    PARTITION_TAG,
    SKIP_ANALYST_COPY_TAG,
    TRIGGER_TAG,
    WAREHOUSE_TAG,
)
from roster_pipeline.defs.resources import WarehouseResource
from roster_pipeline.warehouse.connection import Warehouse

# The full event log goes to the instance (and the UI); the terminal gets warnings and a summary.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# The statuses the run queue counts as holding a district (Dagster's ACTIVE_RUN_STATUSES).
IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
# A district's run takes minutes; one still "in progress" after an hour has most likely died
# without a word (a killed process): the district is skipped, never run beside it.
DISTRICT_WAIT_SECONDS = 3600
# The process executing an in-process run: "host:boot id:pid:start ticks" (see `this_process`).
PROCESS_TAG = "roster/process"
# The repository label of this project's code location (workspace.yaml and [tool.dg] name it
# roster_pipeline; a Definitions object's repository is `__repository__`).
LOCAL_REPOSITORY_LABEL = "__repository__@roster_pipeline"
logger = logging.getLogger(__name__)


def _start_ticks(pid: int) -> str | None:
    """When the process started (clock ticks since boot, from /proc); None if it is gone or a zombie,
    "-" where /proc is missing (then only the pid is checked)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if not Path("/proc/self/stat").exists():  # no /proc (macOS): is the pid alive at all?
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
            return "-"
        return None
    state, *rest = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3, starttime field 22
    return None if state in ("Z", "X") else rest[18]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


def this_process() -> str:
    """This process's identity, unambiguous on its machine: a reused pid has another start time."""
    return f"{socket.gethostname()}:{_boot_id()}:{os.getpid()}:{_start_ticks(os.getpid())}"


def process_gone(identity: str) -> bool:
    """Whether the process a `roster/process` tag names has ended: True when this machine has
    rebooted since it started; False when it is another machine's (we cannot tell, so the run is
    waited for as before)."""
    try:
        host, boot, pid, ticks = identity.rsplit(":", 3)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    if boot != _boot_id():
        return boot != "-"  # the machine restarted since: every process of that boot is gone
    now = _start_ticks(int(pid))
    return now is None or (ticks != "-" and now != ticks)


@dataclass
class DistrictOutcome:
    district_id: str
    run_id: str
    success: bool
    seconds: float
    problems: list[str] = field(default_factory=list)  # failed checks and step errors, one sentence each
    name: str | None = None  # the district's name, once a run has read it from Clever
    kind: str = ""  # the kind of sync and why ("incremental, 181 events", "full: no cursor"), once the raw load decided

    def line(self) -> str:
        status = "ok" if self.success else "FAILED"
        district = f"{self.name} ({self.district_id})" if self.name else self.district_id
        kind = f", {self.kind}" if self.kind else ""
        return f"district {district}: {status} in {self.seconds:.1f}s{kind} (run {self.run_id})"


def root_cause(error) -> str:
    """The innermost message of a Dagster error chain: the sentence that says what went wrong."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[-1]


def release_dead_runs(instance, district_id: str, log: Callable[[str], None] | None = None) -> list[str]:
    """Mark failed the district's in-progress runs whose executing process has died; their ids.

    A killed sync leaves its run STARTED forever (nothing is left to say otherwise), and that run
    would keep every later run of the district waiting (`wait_for_district`, the queue's
    one-run-per-district limit). Only runs tagged `roster/process` by `sync_in_process` are
    judged, and only from the machine that ran them; other runs are left to Dagster's run monitoring.
    """
    released = []
    for record in instance.get_run_records(RunsFilter(statuses=IN_PROGRESS, tags={PARTITION_TAG: district_id})):
        run = record.dagster_run
        identity = run.tags.get(PROCESS_TAG)
        if identity and process_gone(identity):
            message = (f"The process that ran this run (pid {identity.rsplit(':', 2)[-2]} on {identity.split(':')[0]}) "
                       "ended without finishing it (killed); marked failed so that the district can sync again.")
            instance.report_run_failed(run, message)
            # Its steps' pool slots (the warehouse pool) stay claimed too until freed: two killed
            # runs would block every later step of that pool. Dagster's daemon frees them for the
            # runs it monitors; nobody does for a run executed in a process that died.
            if instance.event_log_storage.supports_global_concurrency_limits:
                instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            (log or logger.warning)(f"District {district_id}: run {run.run_id} was left in progress by a killed "
                                    "process; marked failed.")
            released.append(run.run_id)
    return released


def run_holding_district(instance, district_id: str) -> str | None:
    """The id of a run of the district that is in progress, if any (whoever launched it)."""
    records = instance.get_run_records(RunsFilter(statuses=IN_PROGRESS, tags={PARTITION_TAG: district_id}), limit=1)
    return records[0].dagster_run.run_id if records else None


def wait_for_district(instance, district_id: str, *, timeout: float = DISTRICT_WAIT_SECONDS, poll: float = 2.0,
                      log: Callable[[str], None] | None = None) -> str | None:
    """Wait until no run of the district is in progress; None then, else the run still holding it."""
    deadline = time.monotonic() + timeout
    release_dead_runs(instance, district_id, log)
    holder = run_holding_district(instance, district_id)
    if holder is not None:
        (log or logger.warning)(f"District {district_id}: run {holder} of it is in progress; waiting for it to end "
                                f"(up to {timeout / 60:.0f} min).")
    while holder is not None and time.monotonic() < deadline:
        time.sleep(poll)
        release_dead_runs(instance, district_id, log)  # the holder may be killed while we wait
        holder = run_holding_district(instance, district_id)
    return holder


def sync_in_process(district_job, instance, warehouse: Warehouse, district_id: str, *, incremental: bool,
                    tags: dict[str, str], wait_seconds: float = DISTRICT_WAIT_SECONDS,
                    log: Callable[[str], None] | None = None,
                    repository_label: str = LOCAL_REPOSITORY_LABEL) -> DistrictOutcome:
    """One district's `district_sync` run in this process, recorded in `instance` like any run,
    once no other run of the district is in progress.

    The district's claim (`Warehouse.district_claim`) is held for the whole run, so two in-process
    syncs (two terminals, a terminal and a batch) take turns however close together they start;
    within it, a run the daemon launched from the queue is waited for as before.
    """
    started = time.monotonic()
    with warehouse.district_claim(district_id, timeout=wait_seconds) as claimed:
        if not claimed:
            return DistrictOutcome(district_id, "not started", False, time.monotonic() - started, [
                f"another sync of the district held it for {wait_seconds / 60:.0f} min, so it was not synced beside it."])
        tags = {**tags, REPOSITORY_LABEL_TAG: repository_label}
        return _sync_claimed(district_job, instance, district_id, incremental, tags, started,
                             wait_seconds - (time.monotonic() - started), log)


def _sync_claimed(district_job, instance, district_id: str, incremental: bool, tags: dict[str, str], started: float,
                  wait_seconds: float, log: Callable[[str], None] | None) -> DistrictOutcome:
    holder = wait_for_district(instance, district_id, timeout=max(wait_seconds, 0.0), log=log)
    if holder is not None:
        return DistrictOutcome(district_id, "not started", False, time.monotonic() - started, [
            f"run {holder} of the district was still in progress after {wait_seconds / 60:.0f} min, so it was not "
            "synced beside it (if that run is dead, mark it failed or terminate it in the UI)."])
    result = district_job.execute_in_process(
        partition_key=district_id, instance=instance, raise_on_error=False, tags={**tags, PROCESS_TAG: this_process()},
        run_config={**QUIET_CONSOLE, **sync_run_config(incremental)},
    )
    run_tags_now = instance.get_run_by_id(result.run_id).tags  # the run adds its name and kind as it goes
    outcome = DistrictOutcome(district_id, result.run_id, result.success, time.monotonic() - started,
                              name=run_tags_now.get(DISTRICT_NAME_TAG, tags.get(DISTRICT_NAME_TAG)),
                              kind=sync_kind(run_tags_now))
    if not result.success:
        outcome.problems = run_problems(result.all_events)
    return outcome


def run_problems(events) -> list[str]:
    """A failed run's failed checks and step errors (Dagster events), one sentence each."""
    problems = []
    for event in events:
        data = event.event_specific_data
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and not data.passed:
            problems.append(f"check {data.asset_key.to_user_string()}:{data.check_name} failed: "
                            f"{data.description or 'see its metadata in the UI'}")
        error = getattr(data, "error", None) if event.is_step_failure else None
        if error is not None:
            problems.append(f"{event.step_key}: {root_cause(error)}")
    return problems


class BatchConfig(Config):
    """The districts of one batch, and whether to apply events instead of refreshing fully."""

    districts: list[str]
    incremental: bool = False
    trigger: str = "schedule"


def batch_run_config(districts: list[str], incremental: bool = False, trigger: str = "schedule") -> dict:
    return {"ops": {BATCH_OP: {"config": {"districts": districts, "incremental": incremental, "trigger": trigger}}}}


def batch_run_requests(districts: list[str], batch_size: int, run_key: Callable[[list[str]], str], *,
                       trigger: str, incremental: bool = False) -> list[RunRequest]:
    """`district_batch` runs of `batch_size` districts each (the schedule's and the events sensor's)."""
    batches = [districts[start:start + batch_size] for start in range(0, len(districts), batch_size)]
    return [RunRequest(run_key=run_key(batch), job_name=DISTRICT_BATCH_JOB,
                       run_config=batch_run_config(batch, incremental, trigger),
                       tags={TRIGGER_TAG: trigger, BATCH_SIZE_TAG: str(len(batch))}) for batch in batches]


def build_district_batch_job(warehouse_kind: str, district_job: Callable[[], JobDefinition]):
    """The batch job; its op runs the job `district_job` returns: `district_sync` as the code location
    that holds the batch already resolved it (a look-up, never a rebuild), passed in so that this
    module never imports the definitions that import it."""

    @op(name=BATCH_OP, description="Runs district_sync for each district of the batch in this process, one run each.")
    def sync_districts(context: OpExecutionContext, config: BatchConfig, warehouse: WarehouseResource) -> None:
        sync_job = district_job()
        origin = context.dagster_run.remote_job_origin
        label = origin.repository_origin.get_label() if origin else LOCAL_REPOSITORY_LABEL
        wh = warehouse.warehouse()
        failed = []
        for district_id in config.districts:
            tags = {**run_tags(district_id, config.trigger), BATCH_TAG: context.run_id, SKIP_ANALYST_COPY_TAG: "true",
                    # The DuckDB limit counts processes, and this batch run already holds one: a child
                    # tagged `duckdb` as well would take the second and keep every other run waiting.
                    WAREHOUSE_TAG: f"{wh.kind} (in batch)"}
            outcome = sync_in_process(sync_job, context.instance, wh, district_id, incremental=config.incremental,
                                      tags=tags, log=context.log.info, repository_label=label)
            (context.log.info if outcome.success else context.log.error)(
                "; ".join([outcome.line(), *outcome.problems]))
            if not outcome.success:
                failed.append(district_id)
        if wh.kind == "duckdb":  # one refresh of the analysts' file for the whole batch
            from roster_pipeline.modeling.project import sql_project
            from roster_pipeline.warehouse.analyst_copy import refresh_analyst_file

            refresh_analyst_file(wh, sql_project().access_classes)
        if failed:
            raise Failure(description=f"{len(failed)} of {len(config.districts)} districts failed: {', '.join(failed)} "
                                      "(each district's own run says why).")

    @job(name=DISTRICT_BATCH_JOB, tags={WAREHOUSE_TAG: warehouse_kind},
         description="A batch of districts synced one after another in one process: the nightly full refresh, "
                     "or the districts with new Clever events (incremental).")
    def district_batch():
        sync_districts()

    return district_batch
