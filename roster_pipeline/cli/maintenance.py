"""Maintenance commands: forget a district, grant reader roles, regenerate reports and the data dictionary.

`forget` is what a district's de-authorization requires (every trace of it under the data folder,
the reports folder and DAGSTER_HOME gone); `grants` sets up the Postgres reader roles; `report` and `dictionary` regenerate the
school confirmation pages and docs/data_dictionary.md on demand.
"""

from __future__ import annotations

import shutil
import sys

from roster_pipeline.cli.dagster_home import ensure_dagster_home
from roster_pipeline.settings import ConfigError, data_dir, validate_clever_id, validate_district_id


def forget(district_id: str, yes: bool = False, out=None, ask=input) -> int:
    """Remove every trace of a district: warehouse rows, the readers' copies, dlt's folder, its school
    pages, and its runs and partition in the Dagster instance; asks first unless `yes`."""
    out = out or sys.stdout
    validate_district_id(district_id, "--district")
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError("forget deletes every record of a district: confirm on a terminal, or pass --yes.")
        answer = ask(f"Forget district {district_id}: its rows in every table, its school pages, its dlt folder "
                     "and its runs in the Dagster instance? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing removed.", file=out)
            return 1
    ensure_dagster_home()
    from dagster import DagsterInstance

    from roster_pipeline.defs.forget import forget_district_runs, sqlite_folders, vacuum_sqlite_storage
    from roster_pipeline.modeling.project import sql_project
    from roster_pipeline.reports.school_reports import reports_dir
    from roster_pipeline.settings import warehouse_url
    from roster_pipeline.warehouse.analyst_copy import refresh_analyst_file
    from roster_pipeline.warehouse.connection import Warehouse

    warehouse = Warehouse(warehouse_url(), data_dir() / "dlt")
    deleted = warehouse.forget_district(district_id)
    by_schema: dict[str, list[int]] = {}
    for table, rows in deleted.items():
        if rows:
            by_schema.setdefault(table.split(".")[0], []).append(rows)
    for schema, counts in sorted(by_schema.items()):
        print(f"  {schema}: {sum(counts):,} rows deleted from {len(counts)} tables", file=out)
    if warehouse.kind == "duckdb":
        refresh_analyst_file(warehouse, sql_project().access_classes)
        print(f"  the warehouse file was rewritten without the deleted rows, and the readers' copies "
              f"({warehouse.analyst_path.name}, {warehouse.demographics_path.name}) refreshed", file=out)
    pages = reports_dir() / district_id
    if pages.is_dir():
        files = sum(1 for p in pages.rglob("*") if p.is_file())
        shutil.rmtree(pages)
        print(f"  {pages}: {files} school pages and CSVs removed", file=out)
    with DagsterInstance.get() as instance:
        runs = forget_district_runs(instance, district_id)
        storage = sqlite_folders(instance)
    vacuum_sqlite_storage(storage)  # once the instance's connections are closed
    print(f"  Dagster instance: {runs} runs with their logs and check results deleted, partition removed", file=out)
    print(f"District {district_id} forgotten: {sum(deleted.values()):,} rows deleted.", file=out)
    return 0


def grants(out=None) -> int:
    """Create the Postgres reader roles and grant them the roster tables."""
    out = out or sys.stdout
    from roster_pipeline.modeling.project import sql_project
    from roster_pipeline.settings import warehouse_url
    from roster_pipeline.warehouse.connection import Warehouse
    from roster_pipeline.warehouse.grants import setup_grants

    warehouse = Warehouse(warehouse_url(), data_dir() / "dlt")
    if warehouse.kind != "postgres":
        raise ConfigError("ROSTER_WAREHOUSE points at DuckDB; access roles need a Postgres warehouse.")
    for role, tables in setup_grants(warehouse, sql_project().access_classes).items():
        print(f"{role}: select on {', '.join(tables) or '(no roster tables yet)'}", file=out)
    return 0


def report(district_id: str, school_id: str | None = None, out=None) -> int:
    """Regenerate a district's school confirmation pages from the published roster."""
    out = out or sys.stdout
    from roster_pipeline.reports.school_reports import reports_dir, require_published, write_reports
    from roster_pipeline.settings import warehouse_url
    from roster_pipeline.warehouse.connection import Warehouse

    validate_district_id(district_id, "--district")
    if school_id is not None:
        validate_clever_id(school_id, "school", "--school")
    warehouse = Warehouse(warehouse_url(), data_dir() / "dlt")
    require_published(warehouse, district_id)
    written = write_reports(warehouse, district_id, reports_dir(), school_id)
    print(f"{written['schools']} school pages in {written['folder']}"
          + ("" if school_id else f"; open {written['index']}"), file=out)
    return 0


def dictionary(out=None) -> int:
    """Rewrite docs/data_dictionary.md from the models' yml, the rules profile and the reason codes."""
    from roster_pipeline.publishing.data_dictionary import write

    print(f"wrote {write()}", file=out or sys.stdout)
    return 0
