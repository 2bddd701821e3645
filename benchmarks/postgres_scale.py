"""Benchmark (run by hand): Postgres against DuckDB at district scale, in one run.

    .venv/bin/python benchmarks/postgres_scale.py          # 100k + 1M students, 50 × 2,000 at 1/2/4 runs
    .venv/bin/python benchmarks/postgres_scale.py --sizes 5000 --refresh-size 5000 --many 4 --concurrency 1 2

Measures, each `roster-pipeline sync` as its own process (Dagster start included):
  - full sync of one N-student district into DuckDB and into a new Postgres database, same
    sandbox, with the sync process's peak RSS; the Postgres server logs every statement over
    `--slow-ms` for that database, and the heaviest are reported;
  - at every size: the publish's history cost (the `published` metadata's `history_seconds`) in
    the first full sync and in a full refresh after a 1 % school day, on both warehouses;
  - at --refresh-size: that school day also applied incrementally first (the incremental run's
    share of a full refresh), then --days school days in all on Postgres, each a 1 % day and a
    full refresh, with the table and index sizes and the history's rows after each;
  - --many equal districts refreshed by the nightly schedule through `dagster-daemon` on Postgres,
    with 1, 2 and 4 concurrent batch runs.
Results go to `postgres_results.json` and a Markdown summary in --out; copy them into RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from full_sync import BIN, PROJECT, Sandbox, machine, many_districts, pipeline_env, timed_process  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
SERVER_LOG = Path("/var/log/postgresql/postgresql-15-main.log")
SCHEMAS = ("clever_raw", "clever_raw_staging", "roster_build", "roster")
SHOWN = (*SCHEMAS, "roster_history")  # sizes() keeps the roster's history apart


def new_database(slow_ms: int) -> str:
    """A fresh database whose statements over `slow_ms` go to the server log."""
    name = f"roster_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(f"{POSTGRES}/postgres")
    admin.autocommit = True
    admin.cursor().execute(f"create database {name}")
    admin.cursor().execute(f"alter database {name} set log_min_duration_statement = {slow_ms}")
    # ...and their plans (auto_explain, shipped with Postgres): the heavy models' EXPLAIN at this size.
    admin.cursor().execute(f"alter database {name} set session_preload_libraries = 'auto_explain'")
    admin.cursor().execute(f"alter database {name} set auto_explain.log_min_duration = {slow_ms}")
    admin.close()
    return name


def drop_database(name: str) -> None:
    admin = psycopg2.connect(f"{POSTGRES}/postgres")
    admin.autocommit = True
    admin.cursor().execute(f"drop database if exists {name} with (force)")
    admin.close()


def sizes(database: str) -> dict[str, dict[str, int]]:
    """Bytes of tables (heap + TOAST) and of indexes, per schema; the roster's history (the
    `*_history` tables, roster_changes, publishes) apart from the current tables, as `roster_history`."""
    with psycopg2.connect(f"{POSTGRES}/{database}") as conn, conn.cursor() as cursor:
        cursor.execute("select case when n.nspname = 'roster' and (c.relname like '%%\\_history' "
                       "or c.relname in ('roster_changes', 'publishes')) then 'roster_history' else n.nspname end, "
                       "sum(pg_table_size(c.oid)), sum(pg_indexes_size(c.oid)) from pg_class c "
                       "join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'r' and n.nspname = any(%s) "
                       "group by 1", [list(SCHEMAS)])
        return {schema: {"tables": int(t), "indexes": int(i)} for schema, t, i in cursor.fetchall()}


def slow_statements(offset: int, database: str, top: int = 12) -> list[dict]:
    """The server log's statements of `database` since `offset`, slowest first, with their plans' join kinds."""
    text = SERVER_LOG.read_bytes()[offset:].decode("utf-8", "replace")
    found = []
    for match in re.finditer(rf"@{database} LOG:  duration: ([0-9.]+) ms  (?:statement|execute [^:]*): (.*?)(?=\n\S|\Z)",
                             text, flags=re.S):
        statement = " ".join(match[2].split())
        found.append({"ms": float(match[1]), "statement": statement[:220]})
    plans = {}
    for match in re.finditer(rf"@{database} LOG:  duration: [0-9.]+ ms  plan:\n(.*?)(?=\n\S|\Z)", text, flags=re.S):
        query = re.search(r"Query Text: (.*?)\n\s*(?:Insert|Delete|Update|Hash|Merge|Nested|Seq|Index|Sort|Aggregate|"
                          r"HashAggregate|GroupAggregate|Unique|Append|Gather|Limit|Result|SetOp|HashSetOp|Subquery|CTE)",
                          match[1], flags=re.S)
        nodes = sorted(set(re.findall(r"(Nested Loop|Hash Join|Merge Join|HashAggregate|GroupAggregate|HashSetOp|Sort)",
                                      match[1])))
        if query:
            plans[" ".join(query[1].split())[:220]] = nodes
    for statement in found:
        statement["plan_nodes"] = plans.get(statement["statement"], [])
    return sorted(found, key=lambda s: -s["ms"])[:top]


def publish_timings(data_dir: Path) -> dict[str, float]:
    """The last publish's seconds and the history's part of them (the `published` materialization's metadata)."""
    from dagster import AssetKey, DagsterInstance

    with DagsterInstance.from_config(str(data_dir / "dagster_home")) as instance:
        event = instance.get_latest_materialization_event(AssetKey(["roster", "published"]))
    metadata = event.asset_materialization.metadata
    return {name: metadata[name].value for name in ("publish_seconds", "history_seconds")}


def sync(data_dir: Path, sandbox: Sandbox, work: Path, *args: str, warehouse: str | None = None) -> dict:
    """One `roster-pipeline sync` process: seconds, peak RSS, and its publish's and history's seconds."""
    env = pipeline_env(data_dir, sandbox, **({"ROSTER_WAREHOUSE": warehouse} if warehouse else {}))
    seconds, peak, _ = timed_process([str(BIN / "roster-pipeline"), "sync", *args], env, work)
    timings = publish_timings(data_dir)
    return {"seconds": round(seconds, 1), "peak_rss_gib": round(peak, 2), **timings,
            "history_share": round(timings["history_seconds"] / seconds, 3)}


def history_rows(database: str) -> dict[str, int]:
    """Rows of the history tables (all versions) and of the change log."""
    with psycopg2.connect(f"{POSTGRES}/{database}") as conn, conn.cursor() as cursor:
        cursor.execute("select table_name from information_schema.tables where table_schema = 'roster' and "
                       "(table_name like '%%\\_history' or table_name = 'roster_changes')")
        rows = {}
        for (table,) in cursor.fetchall():
            cursor.execute(f"select count(*) from roster.{table}")
            rows[table] = cursor.fetchone()[0]
        cursor.execute("select * from roster.publishes")
        names = [c.name for c in cursor.description]
        changed = sum(v for row in cursor.fetchall() for k, v in zip(names, row)
                      if k.endswith(("_added", "_removed", "_changed")))
    return {"history_versions": sum(v for k, v in rows.items() if k != "roster_changes"),
            "change_log_rows": rows.get("roster_changes", 0), "records_changed_in_all": changed}


def full_syncs(students: int, port: int, work: Path, slow_ms: int, refresh: bool, days: int) -> dict:
    """DuckDB and Postgres full syncs of one district, then a 1 % school day as a full refresh of
    both (the history's cost on a first publish and on a day's differences); with `refresh`, the
    day is also applied incrementally, and Postgres goes through `days` school days in all with
    its table sizes and history rows after each."""
    sandbox = Sandbox(port, 1, students)
    database = new_database(slow_ms)
    url = f"{POSTGRES}/{database}"
    point: dict = {"students": students}
    try:
        duck_dir, pg_dir = work / f"duckdb_{students}", work / f"postgres_{students}"
        duck = sync(duck_dir, sandbox, work)
        point["duckdb_seconds"], point["duckdb_peak_rss_gib"] = duck["seconds"], duck["peak_rss_gib"]
        offset = SERVER_LOG.stat().st_size
        pg = sync(pg_dir, sandbox, work, warehouse=url)
        point["postgres_seconds"], point["postgres_peak_rss_gib"] = pg["seconds"], pg["peak_rss_gib"]
        point["postgres_slowest_statements"] = slow_statements(offset, database)
        point["ratio"] = round(point["postgres_seconds"] / point["duckdb_seconds"], 2)
        point["history_first_sync"] = {"duckdb": duck, "postgres": pg}
        with psycopg2.connect(url) as conn, conn.cursor() as cursor:
            cursor.execute("select count(*) from roster.students")
            point["students_published"] = cursor.fetchone()[0]
            cursor.execute("select count(*) from clever_raw.section_students")
            point["section_students"] = cursor.fetchone()[0]
        nights = [{"sizes": sizes(database), **history_rows(database)}]
        changes = httpx.post(f"{sandbox.base}/sandbox/advance-day", json={"share": 0.01}, timeout=600).json()["changes"]
        point["school_day_changes"] = changes
        point["history_day_refresh"] = {}
        for name, data_dir, warehouse in (("duckdb", duck_dir, None), ("postgres", pg_dir, url)):
            if refresh:
                incremental = sync(data_dir, sandbox, work, "--incremental", warehouse=warehouse)["seconds"]
            full = sync(data_dir, sandbox, work, warehouse=warehouse)
            point["history_day_refresh"][name] = full
            if refresh:
                point[f"{name}_incremental_seconds"], point[f"{name}_refresh_seconds"] = incremental, full["seconds"]
                point[f"{name}_incremental_share"] = round(incremental / full["seconds"], 3)
        if refresh:
            nights.append({"sizes": sizes(database), **history_rows(database)})
            refreshes = []
            for _ in range(days - 2):
                httpx.post(f"{sandbox.base}/sandbox/advance-day", json={"share": 0.01}, timeout=600).raise_for_status()
                refreshes.append(sync(pg_dir, sandbox, work, warehouse=url)["seconds"])
                nights.append({"sizes": sizes(database), **history_rows(database)})
            point["postgres_nightly_refresh_seconds"] = refreshes
            point["postgres_nights"] = nights
    finally:
        sandbox.stop()
        drop_database(database)
    return point


def markdown(result: dict) -> str:
    lines = ["| students | DuckDB sync | Postgres sync | Postgres / DuckDB | peak RSS DuckDB | peak RSS Postgres |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for p in result["sizes"]:
        lines.append(f"| {p['students']:,} | {p['duckdb_seconds']:.1f} s | {p['postgres_seconds']:.1f} s | {p['ratio']:.2f}× | "
                     f"{p['duckdb_peak_rss_gib']:.2f} GiB | {p['postgres_peak_rss_gib']:.2f} GiB |")
    lines += ["", "History's cost (seconds of the publish spent on versions, change log and publish log):", "",
              "| students | sync | DuckDB: history / sync | Postgres: history / sync |", "| ---: | --- | ---: | ---: |"]
    for p in result["sizes"]:
        for label, key in (("first full sync", "history_first_sync"), ("full refresh after a 1 % day", "history_day_refresh")):
            d, g = p[key]["duckdb"], p[key]["postgres"]
            lines.append(f"| {p['students']:,} | {label} | {d['history_seconds']:.1f} / {d['seconds']:.1f} s = "
                         f"{d['history_share']:.1%} | {g['history_seconds']:.1f} / {g['seconds']:.1f} s = {g['history_share']:.1%} |")
    for p in result["sizes"]:
        if "postgres_incremental_share" in p:
            lines += ["", f"1 % school day at {p['students']:,} students ({p['school_day_changes']}):",
                      f"DuckDB incremental {p['duckdb_incremental_seconds']} s / full refresh {p['duckdb_refresh_seconds']} s "
                      f"= {p['duckdb_incremental_share']:.1%}; Postgres {p['postgres_incremental_seconds']} s / "
                      f"{p['postgres_refresh_seconds']} s = {p['postgres_incremental_share']:.1%}.", "",
                      "| day | " + " | ".join(f"{s} tables / indexes" for s in SHOWN)
                      + " | records added, removed or changed that day | history versions | change log rows |",
                      "| ---: |" + " ---: |" * (len(SHOWN) + 3)]
            before = 0
            for night, n in enumerate(p["postgres_nights"], start=1):
                cells = [f"{n['sizes'].get(s, {}).get('tables', 0) / 2**20:.1f} / {n['sizes'].get(s, {}).get('indexes', 0) / 2**20:.1f} MiB"
                         for s in SHOWN]
                lines.append(f"| {night} | " + " | ".join(cells) + f" | {n['records_changed_in_all'] - before:,} | "
                             f"{n['history_versions']:,} | {n['change_log_rows']:,} |")
                before = n["records_changed_in_all"]
        if p.get("postgres_slowest_statements"):
            lines += ["", f"Slowest Postgres statements at {p['students']:,} students:"]
            lines += [f"- {s['ms'] / 1000:.1f} s: `{s['statement'][:160]}` (plan: {', '.join(s['plan_nodes']) or 'n/a'})"
                      for s in p["postgres_slowest_statements"]]
    for m in result.get("many", []):
        lines.append(f"\nMany districts on Postgres, {m['concurrent_batches']} batch run(s) at once: {m['districts']} × "
                     f"{m['students_each']:,} students in {m['batch_runs']} batch runs, {m['seconds']:.0f} s = "
                     f"{m['seconds_per_district']:.2f} s per district; {m['district_runs_succeeded']} district runs "
                     f"succeeded; peak RSS {m['peak_rss_all_gib']:.2f} GiB in all.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--refresh-size", type=int, default=100_000, help="size that also gets the incremental and 5-night cases")
    parser.add_argument("--days", type=int, default=5, help="school days (1 % each) at --refresh-size, sized each night")
    parser.add_argument("--many", type=int, default=50)
    parser.add_argument("--many-students", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--slow-ms", type=int, default=500)
    parser.add_argument("--port", type=int, default=8941)
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="roster-pg-bench-"))
    result: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "sizes": [], "many": []}
    try:
        for students in args.sizes:
            point = full_syncs(students, args.port, work, args.slow_ms, students == args.refresh_size, args.days)
            print(json.dumps(point), flush=True)
            result["sizes"].append(point)
        for runs in (args.concurrency if args.many else []):
            database = new_database(60_000)
            try:
                # A batch run executes its districts' runs in its own process, and the queue counts
                # those in-progress child runs too: `runs` batches at once need twice the slots.
                point = many_districts(args.many, args.many_students, -(-args.many // runs), args.port, work,
                                       warehouse=f"{POSTGRES}/{database}", max_runs=2 * runs)
                point["concurrent_batches"] = runs
            finally:
                drop_database(database)
            print(json.dumps(point), flush=True)
            result["many"].append(point)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "postgres_results.json").write_text(json.dumps(result, indent=2))
    print(markdown(result))


if __name__ == "__main__":
    main()
