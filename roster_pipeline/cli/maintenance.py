"""Maintenance commands: forget a district, grant reader roles, regenerate reports and the data dictionary.

`forget` is what a district's de-authorization requires (every row and the Dagster partition
gone); `grants` sets up the Postgres reader roles; `report` and `dictionary` regenerate the
school confirmation pages and docs/data_dictionary.md on demand.
"""

from __future__ import annotations

import sys

from roster_pipeline.cli.dagster_home import ensure_dagster_home
from roster_pipeline.settings import ConfigError, data_dir, validate_clever_id, validate_district_id


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
        validate_clever_id(school_id, "school", "--school")
    written = write_reports(Warehouse(warehouse_url(), data_dir() / "dlt"), district_id, reports_dir(), school_id)
    print(f"{written['schools']} school pages in {written['folder']}"
          + ("" if school_id else f"; open {written['index']}"), file=out)
    return 0


def dictionary(out=None) -> int:
    """Rewrite docs/data_dictionary.md from the models' yml, the rules profile and the reason codes."""
    from roster_pipeline.publishing.data_dictionary import write

    print(f"wrote {write()}", file=out or sys.stdout)
    return 0
