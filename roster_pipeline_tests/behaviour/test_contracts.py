"""The contracts' batched verdict never passes what pandera fails.

`check_contract` asks pandera's own check expressions in one aggregate per table and runs the
full pandera validation only when that fails. Here the hand-made district's build tables are
copied into an in-memory DuckDB, one kind of breakage at a time is made in the copy, and each
must fail its contract with failures pandera describes; the unbroken copy passes both ways.
"""

from __future__ import annotations

import duckdb
import ibis
import pandera.errors
import pytest
from pandera.config import ValidationDepth

from roster_pipeline.modeling.contract_check import check_contract, passes
from roster_pipeline.modeling.contracts import contract_for
from roster_pipeline.modeling.rules import RulesProfile
from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.server import start_sandbox
from roster_pipeline.settings import data_dir, warehouse_url
from roster_pipeline.warehouse.connection import Warehouse
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA
from roster_pipeline_tests.fixtures.dirty_district import DISTRICT_ID, handmade_district, point_at_handmade, run_sync

FIRST = "(select min({key}) from roster_build.{table})"

# Each breakage: (what it is, the table it breaks, the statements that break it, pandera's reason code).
BREAKAGES = [
    ("a NULL in a not-null column", "students",
     [f"update roster_build.students set school_id = null where student_id = {FIRST.format(key='student_id', table='students')}"],
     "SERIES_CONTAINS_NULLS"),
    ("a grade outside the rules profile's range", "students",
     [f"update roster_build.students set grade = 40 where student_id = {FIRST.format(key='student_id', table='students')}"],
     "DATAFRAME_CHECK"),
    ("a malformed email", "teachers",
     [f"update roster_build.teachers set email = 'no-at-sign' where teacher_id = {FIRST.format(key='teacher_id', table='teachers')}"],
     "DATAFRAME_CHECK"),
    ("a repeated key", "students",
     ["insert into roster_build.students select * from roster_build.students limit 1"], "DUPLICATES"),
    ("a foreign key to no record", "enrollments",
     [f"update roster_build.enrollments set section_id = 'no-such-section' "
      f"where student_id = {FIRST.format(key='student_id', table='enrollments')}"],
     "DATAFRAME_CHECK"),
    ("a rule across columns (sections without a primary teacher)", "section_teachers",
     ["update roster_build.section_teachers set is_primary = false"], "DATAFRAME_CHECK"),
    ("a column of another type", "students",
     ["alter table roster_build.students alter grade type varchar"], "WRONG_DATATYPE"),
    ("a column the contract does not know", "students",
     ["alter table roster_build.students add column nickname varchar"], "COLUMN_NOT_IN_SCHEMA"),
]


@pytest.fixture(scope="module")
def synced_warehouse(tmp_path_factory):
    """The hand-made district synced once into a DuckDB warehouse (the tests only read it)."""
    server = start_sandbox(SandboxData(districts=0, handmade=[handmade_district()]))
    with pytest.MonkeyPatch.context() as env:
        point_at_handmade(server, env, tmp_path_factory.mktemp("contracts") / "data")
        env.delenv("ROSTER_WAREHOUSE", raising=False)  # the DuckDB default: the copies below attach its file
        try:
            assert run_sync()[0] == 0
            yield Warehouse(warehouse_url(), data_dir() / "dlt")
        finally:
            server.shutdown()
            server.server_close()


@pytest.fixture
def build_copy(synced_warehouse):
    """`fresh()` → an in-memory DuckDB holding a copy of the district's build tables, as Ibis."""
    warehouse = synced_warehouse
    connections = []

    def fresh():
        conn = duckdb.connect()
        conn.execute(f"attach '{warehouse.duckdb_path}' as warehouse (read_only)")
        conn.execute(f"create schema {BUILD_SCHEMA}")
        for (table,) in conn.execute("select table_name from information_schema.tables where table_catalog = "
                                     f"'warehouse' and table_schema = '{BUILD_SCHEMA}'").fetchall():
            conn.execute(f"create table {BUILD_SCHEMA}.{table} as select * from warehouse.{BUILD_SCHEMA}.{table}")
        conn.execute("detach warehouse")
        connections.append(conn)
        return ibis.duckdb.from_connection(conn), conn

    yield fresh
    for conn in connections:
        conn.close()


def district_slice(backend):
    return lambda name: backend.table(name, database=BUILD_SCHEMA).filter(lambda t: t.district_id == DISTRICT_ID)


def test_the_unbroken_build_passes_the_batched_verdict_and_pandera(build_copy):
    backend, _ = build_copy()
    rules = RulesProfile.load().for_district(DISTRICT_ID)
    for table in ("students", "teachers", "sections", "enrollments", "section_teachers", "admins", "schools",
                  "demographics", "rejected_records", "school_roster_summary"):
        rows, schema = district_slice(backend)(table), contract_for(table, rules, district_slice(backend))
        assert passes(rows, schema, ValidationDepth.SCHEMA_AND_DATA), table
        schema.validate(rows, lazy=True)  # pandera agrees: no SchemaErrors
        assert check_contract(backend, table, DISTRICT_ID, rules).passed, table


@pytest.mark.parametrize("what, table, statements, reason", BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_each_breakage_fails_the_batched_verdict_and_pandera_describes_it(build_copy, what, table, statements, reason):
    backend, conn = build_copy()
    for statement in statements:
        conn.execute(statement)
    rules = RulesProfile.load().for_district(DISTRICT_ID)
    rows, schema = district_slice(backend)(table), contract_for(table, rules, district_slice(backend))
    assert not passes(rows, schema, ValidationDepth.SCHEMA_AND_DATA), what
    with pytest.raises(pandera.errors.SchemaErrors):
        schema.validate(rows, lazy=True)
    result = check_contract(backend, table, DISTRICT_ID, rules)
    assert not result.passed, what
    assert reason in {f.reason for f in result.failures}, (what, result.failures)
