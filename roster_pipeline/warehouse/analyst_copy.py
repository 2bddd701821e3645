"""The DuckDB file analysts read: a copy of schema `roster`, replaced atomically after each publish.

DuckDB lets one process write a database file, and a reader in another process (a SQL client,
a notebook, a report) holds a lock that makes the writer fail ("Could not set lock on file").
So with the embedded warehouse, the pipeline keeps its own file and nobody else opens it;
analysts open `<warehouse>_for_analysts.duckdb`, which the pipeline never writes in place: each
publish writes a fresh copy next to it and renames it over the old one. A reader that has the
old file open keeps a consistent snapshot of the previous version (POSIX keeps the replaced file
alive for it); the next connection sees the new version. Postgres needs none of this.
"""

from __future__ import annotations

import os
from pathlib import Path

from roster_pipeline.warehouse.connection import Warehouse
from roster_pipeline.warehouse.schemas import PUBLISHED_SCHEMA


def analyst_file(warehouse: Warehouse) -> Path:
    return warehouse.analyst_path


def refresh_analyst_file(warehouse: Warehouse) -> Path:
    """Copy every published table into a new file, then atomically replace the analysts' file."""
    target = analyst_file(warehouse)
    fresh = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with warehouse.connect() as conn:  # holds the warehouse file's lock: no other refresh runs meanwhile
        # A refresh killed half way (SIGKILL, power loss) left its copy behind; nobody else will finish it.
        for leftover in target.parent.glob(f".{target.name}.*.tmp*"):
            leftover.unlink(missing_ok=True)
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = ? and table_catalog = current_database()",
            [PUBLISHED_SCHEMA]).fetchall()]
        # The path comes from ROSTER_WAREHOUSE (configuration, never roster data); quotes are doubled.
        conn.execute(f"attach '{str(fresh).replace(chr(39), chr(39) * 2)}' as analysts")
        try:
            conn.execute(f"create schema analysts.{PUBLISHED_SCHEMA}")
            for table in tables:
                conn.execute(f"create table analysts.{PUBLISHED_SCHEMA}.{table} as select * from {PUBLISHED_SCHEMA}.{table}")
        finally:
            conn.execute("detach analysts")
        os.replace(fresh, target)
    return target
