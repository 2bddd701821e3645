"""Benchmark (run by hand): a 1 % school day synced incrementally and in full, in one warm process.

    .venv/bin/python benchmarks/warm_incremental.py --students 100000 [--warehouse postgresql://...]

As a batch run syncs its districts: `sync()` called in this process (no process start), against
an in-process sandbox. Prints, per sync, the seconds in all, per Dagster step, the build's plan
(incremental or full, and why) and the publish's and history's seconds.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import httpx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--warehouse", help="ROSTER_WAREHOUSE (default: a new DuckDB file)")
    parser.add_argument("--profile", help="write a cProfile of the incremental syncs to this file")
    args = parser.parse_args()
    from dagster import AssetKey, DagsterInstance

    from roster_pipeline.sandbox.districts import SandboxData
    from roster_pipeline.sandbox.server import start_sandbox

    work = Path(tempfile.mkdtemp(prefix="roster-warm-"))
    server = start_sandbox(SandboxData(seed=5, districts=1, students=args.students), requests_per_minute=10**6)
    os.environ.update(server.env())
    os.environ["ROSTER_DATA_DIR"] = str(work / "data")
    if args.warehouse:
        os.environ["ROSTER_WAREHOUSE"] = args.warehouse
    os.chdir(work)
    from roster_pipeline.cli.sync import sync

    def timed(label: str, **options) -> None:
        import cProfile

        profiler = cProfile.Profile() if args.profile and options.get("incremental") else None
        started, out = time.monotonic(), io.StringIO()
        if profiler:
            profiler.enable()
        assert sync(out=out, **options) == 0, out.getvalue()
        seconds = time.monotonic() - started
        if profiler:
            profiler.disable()
            profiler.dump_stats(f"{args.profile}.{label.replace(' ', '_')}")
        with DagsterInstance.get() as instance:
            run = instance.get_runs(limit=1)[0]
            steps = {s.step_key: round(s.end_time - s.start_time, 2) for s in instance.get_run_step_stats(run.run_id)}
            plan = next((e.message for e in instance.all_logs(run.run_id) if e.message and " build" in e.message), "")
            published = instance.get_latest_materialization_event(AssetKey(["roster", "published"]))
            metadata = published.asset_materialization.metadata
        timings = {k: metadata[k].value for k in ("publish_seconds", "history_seconds") if k in metadata}
        print(f"{label}: {seconds:.2f} s; steps {steps}; {timings}\n  {plan}", flush=True)

    try:
        timed("first full sync")
        timed("full refresh (warm)")
        changes = httpx.post(f"{server.base_url}/sandbox/advance-day", json={"share": args.share}, timeout=600).json()
        print(f"school day: {changes['changes']}")
        timed("incremental", incremental=True)
        timed("full refresh of the same data")
        timed("incremental with no events", incremental=True)
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
