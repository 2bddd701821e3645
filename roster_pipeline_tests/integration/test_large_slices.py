"""Publishing a large district's first slice stays readable, filtered, on the connection that wrote it.

DuckDB 2.0.0 (fixed in 2.0.1) has this bug: a table created by `create table ... as select ...
limit 0` inside a transaction, then filled in the same transaction by an insert of at least
110,592 rows (90 % of a 122,880-row row group) with strings longer than 12 bytes, returns no rows
to filtered reads (`where district_id = ...`) on that connection: inside the transaction, and
after the commit too from 122,880 rows on. `count(*)` without a filter is right, and a new
connection reads the data correctly. It needs ordered inserts (`preserve_insertion_order = true`,
DuckDB's default) and more than one thread. This is exactly what `publish_district` does the
first time it publishes a table: its own count of the district's rows came back 0, and a later
`delete ... where district_id = ...` on that connection deleted nothing, so the next publish
doubled the slice. Deleting and re-inserting rows of an existing table is not affected.

`Warehouse._open` turns ordered inserts off (faster), which hides the bug, so this test sets
`preserve_insertion_order = true` and `threads = 4` on its own connection: it must fail on
DuckDB 2.0.0 whatever the project's performance settings. The dependency excludes 2.0.0.
"""

from contextlib import contextmanager

import pytest

from roster_pipeline.modeling.project import sql_project
from roster_pipeline.publishing.publish import publish_district, publish_plan
from roster_pipeline.settings import warehouse_url
from roster_pipeline.warehouse.connection import Session, Warehouse, placeholder
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA, PUBLISHED_SCHEMA
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS

ROWS = 150_000  # above 110,592 (wrong inside the transaction) and 122,880 (wrong after the commit too)
DISTRICT = "ab" * 12  # 24 bytes: longer than DuckDB's 12-byte inlined strings
STUDENT = "student-{:09d}"  # 17 bytes


@contextmanager
def ordered_session(warehouse: Warehouse):
    """A session whose DuckDB inserts preserve insertion order on several threads (DuckDB's defaults)."""
    with warehouse.connect() as conn:
        engine = "postgres"
        if warehouse.kind == "duckdb":
            import duckdb

            conn.execute("set preserve_insertion_order = true")
            conn.execute("set threads = 4")
            assert conn.execute("select current_setting('preserve_insertion_order'), "
                                "current_setting('threads')").fetchone() == (True, 4)
            engine = f"duckdb {duckdb.__version__}"
        print(f"[{engine}]")
        yield Session(conn, warehouse.kind), engine


def filtered_counts(sql, student_id: str) -> tuple[int, int, int]:
    """(all rows, rows of the district, rows of one student): the last two are filtered reads."""
    d, s = placeholder(sql.dialect, "d"), placeholder(sql.dialect, "s")
    return sql.execute(
        f"select (select count(*) from {PUBLISHED_SCHEMA}.enrollments), "
        f"(select count(*) from {PUBLISHED_SCHEMA}.enrollments where district_id = {d}), "
        f"(select count(*) from {PUBLISHED_SCHEMA}.enrollments where student_id = {s})",
        {"d": DISTRICT, "s": student_id}).fetchone()


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_a_large_first_publish_is_read_back_filtered(warehouse_env, tmp_path, monkeypatch):
    monkeypatch.setenv("ROSTER_DATA_DIR", str(tmp_path))
    warehouse = Warehouse(warehouse_url(), tmp_path / "dlt")
    last = STUDENT.format(ROWS)
    enrollments = publish_plan(sql_project(), ["enrollments"])
    with warehouse.transaction() as sql:
        sql.execute(f"create schema if not exists {BUILD_SCHEMA}")
        sql.execute(f"create table {BUILD_SCHEMA}.enrollments as select '{DISTRICT}' as district_id, "
                    f"'student-' || lpad(cast(i as varchar), 9, '0') as student_id "
                    f"from generate_series(1, {ROWS}) as t(i)")
    with ordered_session(warehouse) as (session, engine):
        # First publish: `create table ... as select ... limit 0` and the insert, in one transaction.
        with session.transaction() as sql:
            published = publish_district(sql, DISTRICT, enrollments).counts["enrollments"]["rows"]  # a filtered count
            in_transaction = filtered_counts(sql, last)
        with session.transaction() as sql:
            after_commit = filtered_counts(sql, last)
        assert (published, in_transaction, after_commit) == (ROWS, (ROWS, ROWS, 1), (ROWS, ROWS, 1)), (
            f"{engine}: the publish counted {published} rows; (all, district, one student) read back "
            f"{in_transaction} in the transaction, {after_commit} after the commit")
        # Next publishes replace the slice (delete + insert) on the existing table.
        for _ in range(2):
            with session.transaction() as sql:
                assert publish_district(sql, DISTRICT, enrollments).counts["enrollments"]["rows"] == ROWS, engine
                assert filtered_counts(sql, last) == (ROWS, ROWS, 1), engine
    with warehouse.transaction() as sql:  # a new connection
        assert sql.execute(f"select count(*), count(distinct student_id) from {PUBLISHED_SCHEMA}.enrollments "
                           f"where district_id = '{DISTRICT}'").fetchone() == (ROWS, ROWS)
        assert filtered_counts(sql, last) == (ROWS, ROWS, 1)
