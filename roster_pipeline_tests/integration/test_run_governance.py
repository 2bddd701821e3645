"""Runs launched from the UI are governed like the others: one run per district, whoever launched it.

The UI is driven through Dagster's own GraphQL schema with the requests its buttons send (the
asset graph's Materialize on `__ASSET_JOB`, a `district_sync` launch from the Launchpad), on a real
instance made from the project's local instance config; the queue is the QueuedRunCoordinator
daemon's own dequeue iteration, and the runs it lets through really run against the sandbox.
A nightly batch's districts, run in its own process outside the queue, take part in the same
exclusion in both directions.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster_graphql.test.utils import execute_dagster_graphql

PROJECT = Path(__file__).resolve().parents[2]
LOCATION, REPOSITORY = "roster_pipeline", "__repository__"
FROM_UI = {"key": "dagster/from_ui", "value": "true"}  # the UI adds it to every launch (uiExecutionTags.tsx)
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

# The UI's own queries (ui-core: LaunchAssetExecutionButton.tsx, ConfigFetch.tsx, RunUtils.tsx).
ASSET_NODES = """
{ assetNodes { assetKey { path } jobNames
    assetChecksOrError { ... on AssetChecks { checks { name jobNames } } } } }
"""
ASSET_JOB_PARTITION = """
query ConfigPartitionForAssetJobQuery($repositoryName: String!, $repositoryLocationName: String!,
    $jobName: String!, $partitionName: String!, $assetKeys: [AssetKeyInput!]!) {
  pipelineOrError(params: {pipelineName: $jobName, repositoryName: $repositoryName,
                           repositoryLocationName: $repositoryLocationName}) {
    ... on Pipeline { partition(partitionName: $partitionName, selectedAssetKeys: $assetKeys) {
        runConfigOrError { ... on PartitionRunConfig { yaml } }
        tagsOrError { ... on PartitionTags { results { key value } } } } } } }
"""
JOB_PARTITION_SETS = """
query ($repositorySelector: RepositorySelector!, $pipelineName: String!) {
  partitionSetsOrError(repositorySelector: $repositorySelector, pipelineName: $pipelineName) {
    ... on PartitionSets { results { name } } } }
"""
JOB_PARTITION = """
query ConfigPartitionSelectionQuery($repositorySelector: RepositorySelector!, $partitionSetName: String!,
    $partitionName: String!) {
  partitionSetOrError(repositorySelector: $repositorySelector, partitionSetName: $partitionSetName) {
    ... on PartitionSet { partition(partitionName: $partitionName) {
        runConfigOrError { ... on PartitionRunConfig { yaml } }
        tagsOrError { ... on PartitionTags { results { key value } } } } } } }
"""
LAUNCH = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id pipelineName } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  } }
"""
RUN = """
query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { status tags { key value } } } }
"""


def gql(context, query: str, variables: dict | None = None) -> dict:
    result = execute_dagster_graphql(context.create_request_context(), query, variables)
    assert not result.errors, result.errors
    return result.data


def materialize_all(context, district_id: str) -> str:
    """What the asset graph's Materialize button sends for every asset of one district."""
    nodes = gql(context, ASSET_NODES)["assetNodes"]
    job = "__ASSET_JOB"  # getCommonJob: the first job every selected asset shares
    assert all(n["jobNames"][0] == job for n in nodes)
    asset_keys = [{"path": n["assetKey"]["path"]} for n in nodes]
    partition = gql(context, ASSET_JOB_PARTITION, {
        "repositoryName": REPOSITORY, "repositoryLocationName": LOCATION, "jobName": job,
        "partitionName": district_id, "assetKeys": asset_keys})["pipelineOrError"]["partition"]
    checks = [{"assetKey": n["assetKey"], "name": c["name"]} for n in nodes
              for c in (n["assetChecksOrError"] or {}).get("checks", []) if job in c["jobNames"]]
    return launch(context, {
        "mode": "default",
        "executionMetadata": {"tags": [*partition["tagsOrError"]["results"], FROM_UI]},
        "runConfigData": partition["runConfigOrError"]["yaml"],
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "pipelineName": job,
                     "assetSelection": asset_keys, "assetCheckSelection": checks},
    })


def launch_district_sync(context, district_id: str) -> str:
    """What the Launchpad sends for `district_sync` with the district picked as its partition."""
    repository = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    sets = gql(context, JOB_PARTITION_SETS, {"repositorySelector": repository, "pipelineName": "district_sync"})
    [partition_set] = [s["name"] for s in sets["partitionSetsOrError"]["results"]]
    partition = gql(context, JOB_PARTITION, {"repositorySelector": repository, "partitionSetName": partition_set,
                                             "partitionName": district_id})["partitionSetOrError"]["partition"]
    return launch(context, {
        "mode": "default",
        "executionMetadata": {"tags": [*partition["tagsOrError"]["results"], FROM_UI]},
        "runConfigData": partition["runConfigOrError"]["yaml"],
        "selector": {**repository, "pipelineName": "district_sync"},
    })


def launch(context, execution_params: dict) -> str:
    reply = gql(context, LAUNCH, {"executionParams": execution_params})["launchPipelineExecution"]
    assert reply["__typename"] == "LaunchRunSuccess", reply
    return reply["run"]["id"]


def ui_run(context, run_id: str) -> tuple[str, dict[str, str]]:
    """The run's status and tags as the UI shows them."""
    run = gql(context, RUN, {"runId": run_id})["runOrError"]
    return run["status"], {t["key"]: t["value"] for t in run["tags"]}


def dequeue(daemon, context) -> None:
    list(daemon.run_iteration(context))


def wait_until(condition, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def status(instance, run_id: str) -> DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def span(instance, run_id: str) -> tuple[float, float]:
    record = instance.get_run_record_by_id(run_id)
    return record.start_time, record.end_time


class Batch(threading.Thread):
    """A `district_batch` of one district, executed in process as the batch runs its districts."""

    def __init__(self, district_id: str, instance):
        super().__init__(daemon=True)
        self.district_id, self.success = district_id, None
        self.earlier = {r.run_id for r in self.children(instance)}

    def run(self) -> None:
        from roster_pipeline.definitions import build_definitions
        from roster_pipeline.defs.automation.batch import batch_run_config
        from roster_pipeline.defs.constants import DISTRICT_BATCH_JOB

        with DagsterInstance.get() as instance:
            self.success = build_definitions().resolve_job_def(DISTRICT_BATCH_JOB).execute_in_process(
                run_config=batch_run_config([self.district_id]), instance=instance, raise_on_error=False).success

    def children(self, instance):
        return [r for r in instance.get_runs(filters=RunsFilter(tags={"roster/district": self.district_id}))
                if "roster/batch" in r.tags]

    def child(self, instance):
        """This batch's `district_sync` run of the district, once it exists."""
        return next((r for r in self.children(instance) if r.run_id not in self.earlier), None)


@pytest.fixture
def local_instance(pipeline_env, monkeypatch):
    """The local instance as `roster-pipeline` sets it up (LOCAL_INSTANCE_YAML), in the test's data folder."""
    from roster_pipeline.cli.dagster_home import ensure_dagster_home

    monkeypatch.setenv("DAGSTER_HOME", str(ensure_dagster_home()))  # restored after the test
    with DagsterInstance.get() as instance:
        yield instance


@contextmanager
def stopping_launched_runs(instance):
    """A failed test leaves no run behind: queued runs are canceled, launched ones terminated."""
    try:
        yield
    finally:
        for run in instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.QUEUED])):
            instance.run_coordinator.cancel_run(run.run_id)
        for run in instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED])):
            if run.job_name != "district_batch" and "roster/batch" not in run.tags:  # in-process runs end with the test
                instance.run_launcher.terminate(run.run_id)


def test_ui_launches_and_batches_take_turns_on_a_district(local_instance, sandbox):
    instance = local_instance
    district = sandbox.data.specs[0].id
    instance.add_dynamic_partitions("district", [district])
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    with (WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(PROJECT / "workspace.yaml")])) as context,
          stopping_launched_runs(instance)):
        # 1. A nightly batch syncs the district in its own process; a Clever page answers slowly,
        #    so its run is still in progress while the UI launches two more runs of the district.
        sandbox.faults.configure({"status": "slow", "delay": 8, "count": 1})
        first_batch = Batch(district, instance)
        first_batch.start()
        wait_until(lambda: first_batch.child(instance) is not None, what="the batch's district run")
        held_by_batch = first_batch.child(instance).run_id
        job_run = launch_district_sync(context, district)
        asset_run = materialize_all(context, district)

        queued = {run_id: ui_run(context, run_id) for run_id in (job_run, asset_run)}  # as the UI shows them now
        # The queue holds both back while the batch's run holds the district (its warehouse steps
        # also fill the pool's two slots here: step 2 shows the district limit on its own).
        dequeue(daemon, context)
        assert status(instance, held_by_batch) == DagsterRunStatus.STARTED  # (still holding it after the dequeue)
        assert {status(instance, job_run), status(instance, asset_run)} == {DagsterRunStatus.QUEUED}
        first_batch.join(timeout=120)
        assert first_batch.success

        # 2. The district is free: the queue lets one UI run go; the other waits for it, though the
        #    pool and the DuckDB limit have room for both.
        dequeue(daemon, context)
        assert status(instance, job_run) != DagsterRunStatus.QUEUED
        assert status(instance, asset_run) == DagsterRunStatus.QUEUED
        # 3. A second batch reaching the district meanwhile waits for that run too (outside the queue).
        second_batch = Batch(district, instance)
        second_batch.start()
        while status(instance, job_run) not in FINISHED:
            dequeue(daemon, context)
            assert status(instance, asset_run) == DagsterRunStatus.QUEUED
            time.sleep(0.5)
        assert status(instance, job_run) == DagsterRunStatus.SUCCESS
        second_batch.join(timeout=120)  # (the queue would hold the Materialize run while it runs: step 1)
        assert second_batch.success
        second_child = second_batch.child(instance).run_id
        assert span(instance, second_child)[0] >= span(instance, job_run)[1]

        # 4. Last, the Materialize run.
        dequeue(daemon, context)
        wait_until(lambda: status(instance, asset_run) in FINISHED, what="the Materialize run")
        assert status(instance, asset_run) == DagsterRunStatus.SUCCESS
        assert span(instance, asset_run)[0] >= span(instance, second_child)[1]
        # The Materialize run materialized every asset of the district, published roster included.
        # Queued, both UI runs already carried the roster tags (so the limits applied to them).
        for run_id, (state, tags) in queued.items():
            assert state == "QUEUED"
            assert tags["roster/district"] == tags["dagster/partition"] == district
            assert tags["roster/trigger"] == "manual" and tags["roster/warehouse"] == "duckdb"
        materialized = instance.get_records_for_run(asset_run, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
        assert {"clever_raw/students", "roster/published", "reports/school_confirmation"} <= {
            r.asset_key.to_user_string() for r in materialized}


def test_instance_configs_limit_runs_by_district_the_same_way():
    from roster_pipeline.cli.dagster_home import LOCAL_INSTANCE_YAML

    local = yaml.safe_load(LOCAL_INSTANCE_YAML)
    production = yaml.safe_load((PROJECT / "deploy" / "dagster.yaml").read_text())
    helm = yaml.safe_load((PROJECT / "deploy" / "helm-values.yaml").read_text())
    per_district = {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    for config in (local, production):
        assert config["run_coordinator"] == {"module": "roster_pipeline.defs.automation.run_coordinator", "class": "RosterRunCoordinator"}
        limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
        assert limits == [per_district, {"key": "roster/warehouse", "value": "duckdb", "limit": 2}]
    helm_limits = helm["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert helm_limits == [per_district]
