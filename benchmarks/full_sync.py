"""Benchmark (run by hand): full sync against the raw baseline, by district size, and many districts.

    .venv/bin/python benchmarks/full_sync.py                       # 1k, 10k, 100k, 1M + 200 × 2,000
    .venv/bin/python benchmarks/full_sync.py --sizes 2000 --many 0 --out /tmp/bench   # the smoke test

For each size N it starts the sandbox (its own process) with one N-student district and, in
the same run, measures
  (a) the raw baseline (`raw_baseline.py`: page every collection with httpx at limit 10000,
      NDJSON, DuckDB `read_json`, unnest the section students), and
  (b) `roster-pipeline sync` end to end as its own process (Dagster start included), with the
      peak RSS of that process,
then reports both times, their ratio and rows per second. The many-districts case starts a
sandbox with M equal districts and lets the real nightly schedule refresh them: the Dagster
daemon ticks the schedule (cron set to the next minute), queues the batch runs and launches them; the
time is from the first run's creation to the last run's end. Results go to `results.json`, a
Markdown table and `full_sync.png` in --out; copy the numbers into RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot import plot_times  # noqa: E402
from raw_baseline import raw_baseline  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLIENT = {"CLEVER_CLIENT_ID": "sandbox-client", "CLEVER_CLIENT_SECRET": "sandbox-secret"}


class Sandbox:
    """The Clever sandbox in its own process (so its CPU is not the pipeline's measured process)."""

    def __init__(self, port: int, districts: int, students: int, equal_sizes: bool = False,
                 preserialize: bool = True) -> None:
        # Pages built ahead (--preserialize): the paging measures the client, not the sandbox building objects.
        args = [str(BIN / "roster-pipeline"), "sandbox", "--port", str(port), "--districts", str(districts),
                "--students", str(students), "--requests-per-minute", "1000000"] + (["--preserialize"] if preserialize else [])
        self.base = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(args + (["--equal-sizes"] if equal_sizes else []),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.base}/oauth/tokens", auth=("sandbox-client", "sandbox-secret"), timeout=5)
                return
            except httpx.HTTPError:
                time.sleep(0.5)
        raise RuntimeError("the sandbox did not start")

    def tokens(self) -> dict[str, str]:
        reply = httpx.get(f"{self.base}/oauth/tokens", params={"owner_type": "district"},
                          auth=("sandbox-client", "sandbox-secret"), timeout=60).json()
        return {item["owner"]["id"]: item["access_token"] for item in reply["data"]}

    def env(self) -> dict[str, str]:
        return {"CLEVER_API_BASE_URL": f"{self.base}/v3.1", "CLEVER_OAUTH_TOKENS_URL": f"{self.base}/oauth/tokens", **CLIENT}

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL: a process started from a background job may have SIGTERM ignored."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def pipeline_env(data_dir: Path, sandbox: Sandbox, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEVER_", "ROSTER_", "DAGSTER_"))}
    return {**env, **sandbox.env(), "ROSTER_DATA_DIR": str(data_dir), **extra}


def timed_process(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in GiB of the process, output); fails loudly if the process fails.

    Output goes to a file, not a pipe: helper processes Dagster starts for log capture inherit
    the descriptors and may outlive the sync, so a pipe's end might never come.
    """
    log = cwd / f"process_{time.monotonic_ns()}.log"
    started = time.monotonic()
    with open(log, "w") as output:
        process = subprocess.Popen(args, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)  # ru_maxrss of this very process (KiB on Linux)
    elapsed = time.monotonic() - started
    text = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{text}")
    return elapsed, usage.ru_maxrss / 1024 / 1024, text


def warm_incremental(sandbox: Sandbox, students: int, work: Path) -> dict:
    """A 1 % school day synced incrementally and in full in one warm process (`warm_incremental.py`)."""
    out = work / f"incremental_{students}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEVER_", "ROSTER_", "DAGSTER_"))}
    log = work / f"incremental_{students}.log"
    with open(log, "w") as output:
        code = subprocess.run([sys.executable, str(PROJECT / "benchmarks" / "warm_incremental.py"), "--students",
                               str(students), "--sandbox", sandbox.base, "--json", str(out)], env=env, cwd=work,
                              stdout=output, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise RuntimeError(f"warm_incremental.py failed:\n{log.read_text()[-5000:]}")
    return json.loads(out.read_text())


def one_district(students: int, port: int, work: Path, preserialize: bool = True, incremental: bool = False) -> dict:
    sandbox = Sandbox(port, 1, students, preserialize=preserialize)
    try:
        (district_id, token), = sandbox.tokens().items()
        baseline = raw_baseline(sandbox.base, token, work / f"baseline_{students}")
        data_dir = work / f"sync_{students}"
        seconds, peak_gib, output = timed_process([str(BIN / "roster-pipeline"), "sync"],
                                                  pipeline_env(data_dir, sandbox), work)
        warm = warm_incremental(sandbox, students, work) if incremental else None
    finally:
        sandbox.stop()
    rows = sum(baseline["rows"].values())
    shutil.rmtree(work / f"baseline_{students}", ignore_errors=True)
    return {
        "students": students, "sync_seconds": round(seconds, 2), "baseline_seconds": round(baseline["seconds"], 2),
        "ratio": round(seconds / baseline["seconds"], 2), "peak_rss_gib": round(peak_gib, 2),
        "raw_rows": rows, "sync_rows_per_second": round(rows / seconds), "baseline_rows_per_second": round(rows / baseline["seconds"]),
        "sandbox_pages_per_second": round(baseline["pages"] / baseline["page_seconds"], 1),
        "sandbox_mb_per_second": round(baseline["bytes"] / baseline["page_seconds"] / 1e6, 1),
        "section_students": baseline["rows"].get("section_students", 0),
        "sync_output": output.strip().splitlines()[-2:],
        **({"incremental": warm} if warm else {}),
    }


def quiet_batch(ids: list[str], env: dict[str, str], work: Path) -> dict:
    """Districts with no new events synced incrementally in one process, as a warm batch runs them."""
    seconds, peak_gib, output = timed_process(
        [str(BIN / "roster-pipeline"), "sync", "--incremental", *(a for d in ids for a in ("--district", d))], env, work)
    each = [float(m) for m in re.findall(r": ok in ([0-9.]+)s", output)]
    assert len(each) == len(ids), output[-3000:]
    return {"districts": len(ids), "process_seconds": round(seconds, 1), "per_district_seconds": round(sum(each) / len(each), 2),
            "slowest_district_seconds": max(each), "process_start_and_discovery_seconds": round(seconds - sum(each), 1)}


def many_districts(districts: int, students: int, batch_size: int, port: int, work: Path,
                   warehouse: str | None = None, max_runs: int | None = None, quiet: int = 0) -> dict:
    """Let the real nightly schedule refresh `districts` equal districts through the daemon.

    `warehouse` (a ROSTER_WAREHOUSE URL; default the DuckDB file) and `max_runs` (the instance's
    max_concurrent_runs; default the project's) let the Postgres benchmark vary concurrency.
    """
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    sandbox = Sandbox(port, districts, students, equal_sizes=True)
    data_dir = work / f"many_{max_runs or 'default'}"
    home = data_dir / "dagster_home"
    home.mkdir(parents=True)
    # The nightly cron moved to a minute that starts 45-105 s from now: after the daemon is up (it
    # does not run ticks from before it first saw the schedule), and only once (a schedule's run
    # keys dedupe within a tick only).
    tick = time.gmtime(time.time() + 105)
    env = pipeline_env(data_dir, sandbox, DAGSTER_HOME=str(home), ROSTER_SYNC_CRON=f"{tick.tm_min} {tick.tm_hour} * * *",
                       ROSTER_SYNC_TIMEZONE="UTC", ROSTER_SYNC_BATCH_SIZE=str(batch_size),
                       **({"ROSTER_WAREHOUSE": warehouse} if warehouse else {}))
    os.environ["DAGSTER_HOME"] = str(home)
    from roster_pipeline.cli.dagster_home import LOCAL_INSTANCE_YAML

    instance_yaml = LOCAL_INSTANCE_YAML
    if max_runs:
        instance_yaml = instance_yaml.replace("max_concurrent_runs: 4", f"max_concurrent_runs: {max_runs}")
        assert f"max_concurrent_runs: {max_runs}" in instance_yaml
    (home / "dagster.yaml").write_text(instance_yaml)
    ids = sorted(sandbox.tokens())
    daemon = None
    peak = {"process_gib": 0.0, "total_gib": 0.0}
    try:
        with DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("district", ids)  # what the discovery sensor does
            daemon_log = open(data_dir / "daemon.log", "w")
            daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(PROJECT / "workspace.yaml")],
                                      env=env, cwd=work, stdout=daemon_log, stderr=subprocess.STDOUT)
            tree = psutil.Process(daemon.pid)
            expected = -(-districts // batch_size)
            deadline = time.monotonic() + 3600
            while time.monotonic() < deadline:
                if daemon.poll() is not None:
                    raise RuntimeError(f"the Dagster daemon stopped:\n{(data_dir / 'daemon.log').read_text()[-3000:]}")
                rss = []
                for process in [tree, *tree.children(recursive=True)]:
                    try:
                        rss.append(process.memory_info().rss / 2**30)
                    except psutil.Error:
                        pass
                peak["process_gib"] = max(peak["process_gib"], max(rss, default=0))
                peak["total_gib"] = max(peak["total_gib"], sum(rss))
                runs = instance.get_runs(filters=RunsFilter(job_name="district_batch"))
                done = [r for r in runs if r.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)]
                if len(runs) >= expected and len(done) == len(runs):
                    break
                time.sleep(1)
            else:
                raise RuntimeError("the nightly batches did not finish within an hour")
            records = instance.get_run_records(filters=RunsFilter(job_name="district_batch"))
            failed = [r.dagster_run.run_id for r in records if r.dagster_run.status != DagsterRunStatus.SUCCESS]
            first_created = min(r.create_timestamp.timestamp() for r in records)
            last_end = max(r.end_time for r in records)
            first_start = min(r.start_time for r in records)
            district_runs = instance.get_runs(filters=RunsFilter(job_name="district_sync"))
            ok = sum(r.status == DagsterRunStatus.SUCCESS for r in district_runs)
            quiet_result = quiet_batch(ids[:quiet], env, work) if quiet else None
    finally:
        if daemon is not None:  # the daemon, its code server and any run worker still alive
            family = psutil.Process(daemon.pid).children(recursive=True)
            stop_process(daemon)
            for process in family:
                try:
                    process.terminate()
                except psutil.Error:
                    pass
            for process in psutil.wait_procs(family, timeout=15)[1]:  # still alive: SIGTERM ignored
                process.kill()
        sandbox.stop()
    seconds = last_end - first_created
    return {"districts": districts, "students_each": students, "batch_size": batch_size, "batch_runs": len(records),
            "max_concurrent_runs": max_runs,
            "failed_batches": failed, "district_runs_succeeded": ok, "seconds": round(seconds, 1),
            "seconds_per_district": round(seconds / districts, 2), "queue_to_first_start_seconds": round(first_start - first_created, 1),
            "peak_rss_process_gib": round(peak["process_gib"], 2), "peak_rss_all_gib": round(peak["total_gib"], 2),
            **({"no_events_batch": quiet_result} if quiet_result else {})}


def machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    import dagster
    import dlt
    import duckdb

    return (f"{os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.platform()}, Python {platform.python_version()}, "
            f"Dagster {dagster.__version__}, dlt {dlt.__version__}, DuckDB {duckdb.__version__}")


def markdown(result: dict) -> str:
    lines = ["| students | sync | raw baseline | sync / baseline | peak RSS (sync) | raw rows | sync rows/s | sandbox pages/s |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for p in result["sizes"]:
        lines.append(f"| {p['students']:,} | {p['sync_seconds']:.1f} s | {p['baseline_seconds']:.1f} s | {p['ratio']:.2f}× | "
                     f"{p['peak_rss_gib']:.2f} GiB | {p['raw_rows']:,} | {p['sync_rows_per_second']:,} | "
                     f"{p['sandbox_pages_per_second']} ({p['sandbox_mb_per_second']} MB/s) |")
    for p in result["sizes"]:
        if "incremental" in p:
            i, syncs = p["incremental"], p["incremental"]["syncs"]
            lines.append("")
            lines.append(f"A {i['share_of_a_day']:.0%} school day at {p['students']:,} students, one warm process: incremental "
                         f"{syncs['incremental']['seconds']:.1f} s vs full refresh of the same data "
                         f"{syncs['full refresh of the same data']['seconds']:.1f} s = {i['incremental_share']:.1%}; "
                         f"with no events {syncs['incremental with no events']['seconds']:.1f} s.")
    for m in result.get("many", []):
        lines.append("")
        lines.append(f"Many districts: {m['districts']} × {m['students_each']:,} students, nightly schedule in batches of "
                     f"{m['batch_size']} ({m['batch_runs']} runs): {m['seconds']:.0f} s from the first run's creation to "
                     f"the last run's end = {m['seconds_per_district']:.2f} s per district; {m['district_runs_succeeded']} "
                     f"district runs succeeded; peak RSS {m['peak_rss_process_gib']:.2f} GiB in one process, "
                     f"{m['peak_rss_all_gib']:.2f} GiB for the daemon and its runs together.")
        if "no_events_batch" in m:
            q = m["no_events_batch"]
            lines.append(f"Then {q['districts']} of them with no new events, synced incrementally in one process: "
                         f"{q['per_district_seconds']:.2f} s per district (slowest {q['slowest_district_seconds']:.1f} s), "
                         f"plus {q['process_start_and_discovery_seconds']:.1f} s of process start and discovery.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--many", type=int, default=500, help="districts in the many-districts case (0: skip)")
    parser.add_argument("--quiet", type=int, default=50,
                        help="of those, districts then synced incrementally with no events in one warm process")
    parser.add_argument("--incremental-at", type=int, default=100_000,
                        help="the size at which a 1 %% school day is synced incrementally and in full (0: none)")
    parser.add_argument("--no-preserialize", action="store_true", help="the sandbox builds each page per request")
    parser.add_argument("--many-students", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--port", type=int, default=8931)
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="roster-bench-"))
    result: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "sizes": [], "many": []}
    try:
        for students in args.sizes:
            point = one_district(students, args.port, work, not args.no_preserialize, students == args.incremental_at)
            print(json.dumps(point), flush=True)
            result["sizes"].append(point)
        if args.many:
            point = many_districts(args.many, args.many_students, args.batch_size, args.port, work, quiet=args.quiet)
            print(json.dumps(point), flush=True)
            result["many"].append(point)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    if result["sizes"]:
        plot_times(result["sizes"], args.out / "full_sync.png")
    print(markdown(result))


if __name__ == "__main__":
    main()
