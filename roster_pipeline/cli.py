"""`roster-pipeline`: sync districts, serve the sandbox, or run the demo.

Every sync run goes through the Dagster instance at `DAGSTER_HOME` (a local one under the data
directory when unset), so runs from the command line show up in the UI like scheduled ones.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from roster_pipeline.clever.client import CleverAPIError
from roster_pipeline.settings import ConfigError, RosterError, data_dir, load_dotenv, validate_district_id

LOCAL_INSTANCE_YAML = """\
# Written by roster-pipeline for local use (SQLite storage under this folder).
# Production uses the project's top-level dagster.yaml (Postgres storage). roster-pipeline
# rewrites this file when its defaults change: for settings of your own, use another DAGSTER_HOME.
telemetry:
  enabled: false
run_coordinator:                  # Dagster's queued coordinator; it tags runs launched from the UI
  module: roster_pipeline.defs.automation.run_coordinator
  class: RosterRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: dagster/partition    # runs of one district never overlap, however they were launched
        value:
          applyLimitPerUniqueValue: true
        limit: 1
      - key: roster/warehouse     # DuckDB: a run per core; the runs take turns on the file
        value: duckdb
        limit: 2
  pools:
    default_limit: 2   # warehouse steps, one per core; processes take turns on the DuckDB file
"""


class ProgressDisplay(logging.Handler):
    """A long sync's paging progress on the terminal: one updating line per collection on a TTY, plain lines otherwise.

    The same lines go to the Dagster run log (the UI); this only mirrors them for the person at the CLI.
    """

    def __init__(self, out) -> None:
        super().__init__(logging.INFO)
        self.out = out
        self.tty = hasattr(out, "isatty") and out.isatty()

    @contextmanager
    def attached(self, logger_name: str):
        logger = logging.getLogger(logger_name)
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not self.tty:
            print(f"  {message}", file=self.out)
            return
        done = ": done," in message
        print(f"\r\x1b[2K  {'✓' if done else '…'} {message}", end="\n" if done else "", file=self.out, flush=True)


def ensure_dagster_home() -> Path:
    """Use `DAGSTER_HOME`, or set up a local instance folder under the data directory."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        return Path(home)
    path = data_dir() / "dagster_home"
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    # A file an older roster-pipeline wrote is brought up to date (its run limits and coordinator).
    if not config.exists() or (config.read_text().startswith(LOCAL_INSTANCE_YAML.splitlines()[0])
                               and config.read_text() != LOCAL_INSTANCE_YAML):
        config.write_text(LOCAL_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(path)
    return path


def sync(district_ids: list[str] | None = None, *, incremental: bool = False, trigger: str = "manual",
         accept_mass_change: bool = False, out=None) -> int:
    """Sync each district (all when none are named); 0 only if every run succeeds.

    Without `incremental` a full refresh; with it, Clever events since each district's cursor
    (falling back to a full refresh, with the reason logged, when events cannot be used).
    """
    out = out or sys.stdout
    ensure_dagster_home()
    from dagster import DagsterInstance

    from roster_pipeline.clever.client import discover_district_tokens
    from roster_pipeline.clever.source import PROGRESS_LOGGER
    from roster_pipeline.definitions import build_definitions
    from roster_pipeline.defs.automation.batch import sync_in_process
    from roster_pipeline.defs.automation.jobs import run_tags
    from roster_pipeline.defs.constants import (
        APPROVAL_TAG,
        DISTRICT_NAME_TAG,
        DISTRICT_PARTITIONS_NAME,
        DISTRICT_SYNC_JOB,
    )
    from roster_pipeline.publishing.publish import published_district_names
    from roster_pipeline.settings import CleverSettings
    from roster_pipeline.warehouse.connection import Warehouse

    defs = build_definitions()
    warehouse = Warehouse.from_env(data_dir() / "dlt")
    warehouse.check_ready()  # a locked file or a refused login stops us here
    known = sorted(discover_district_tokens(CleverSettings.from_env()))
    if district_ids:
        for district_id in district_ids:
            validate_district_id(district_id, "--district")
        missing = sorted(set(district_ids) - set(known))
        if missing:
            raise ConfigError(f"--district {', '.join(missing)} has no Clever token (not authorized or not listed).")
        targets = list(dict.fromkeys(district_ids))
    else:
        targets = known
    if not targets:
        print("No districts have authorized the application yet; nothing to sync.", file=out)
        return 0
    names = published_district_names(warehouse, targets)  # runs say the name from the start when we know it
    failures = 0
    # The instance is opened before the job is resolved and closed afterwards: Dagster binds the
    # definitions to the instance that is current when they are resolved.
    with ProgressDisplay(out).attached(PROGRESS_LOGGER), DagsterInstance.get() as instance:
        new = [d for d in targets if not instance.has_dynamic_partition(DISTRICT_PARTITIONS_NAME, d)]
        if new:
            instance.add_dynamic_partitions(DISTRICT_PARTITIONS_NAME, new)
        job = defs.resolve_job_def(DISTRICT_SYNC_JOB)
        for district_id in targets:
            outcome = sync_in_process(
                job, instance, district_id, incremental=incremental,
                tags={**run_tags(district_id, trigger), **({APPROVAL_TAG: "true"} if accept_mass_change else {}),
                      **({DISTRICT_NAME_TAG: names[district_id]} if district_id in names else {})})
            print(outcome.line(), file=out)
            for problem in outcome.problems:
                print(f"  {problem}", file=out)
            failures += not outcome.success
    print(f"{len(targets) - failures} of {len(targets)} districts synced.", file=out)
    return 1 if failures else 0


def forget(district_id: str, out=None) -> int:
    """Delete every row of a district (raw, build, published, dlt state) and its partition."""
    out = out or sys.stdout
    ensure_dagster_home()
    from dagster import DagsterInstance

    from roster_pipeline.defs.constants import DISTRICT_PARTITIONS_NAME
    from roster_pipeline.settings import warehouse_url
    from roster_pipeline.warehouse.connection import Warehouse

    validate_district_id(district_id, "--district")
    warehouse = Warehouse(warehouse_url(), data_dir() / "dlt")
    deleted = warehouse.forget_district(district_id)
    with DagsterInstance.get() as instance:
        if instance.has_dynamic_partition(DISTRICT_PARTITIONS_NAME, district_id):
            instance.delete_dynamic_partition(DISTRICT_PARTITIONS_NAME, district_id)
    for table, rows in sorted(deleted.items()):
        print(f"  {table}: {rows} rows deleted", file=out)
    print(f"District {district_id} forgotten: {sum(deleted.values())} rows deleted, partition removed.", file=out)
    return 0


def grants(out=None) -> int:
    """Create the Postgres reader roles and grant them the roster tables."""
    out = out or sys.stdout
    from roster_pipeline.settings import warehouse_url
    from roster_pipeline.warehouse.connection import Warehouse
    from roster_pipeline.warehouse.grants import setup_grants

    warehouse = Warehouse(warehouse_url(), data_dir() / "dlt")
    if warehouse.kind != "postgres":
        raise ConfigError("ROSTER_WAREHOUSE points at DuckDB; access roles need a Postgres warehouse.")
    for role, tables in setup_grants(warehouse).items():
        print(f"{role}: select on {', '.join(tables) or '(no roster tables yet)'}", file=out)
    return 0


def report(district_id: str, school_id: str | None = None, out=None) -> int:
    """Regenerate a district's school confirmation pages from the published roster."""
    out = out or sys.stdout
    from roster_pipeline.reports.school_reports import reports_dir, write_reports
    from roster_pipeline.settings import warehouse_url
    from roster_pipeline.warehouse.connection import Warehouse

    validate_district_id(district_id, "--district")
    if school_id is not None:
        validate_district_id(school_id, "--school")
    written = write_reports(Warehouse(warehouse_url(), data_dir() / "dlt"), district_id, reports_dir(), school_id)
    print(f"{written['schools']} school pages in {written['folder']}"
          + ("" if school_id else f"; open {written['index']}"), file=out)
    return 0


def dictionary(out=None) -> int:
    """Rewrite docs/data_dictionary.md from schema.yml, the rules profile and the reason codes."""
    from roster_pipeline.modeling.data_dictionary import write

    print(f"wrote {write()}", file=out or sys.stdout)
    return 0


def sandbox(args: argparse.Namespace) -> int:
    from roster_pipeline.sandbox.data import SandboxData
    from roster_pipeline.sandbox.server import SandboxServer

    server = SandboxServer(
        (args.host, args.port), SandboxData(seed=args.seed, districts=args.districts, students=args.students, equal_sizes=args.equal_sizes),
        client_id=args.client_id, client_secret=args.client_secret, requests_per_minute=args.requests_per_minute,
    )
    if args.fault_rate:
        server.faults.configure({"rate": args.fault_rate})
    if args.mutate_every:
        def mutate() -> None:
            while not stop.wait(args.mutate_every):
                changes = server.advance_day(server.data.specs, args.mutate_share)
                print(f"simulated day {server.day}: {changes}", flush=True)

        stop = threading.Event()
        threading.Thread(target=mutate, daemon=True).start()
    print(f"Clever sandbox on {server.base_url} with {args.districts} districts (seed {args.seed}).")
    print("Point the pipeline at it with:")
    for key, value in server.env().items():
        print(f"  export {key}={value}")
    print("Press Ctrl+C to stop.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def demo(args: argparse.Namespace) -> int:
    """Sandbox + full sync into the default DuckDB + a summary of what landed where."""
    from roster_pipeline.sandbox.data import SandboxData
    from roster_pipeline.sandbox.server import start_sandbox
    from roster_pipeline.settings import warehouse_url
    from roster_pipeline.warehouse.connection import Warehouse

    server = start_sandbox(SandboxData(seed=args.seed, districts=args.districts, students=args.students))
    os.environ.update(server.env())
    os.environ.pop("CLEVER_DISTRICT_TOKENS", None)
    home = ensure_dagster_home()
    print(f"Sandbox serving {args.districts} synthetic districts at {server.base_url}")
    code = sync()
    warehouse = Warehouse(warehouse_url(), data_dir() / "dlt")
    print(f"\nWarehouse: {warehouse.display}")
    print_summary(warehouse, [spec.id for spec in server.data.specs])
    server.shutdown()
    print("\nBrowse the asset graph and runs in the Dagster UI:")
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    print(f"  DAGSTER_HOME={home} {dagster} dev -w workspace.yaml")
    if warehouse.kind == "duckdb":
        from roster_pipeline.warehouse.analyst_copy import analyst_file

        print("Query the roster with SQL (analysts open this copy, never the pipeline's own file):")
        print(f"  {sys.executable} -c \"import duckdb; print(duckdb.connect('{analyst_file(warehouse)}', "
              "read_only=True).sql('select name, students, teachers, sections, excluded_students "
              "from roster.school_roster_summary'))\"")
    return code


def print_summary(warehouse, district_ids: list[str], out=None) -> None:
    """Per district: raw rows loaded, roster rows published, and why records were excluded."""
    out = out or sys.stdout
    from roster_pipeline.clever.source import raw_tables
    from roster_pipeline.publishing.publish import published_summary

    tables = raw_tables()
    print("Raw Clever rows (schema clever_raw):", file=out)
    print("  " + "district".ljust(26) + "".join(t[:12].rjust(13) for t in tables), file=out)
    for district_id in district_ids:
        counts = warehouse.raw_row_counts(district_id, tables)
        print("  " + district_id.ljust(26) + "".join(str(counts[t]).rjust(13) for t in tables), file=out)
    counts, reasons = published_summary(warehouse, district_ids)
    if not counts:
        return
    names = sorted({table for per in counts.values() for table in per})
    print("Published roster rows (schema roster):", file=out)
    print("  " + "district".ljust(26) + "".join(t[:12].rjust(13) for t in names), file=out)
    for district_id, per in counts.items():
        print("  " + district_id.ljust(26) + "".join(str(per.get(t, 0)).rjust(13) for t in names), file=out)
    print("Excluded or nulled records by reason (roster.rejected_records):", file=out)
    for (district_id, reason, action), n in sorted(reasons.items()):
        print(f"  {district_id}  {reason:<30} {action:<13} {n:>7}", file=out)


def main(argv: list[str] | None = None) -> int:
    load_dotenv()
    parser = argparse.ArgumentParser(prog="roster-pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p_sync = commands.add_parser("sync", help="discover districts and fully refresh each one")
    p_sync.add_argument("--district", action="append", dest="districts", metavar="ID",
                        help="sync only this district (repeatable)")
    p_sync.add_argument("--accept-mass-change", action="store_true",
                        help="approve a change above the mass-change guard for the districts synced now")
    p_sync.add_argument("--incremental", action="store_true",
                        help="apply Clever events since each district's cursor instead of a full refresh")

    p_forget = commands.add_parser("forget", help="delete a district's rows from every table (after de-authorization)")
    p_forget.add_argument("--district", required=True, metavar="ID")

    commands.add_parser("grants", help="create the Postgres reader roles and grant them the roster tables")

    p_report = commands.add_parser("report", help="regenerate a district's school confirmation pages (HTML and CSV)")
    p_report.add_argument("--district", required=True, metavar="ID")
    p_report.add_argument("--school", metavar="ID", help="only this school's page")

    commands.add_parser("dictionary", help="regenerate docs/data_dictionary.md from dbt_like_sql/schema.yml")

    p_sandbox = commands.add_parser("sandbox", help="serve a Clever-compatible API with synthetic districts")
    p_sandbox.add_argument("--host", default="127.0.0.1")
    p_sandbox.add_argument("--port", type=int, default=8765)
    p_sandbox.add_argument("--districts", type=int, default=3)
    p_sandbox.add_argument("--students", type=int, default=5000, help="students in the largest district")
    p_sandbox.add_argument("--equal-sizes", action="store_true", help="every district has --students students")
    p_sandbox.add_argument("--seed", type=int, default=42)
    p_sandbox.add_argument("--client-id", default="sandbox-client")
    p_sandbox.add_argument("--client-secret", default="sandbox-secret")
    p_sandbox.add_argument("--requests-per-minute", type=int, default=1200, help="per-token rate limit")
    p_sandbox.add_argument("--mutate-every", type=float, default=0.0, metavar="SECONDS",
                           help="advance one simulated school day (with Clever events) every SECONDS")
    p_sandbox.add_argument("--mutate-share", type=float, default=0.01, help="share of records a day changes")
    p_sandbox.add_argument("--fault-rate", type=float, default=0.0,
                           help="share of data requests answered 429 or 503 (fault drill)")

    p_demo = commands.add_parser("demo", help="sandbox + sync into the local DuckDB + summary")
    p_demo.add_argument("--districts", type=int, default=3)
    p_demo.add_argument("--students", type=int, default=5000)
    p_demo.add_argument("--seed", type=int, default=42)

    args = parser.parse_args(argv)
    try:
        if args.command == "sync":
            return sync(args.districts, incremental=args.incremental, accept_mass_change=args.accept_mass_change)
        if args.command == "grants":
            return grants()
        if args.command == "forget":
            return forget(args.district)
        if args.command == "report":
            return report(args.district, args.school)
        if args.command == "dictionary":
            return dictionary()
        if args.command == "sandbox":
            return sandbox(args)
        return demo(args)
    except (RosterError, CleverAPIError) as exc:  # a mistake the user can fix: one sentence, no traceback
        print(f"roster-pipeline: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
