"""One run per district, for real (issue 28, part 2): two `sync` commands started at the same moment take turns.

Checking "is a run of the district in progress?" and then starting one is a race: two processes
started together both saw none, both ran and both published, with overlapping runs. Here two
real `roster-pipeline sync --district X` processes start at the same instant, several times over,
on DuckDB and on Postgres: both succeed, and the district's runs in the instance never overlap.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from dagster import DagsterInstance, RunsFilter

from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS, warehouse_query

ROUNDS = 3


def start_sync(district_id: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "roster_pipeline.cli", "sync", "--district", district_id],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_two_syncs_of_a_district_started_together_take_turns(own_sandbox, warehouse_env, tmp_path, monkeypatch):
    server = own_sandbox(seed=11, students=300)
    district_id = server.data.specs[0].id
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # the command's own local instance, under the data folder
    for _ in range(ROUNDS):
        pair = [start_sync(district_id), start_sync(district_id)]  # the same instant, as far as a test can
        outputs = [p.communicate(timeout=300)[0] for p in pair]
        assert [p.returncode for p in pair] == [0, 0], outputs
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "data" / "dagster_home"))
    with DagsterInstance.get() as instance:
        records = instance.get_run_records(RunsFilter(tags={"dagster/partition": district_id}))
    spans = sorted((r.start_time, r.end_time) for r in records)
    assert len(spans) == 2 * ROUNDS and all(start and end for start, end in spans)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, spans  # each run ended before the next began
    assert warehouse_query("select count(*) from roster.districts where district_id = ?", [district_id]) == [(1,)]
