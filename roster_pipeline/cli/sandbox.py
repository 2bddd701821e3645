"""`roster-pipeline sandbox` and `roster-pipeline demo`: the Clever-compatible sandbox, alone or with a first sync.

`sandbox` serves synthetic districts for anyone to point the pipeline at (optionally changing
them like school days do, or failing like a bad night at Clever); `demo` starts one in the
background, syncs it into the local warehouse and prints what landed where.

`ROSTER_SANDBOX_REQUEST_LOG=FILE roster-pipeline sandbox` appends `<epoch seconds> <path>` to FILE
for each request (no query, tokens or bodies; the file 0600): a benchmark run beside it reads when
a sync's first request came (`benchmarks/costs.py`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import threading
import time
from pathlib import Path

from roster_pipeline.cli.dagster_home import checkout_root, ensure_dagster_home
from roster_pipeline.cli.sync import sync
from roster_pipeline.settings import data_dir


def sandbox(args: argparse.Namespace) -> int:
    """Serve the synthetic districts until Ctrl+C (changing them every --mutate-every seconds if set)."""
    from roster_pipeline.sandbox.districts import SandboxData
    from roster_pipeline.sandbox.server import SandboxServer

    server = SandboxServer(
        (args.host, args.port), SandboxData(seed=args.seed, districts=args.districts, students=args.students, equal_sizes=args.equal_sizes),
        client_id=args.client_id, client_secret=args.client_secret, requests_per_minute=args.requests_per_minute,
        preserialize=args.preserialize, request_log=os.environ.get("ROSTER_SANDBOX_REQUEST_LOG") or None,
    )
    if args.preserialize:
        started = time.monotonic()
        held = server.preserialize_pages()
        print(f"Pages built ahead: {held / 2**20:.0f} MiB in {time.monotonic() - started:.0f} s.", flush=True)
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
    from roster_pipeline.sandbox.districts import SandboxData
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
    if warehouse.kind == "duckdb":
        from roster_pipeline.warehouse.analyst_copy import analyst_file

        print("\nQuery the roster with SQL (analysts open this copy, never the pipeline's own file):")
        print(f"  {sys.executable} -c \"import duckdb; print(duckdb.connect('{analyst_file(warehouse)}', "
              "read_only=True).sql('select name, students, teachers, sections, excluded_students "
              "from roster.school_roster_summary'))\"")
    print("\nBrowse the asset graph and runs in the Dagster UI (the README's line, with this demo's folders):")
    dg = shutil.which("dg") or str(Path(sys.executable).with_name("dg"))
    if root := checkout_root(home):  # the top-level dagster.yaml keeps the instance where this demo did
        folder = shlex.quote(str(root))  # the physical path: Dagster compares it with its working directory
        print(f"  cd {folder} && DAGSTER_HOME={folder} {shlex.quote(dg)} dev -w workspace.yaml")
    else:
        print(f"  DAGSTER_HOME={home} ROSTER_DATA_DIR={data_dir()} {dg} dev -w workspace.yaml")
    return code


def print_summary(warehouse, district_ids: list[str], out=None) -> None:
    """Per district: raw rows loaded, roster rows published, and why records were excluded."""
    out = out or sys.stdout
    from roster_pipeline.clever.source import raw_tables
    from roster_pipeline.operations.terminal import printable
    from roster_pipeline.publishing.publish import district_labels, published_summary

    tables = raw_tables()
    print("Districts:", file=out)
    for district_id, label in district_labels(warehouse, district_ids).items():
        print(f"  {printable(label)}", file=out)  # the name is Clever's
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
