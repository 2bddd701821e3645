"""Benchmark (run by hand): a 1 % school day synced incrementally and in full, in one warm process.

    .venv/bin/python benchmarks/warm_incremental.py --students 100000 [--warehouse postgresql://...]
    .venv/bin/python benchmarks/warm_incremental.py --sandbox http://127.0.0.1:8931 --json out.json  # full_sync.py

As a batch run syncs its districts: `sync()` called in this process (no process start), against
an in-process sandbox or, with --sandbox, a running one (`roster-pipeline sandbox`, its client
`sandbox-client`/`sandbox-secret`). Prints, per sync, the seconds in all, per Dagster step and
outside the steps (run creation, Dagster's events), the build's plan (incremental or full, and
why) and the publish's and history's seconds; --json writes them too.
"""

from __future__ import annotations

import argparse
import io
import json
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
    parser.add_argument("--sandbox", help="base URL of a running sandbox with one district (default: start one here)")
    parser.add_argument("--dagster-home", help="DAGSTER_HOME (default: the local SQLite instance of the CLI)")
    parser.add_argument("--json", type=Path, help="write the measurements to this file")
    parser.add_argument("--profile", help="write a cProfile of the incremental syncs to this file")
    args = parser.parse_args()
    from dagster import AssetKey, DagsterInstance

    work = Path(tempfile.mkdtemp(prefix="roster-warm-"))
    server = None
    if args.sandbox:
        base_url = args.sandbox.rstrip("/")
        os.environ.update({"CLEVER_API_BASE_URL": f"{base_url}/v3.1", "CLEVER_OAUTH_TOKENS_URL": f"{base_url}/oauth/tokens",
                           "CLEVER_CLIENT_ID": "sandbox-client", "CLEVER_CLIENT_SECRET": "sandbox-secret"})
    else:
        from roster_pipeline.sandbox.districts import SandboxData
        from roster_pipeline.sandbox.server import start_sandbox

        server = start_sandbox(SandboxData(seed=5, districts=1, students=args.students), requests_per_minute=10**6)
        os.environ.update(server.env())
        base_url = server.base_url
    for key in [k for k in os.environ if k.startswith(("ROSTER_", "DAGSTER_"))]:
        del os.environ[key]
    os.environ["ROSTER_DATA_DIR"] = str(work / "data")
    if args.warehouse:
        os.environ["ROSTER_WAREHOUSE"] = args.warehouse
    if args.dagster_home:
        os.environ["DAGSTER_HOME"] = args.dagster_home
    os.chdir(work)
    from roster_pipeline.cli.sync import sync

    measured: dict[str, dict] = {}

    def timed(label: str, **options) -> None:
        import cProfile

        profiler = cProfile.Profile() if args.profile else None
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
            logs = instance.all_logs(run.run_id)
            plan = next((e.message for e in logs if e.message and " build" in e.message), "")
            models = {e.dagster_event.asset_key.path[-1]: e.dagster_event.event_specific_data.materialization.metadata
                      for e in logs if e.dagster_event and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
                      and e.dagster_event.asset_key.path[0] == "roster"}
            published = instance.get_latest_materialization_event(AssetKey(["roster", "published"]))
            metadata = published.asset_materialization.metadata
        timings = {k: metadata[k].value for k in ("publish_seconds", "history_seconds") if k in metadata}
        sql_seconds = round(sum(m["seconds"].value for m in models.values() if "seconds" in m), 2)
        measured[label] = {"seconds": round(seconds, 2), "steps": steps,
                           "outside_steps": round(seconds - sum(steps.values()), 2), "sql_models_seconds": sql_seconds,
                           **timings, "plan": plan}
        print(f"{label}: {seconds:.2f} s; steps {steps}; SQL models {sql_seconds} s; {timings}\n  {plan}", flush=True)

    try:
        timed("first full sync")
        timed("full refresh (warm)")
        changes = httpx.post(f"{base_url}/sandbox/advance-day", json={"share": args.share}, timeout=600).json()
        print(f"school day: {changes['changes']}")
        timed("incremental", incremental=True)
        timed("full refresh of the same data")
        timed("incremental with no events", incremental=True)
    finally:
        if server is not None:
            server.shutdown()
    share = measured["incremental"]["seconds"] / measured["full refresh of the same data"]["seconds"]
    print(f"incremental / full refresh of the same data: {share:.1%}")
    if args.json:
        args.json.write_text(json.dumps({"students": args.students, "share_of_a_day": args.share,
                                         "school_day": changes["changes"], "incremental_share": round(share, 4),
                                         "syncs": measured}, indent=2))


if __name__ == "__main__":
    main()
