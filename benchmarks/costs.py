"""Benchmark (run by hand): issue 30's cost table, every row measured in one run.

    .venv/bin/python benchmarks/costs.py                                           # 1k, 100k, 1M
    .venv/bin/python benchmarks/costs.py --students-large 5000 --no-million --out /tmp/costs   # a quick check

Every sandbox is `roster-pipeline sandbox --preserialize` in its own process (`full_sync.Sandbox`),
and every CLI sync is its own process timed with its peak RSS (`full_sync.timed_process`). Rows:

- process start to the first Clever request: `roster-pipeline sync --district X` of a 1,000-student
  district, from just before the process is started to the first request the sandbox logged
  after that (ROSTER_SANDBOX_REQUEST_LOG: the sandbox appends `<epoch seconds> <path>` per request);
- the same process end to end (the 1,000-student district, first sync into a new data folder);
- at --students-large (100,000): a CLI full sync, a 1 % school day (`/sandbox/advance-day`), CLI
  `sync --incremental` of it, then a CLI full sync of the same data; the incremental's share;
- at the same size and sandbox, `warm_incremental.py` (one warm process, as a batch run): the 1 %
  day's incremental share of a full refresh, and the sync of a district with no events;
- with --million (the default): 1,000,000 students, the raw baseline and a CLI full sync in the same
  run (`full_sync.one_district`): their ratio and the sync's peak RSS.

Prints the table (Markdown) and writes `costs.json` to --out; copy the numbers into RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from full_sync import BIN, PROJECT, Sandbox, machine, one_district, pipeline_env, timed_process, warm_incremental

REQUEST_LOG = "ROSTER_SANDBOX_REQUEST_LOG"
SMALL = 1000
MILLION = 1_000_000
DAY_SHARE = 0.01


def logged_sandbox(port: int, students: int, log: Path) -> Sandbox:
    """A one-district sandbox that logs each request's arrival in `log` (its process inherits this environment)."""
    os.environ[REQUEST_LOG] = str(log)
    try:
        return Sandbox(port, 1, students)
    finally:
        del os.environ[REQUEST_LOG]


def first_request_after(log: Path, since: float) -> float:
    """Epoch seconds of the first request the sandbox logged at or after `since`."""
    times = [float(line.split(" ", 1)[0]) for line in log.read_text().splitlines() if line]
    return min(t for t in times if t >= since)


def cli_sync(sandbox: Sandbox, log: Path, data_dir: Path, work: Path, district: str, incremental: bool = False) -> dict:
    """`roster-pipeline sync --district X [--incremental]` as its own process: seconds, peak RSS, the
    seconds from its start to its first request, and the kind of sync its district's line reports."""
    args = [str(BIN / "roster-pipeline"), "sync", "--district", district] + (["--incremental"] if incremental else [])
    started = time.time()  # timed_process starts the process next (it opens its output file first)
    seconds, peak_gib, output = timed_process(args, pipeline_env(data_dir, sandbox), work)
    found = re.search(r"^district .*: ok in ([0-9.]+)s, (.*) \(run [^)]*\)$", output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no district line in the output of {' '.join(args)}:\n{output[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_gib": round(peak_gib, 2),
            "first_request_seconds": round(first_request_after(log, started) - started, 2),
            "run_seconds": float(found.group(1)), "kind": found.group(2)}


def small_district(port: int, work: Path) -> dict:
    """A 1,000-student district's first sync, CLI process end to end, and its start to first request."""
    log = work / "requests_small.log"
    sandbox = logged_sandbox(port, SMALL, log)
    try:
        (district,) = sandbox.tokens()
        return {"students": SMALL, "sync": cli_sync(sandbox, log, work / "sync_small", work, district)}
    finally:
        sandbox.stop()


def large_district(students: int, port: int, work: Path) -> dict:
    """At `students`: a 1 % day by CLI processes (incremental, then full of the same data), then in one warm process."""
    log = work / "requests_large.log"
    sandbox = logged_sandbox(port, students, log)
    data_dir = work / "sync_large"
    try:
        (district,) = sandbox.tokens()
        first = cli_sync(sandbox, log, data_dir, work, district)
        day = httpx.post(f"{sandbox.base}/sandbox/advance-day", json={"share": DAY_SHARE}, timeout=600).json()
        incremental = cli_sync(sandbox, log, data_dir, work, district, incremental=True)
        if not incremental["kind"].startswith("incremental"):
            raise RuntimeError(f"the 1 % day was not synced incrementally: {incremental['kind']}")
        full = cli_sync(sandbox, log, data_dir, work, district)
        warm = warm_incremental(sandbox, students, work)
    finally:
        sandbox.stop()
    return {"students": students, "first_full_sync": first, "school_day": day["changes"], "incremental": incremental,
            "full_of_the_same_data": full, "incremental_share": round(incremental["seconds"] / full["seconds"], 4),
            "warm": warm}


def commit() -> str:
    """The commit measured, and whether the tree had changes beside it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True,
                          check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT, capture_output=True,
                           text=True, check=True).stdout.strip()
    return f"{head} (with uncommitted changes)" if dirty else head


def rows(result: dict) -> list[dict]:
    """The table's rows: what, measured, target, and whether it is met (None: no target)."""
    small, large, million = result["small"], result["large"], result.get("million")
    n = f"{large['students']:,}"
    cli_inc, cli_full = large["incremental"], large["full_of_the_same_data"]
    warm = large["warm"]
    warm_inc = warm["syncs"]["incremental"]["seconds"]
    warm_full = warm["syncs"]["full refresh of the same data"]["seconds"]
    quiet = warm["syncs"]["incremental with no events"]["seconds"]
    table = [
        {"what": f"process start to the first Clever request, CLI `sync --district` ({SMALL:,} students)",
         "measured": f"**{small['sync']['first_request_seconds']:.2f} s**", "target": "≤ 2 s", "met": small["sync"]["first_request_seconds"] <= 2.0},
        {"what": f"1 % day at {n} students, CLI `sync --incremental` vs CLI full sync of the same data",
         "measured": f"{cli_inc['seconds']:.1f} s / {cli_full['seconds']:.1f} s = **{large['incremental_share'] * 100:.1f} %**",
         "target": "≤ 35 %", "met": large["incremental_share"] <= 0.35},
        {"what": f"1 % day at {n} students, one warm process: incremental vs full refresh",
         "measured": f"{warm_inc:.1f} s / {warm_full:.1f} s = **{warm['incremental_share'] * 100:.1f} %**",
         "target": "≤ 15 %", "met": warm["incremental_share"] <= 0.15},
        {"what": f"quiet district (no events) at {n} students, one warm process",
         "measured": f"**{quiet:.2f} s**", "target": "≤ 1 s", "met": quiet <= 1.0},
        {"what": f"{SMALL:,}-student district end to end, CLI process",
         "measured": f"**{small['sync']['seconds']:.1f} s**", "target": "≤ 4 s", "met": small["sync"]["seconds"] <= 4.0},
    ]
    if million:
        table += [
            {"what": f"{million['students']:,}-student CLI full sync vs raw baseline, same run",
             "measured": f"{million['sync_seconds']:.1f} s / {million['baseline_seconds']:.1f} s = **{million['ratio']:.2f}×**",
             "target": "≤ 1.3×", "met": million["ratio"] <= 1.3},
            {"what": f"{million['students']:,}-student peak RSS (CLI sync)",
             "measured": f"**{million['peak_rss_gib']:.2f} GiB**", "target": "≤ 2 GiB", "met": million["peak_rss_gib"] <= 2.0},
        ]
    return table


def markdown(result: dict) -> str:
    lines = [f"Measured {result['date']} at {result['commit']}; {result['machine']}.", "",
             "| what | measured | target | |", "| --- | --- | --- | --- |"]
    for row in result["rows"]:
        met = "" if row["met"] is None else ("met" if row["met"] else "not met")
        lines.append(f"| {row['what']} | {row['measured']} | {row['target'] or '—'} | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students-large", type=int, default=100_000,
                        help="the district size of the 1 %% day and quiet-district rows (default 100,000)")
    parser.add_argument("--million", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the 1,000,000-student rows (--no-million: skip them, a quick run)")
    parser.add_argument("--million-students", type=int, default=MILLION, help="their size (smaller: check the script)")
    parser.add_argument("--port", type=int, default=8932)
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks", help="folder of costs.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="roster-costs-"))
    result: dict = {"date": time.strftime("%Y-%m-%d"), "commit": commit(), "machine": machine()}
    try:
        result["small"] = small_district(args.port, work)
        print(json.dumps(result["small"]), flush=True)
        result["large"] = large_district(args.students_large, args.port, work)
        print(json.dumps(result["large"]), flush=True)
        if args.million:
            result["million"] = one_district(args.million_students, args.port, work)
            print(json.dumps(result["million"]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["rows"] = rows(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "costs.json").write_text(json.dumps(result, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
