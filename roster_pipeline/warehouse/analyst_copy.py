"""The DuckDB files people read: copies of schema `roster`, replaced atomically after each publish.

DuckDB lets one process write a database file, and a reader in another process (a SQL client,
a notebook, a report) holds a lock that makes the writer fail ("Could not set lock on file").
So with the embedded warehouse, the pipeline keeps its own file and nobody else opens it; people
open copies, which the pipeline never writes in place: each publish writes a fresh copy next to
each and renames it over the old one. A reader that has the old file open keeps a consistent
snapshot of the previous version (POSIX keeps the replaced file alive for it); the next
connection sees the new version. Postgres needs none of this.

DuckDB has no roles, so the two Postgres roles become two files, split by each table's access
class (`meta.access`, see grants.py):
- `<warehouse>_for_analysts.duckdb`: the `reader` tables, mode 0640 (for the file's group);
- `<warehouse>_demographics.duckdb`: the `demographics` tables only, mode 0600. Whoever may see
  demographics attaches it beside the analysts' copy (`attach '..._demographics.duckdb' as demo`).
A table without a class is in neither.
"""

from __future__ import annotations

import os
from pathlib import Path

from roster_pipeline.settings import GROUP_READABLE_FILE
from roster_pipeline.warehouse.connection import Warehouse
from roster_pipeline.warehouse.schemas import PUBLISHED_SCHEMA

PRIVATE_FILE = 0o600


def analyst_file(warehouse: Warehouse) -> Path:
    return warehouse.analyst_path


def copies(warehouse: Warehouse) -> dict[str, tuple[Path, int]]:
    """Access class → (the file its tables are copied into, that file's mode)."""
    return {"reader": (warehouse.analyst_path, GROUP_READABLE_FILE),
            "demographics": (warehouse.demographics_path, PRIVATE_FILE)}


def refresh_analyst_file(warehouse: Warehouse, access: dict[str, str]) -> Path:
    """Copy the published tables into fresh files by access class (`access`: table → class), then
    atomically replace the readers' files; returns the analysts' copy."""
    with warehouse.connect() as conn:  # holds the warehouse file's lock: no other refresh runs meanwhile
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = ? and table_catalog = current_database()",
            [PUBLISHED_SCHEMA]).fetchall()]
        for access_class, (target, mode) in copies(warehouse).items():
            _replace_copy(conn, target, mode, [t for t in tables if access.get(t) == access_class])
    return warehouse.analyst_path


def _replace_copy(conn, target: Path, mode: int, tables: list[str]) -> None:
    fresh = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    # A refresh killed half way (SIGKILL, power loss) left its copy behind; nobody else will finish it.
    for leftover in target.parent.glob(f".{target.name}.*.tmp*"):
        leftover.unlink(missing_ok=True)
    # The path comes from ROSTER_WAREHOUSE (configuration, never roster data); quotes are doubled.
    conn.execute(f"attach '{str(fresh).replace(chr(39), chr(39) * 2)}' as fresh_copy")
    try:
        conn.execute(f"create schema fresh_copy.{PUBLISHED_SCHEMA}")
        for table in tables:
            conn.execute(f"create table fresh_copy.{PUBLISHED_SCHEMA}.{table} as select * from {PUBLISHED_SCHEMA}.{table}")
    finally:
        conn.execute("detach fresh_copy")
    os.chmod(fresh, mode)  # before it is visible under its name
    os.replace(fresh, target)
