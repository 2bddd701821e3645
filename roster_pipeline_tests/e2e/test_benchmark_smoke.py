"""The benchmark script keeps working: one small run of every case it measures (no timing asserted)."""

import json
import subprocess
import sys
from pathlib import Path

from roster_pipeline_tests.fixtures.services import free_port

PROJECT = Path(__file__).resolve().parents[2]


def test_benchmark_runs_at_2000_students_and_a_few_districts_through_the_daemon(tmp_path):
    result = subprocess.run(
        [sys.executable, str(PROJECT / "benchmarks" / "full_sync.py"), "--sizes", "2000", "--many", "2", "--quiet", "2",
         "--incremental-at", "2000", "--many-students", "200", "--batch-size", "1", "--port", str(free_port()), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "results.json").read_text())
    (point,) = report["sizes"]
    assert point["students"] == 2000 and point["raw_rows"] > 10_000  # the baseline paged everything
    assert point["sync_seconds"] > point["baseline_seconds"] > 0 and point["peak_rss_gib"] > 0
    syncs = point["incremental"]["syncs"]  # the 1 % day: planned as it should be, both ways
    assert "incremental build" in syncs["incremental"]["plan"] and "full build" in syncs["full refresh of the same data"]["plan"]
    assert point["incremental"]["incremental_share"] > 0 and point["sandbox_mb_per_second"] > 0
    (many,) = report["many"]
    assert many["batch_runs"] == 2 and many["district_runs_succeeded"] == 2 and not many["failed_batches"]
    assert many["no_events_batch"]["districts"] == 2 and many["no_events_batch"]["per_district_seconds"] > 0
    assert (tmp_path / "full_sync.png").stat().st_size > 10_000
    assert "| 2,000 |" in result.stdout
