"""Replacing a district's slice stays exact above DuckDB's row-group size (122,880 rows).

DuckDB 2.0.0 kept the old rows when a large table's rows were deleted and re-inserted in one
transaction (the slice doubled on the second sync; a 1M-student district published nothing);
the dependency is pinned below 2, and this test keeps the pattern honest on both warehouses.
"""

import pytest

from roster_pipeline.publish import publish_district
from roster_pipeline.settings import warehouse_url
from roster_pipeline.sql_models import BUILD_SCHEMA, PUBLISHED_SCHEMA
from roster_pipeline.warehouse import Warehouse
from roster_pipeline_tests.conftest import WAREHOUSE_KINDS

ROWS = 300_000
DISTRICT = "ab" * 12


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_a_large_slice_is_replaced_not_doubled(warehouse_env, tmp_path, monkeypatch):
    monkeypatch.setenv("ROSTER_DATA_DIR", str(tmp_path))
    warehouse = Warehouse(warehouse_url(), tmp_path / "dlt")
    with warehouse.transaction() as sql:
        sql.execute(f"create schema if not exists {BUILD_SCHEMA}")
        sql.execute(f"create table {BUILD_SCHEMA}.enrollments as select '{DISTRICT}' as district_id, "
                    f"cast(i as varchar) as student_id from generate_series(1, {ROWS}) as t(i)")
    for _ in range(3):  # the first publish creates the table; the next ones replace the slice
        with warehouse.transaction() as sql:
            counts = publish_district(sql, DISTRICT, ["enrollments"])
        assert counts == {"enrollments": ROWS}
    with warehouse.transaction() as sql:
        assert sql.execute(f"select count(*), count(distinct student_id) from {PUBLISHED_SCHEMA}.enrollments").fetchone() == (ROWS, ROWS)
