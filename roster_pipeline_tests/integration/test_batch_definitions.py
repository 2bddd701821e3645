"""A batch runs the district job of the definitions it belongs to; it never builds them again.

Building the definitions reads the environment (a bad setting stops loading there); the batch
op used to rebuild them for its district job. Here a setting only loading reads is made bad after
the definitions are built: a rebuild inside the batch would fail on it.
"""

from __future__ import annotations

from dagster import DagsterInstance, RunsFilter


def test_a_batch_runs_its_definitions_own_district_job(pipeline_env, sandbox, monkeypatch):
    from roster_pipeline.definitions import build_definitions
    from roster_pipeline.defs.automation.batch import batch_run_config
    from roster_pipeline.defs.constants import BATCH_TAG, DISTRICT_BATCH_JOB

    monkeypatch.setenv("DAGSTER_HOME", str(pipeline_env.parent))
    district = sandbox.data.specs[0].id
    with DagsterInstance.get() as instance:  # open before resolving: Dagster binds definitions to it
        instance.add_dynamic_partitions("district", [district])
        batch = build_definitions().resolve_job_def(DISTRICT_BATCH_JOB)
        monkeypatch.setenv("ROSTER_SYNC_BATCH_SIZE", "none")  # read by loading the definitions, by nothing else
        result = batch.execute_in_process(run_config=batch_run_config([district]), instance=instance,
                                          raise_on_error=False)
        assert result.success
        (child,) = instance.get_runs(filters=RunsFilter(tags={BATCH_TAG: result.run_id}))
        assert child.job_name == "district_sync" and child.tags["roster/district"] == district
