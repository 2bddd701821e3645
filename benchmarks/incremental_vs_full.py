"""Benchmark (run by hand): incremental (events) sync against a full refresh, side by side.

    .venv/bin/python benchmarks/incremental_vs_full.py --students 100000

Starts the sandbox in its own process, runs a full sync, applies one simulated school day
(about 1% of records changed), then times `roster-pipeline sync --incremental` and a full
`roster-pipeline sync` of the same data, each as its own process (Dagster start included),
and checks that both give the same `roster` tables row for row.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx

ROSTER_TABLES = ["schools", "students", "teachers", "sections", "enrollments", "demographics", "admins",
                 "rejected_records", "school_roster_summary"]
BIN = Path(sys.executable).parent


def run(env: dict, *args: str) -> float:
    started = time.monotonic()
    result = subprocess.run([str(BIN / "roster-pipeline"), *args], env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"roster-pipeline {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def fingerprint(warehouse: Path) -> dict[str, tuple[int, str]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        result = {}
        for table in ROSTER_TABLES:
            rows = sorted(map(repr, con.execute(f"select * from roster.{table}").fetchall()))
            result[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16])
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--share", type=float, default=0.01)
    parser.add_argument("--port", type=int, default=8877)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="roster-bench-"))
    sandbox = subprocess.Popen(
        [str(BIN / "roster-pipeline"), "sandbox", "--port", str(args.port), "--districts", "1",
         "--students", str(args.students)], stdout=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{args.port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/v3.1/districts")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        env = {**os.environ, "ROSTER_DATA_DIR": str(work / "data"), "CLEVER_API_BASE_URL": f"{base}/v3.1",
               "CLEVER_OAUTH_TOKENS_URL": f"{base}/oauth/tokens", "CLEVER_CLIENT_ID": "sandbox-client",
               "CLEVER_CLIENT_SECRET": "sandbox-secret"}
        env.pop("DAGSTER_HOME", None)
        env.pop("CLEVER_DISTRICT_TOKENS", None)
        first = run(env, "sync")
        changes = httpx.post(f"{base}/sandbox/advance-day", json={"share": args.share}).json()["changes"]
        incremental = run(env, "sync", "--incremental")
        after_incremental = fingerprint(work / "data" / "warehouse.duckdb")
        full = run(env, "sync")
        after_full = fingerprint(work / "data" / "warehouse.duckdb")
    finally:
        sandbox.terminate()
    same = after_incremental == after_full
    print(f"students: {args.students}; one simulated day: {changes}")
    print(f"first full sync:          {first:7.1f} s")
    print(f"incremental sync:         {incremental:7.1f} s")
    print(f"full refresh (same data): {full:7.1f} s")
    print(f"incremental / full:       {incremental / full:7.1%}")
    print(f"roster tables identical:  {same}")
    for table, (rows, digest) in after_full.items():
        print(f"  {table:<22} {rows:>9} rows  {digest}  {'=' if after_incremental[table] == (rows, digest) else 'DIFFERENT'}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
