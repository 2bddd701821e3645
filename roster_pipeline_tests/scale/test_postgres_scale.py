"""A district large enough that a bad Postgres plan shows: 30,000 students into a fresh database.

Before statistics were refreshed inside the run, Postgres planned the enrollment join on
never-analyzed tables ("1 row" each) with nested loops and this sync did not finish in 20
minutes; with them it takes about 20 s. The timeout is a guard against that, not a benchmark.
"""

from __future__ import annotations

import io
import json

import pytest

from roster_pipeline.modeling.project import SqlProject
from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.server import start_sandbox
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA
from roster_pipeline_tests.fixtures.engine import sync
from roster_pipeline_tests.fixtures.warehouses import point_at, warehouse_query

STUDENTS = 30_000


@pytest.fixture(scope="module")
def large_sandbox():
    server = start_sandbox(SandboxData(seed=11, districts=1, students=STUDENTS))
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.timeout(400)
@pytest.mark.parametrize("warehouse_env", ["postgres"], indirect=True)
def test_a_large_district_syncs_into_postgres_with_fresh_statistics_and_keys(large_sandbox, warehouse_env,
                                                                             tmp_path, monkeypatch):
    point_at(large_sandbox, tmp_path, monkeypatch)
    assert sync(out=io.StringIO()) == 0
    (district_id,) = [spec.id for spec in large_sandbox.data.specs]
    assert warehouse_query("select count(*) from roster.students")[0][0] > 0.9 * STUDENTS

    # Fresh statistics: every built table's planner row estimate is its real size (within 10 %).
    project = SqlProject()
    for model in project.models.values():
        if model.materialized == "view":
            continue
        ((estimate, actual),) = warehouse_query(
            f"select c.reltuples, (select count(*) from {model.relation}) from pg_class c "
            f"join pg_namespace n on n.oid = c.relnamespace where n.nspname = ? and c.relname = ?",
            [BUILD_SCHEMA, model.name])
        assert abs(estimate - actual) <= 0.1 * actual + 5, (model.name, estimate, actual)

    # The heaviest model is planned on those sizes: hash joins, never the nested loops that a
    # "1 row" estimate picks (Postgres still guesses the distinct pairs low, about 6x, which is
    # harmless for the plan's shape).
    model = project.models["int_enrollments__kept"]
    rendered = project.render(model, "postgres")
    plan_sql = f"explain (format json) select * from ({rendered.sql}) as rows".replace("%(district_id)s", "?")
    ((plan,),) = warehouse_query(plan_sql, [district_id] * plan_sql.count("?"))
    plan = plan if isinstance(plan, list) else json.loads(plan)
    actual = warehouse_query(f"select count(*) from {model.relation}")[0][0]
    assert actual > 50_000 and plan[0]["Plan"]["Plan Rows"] >= actual / 10, (plan[0]["Plan"]["Plan Rows"], actual)
    assert "Nested Loop" not in json.dumps(plan), json.dumps(plan, indent=1)

    # Published tables carry their declared keys and the analysts' school index.
    keys = dict(warehouse_query(
        "select c.conrelid::regclass::text, pg_get_constraintdef(c.oid) from pg_constraint c "
        "join pg_namespace n on n.oid = c.connamespace where n.nspname = 'roster' and c.contype in ('p', 'u')"))
    assert keys["roster.students"] == "PRIMARY KEY (district_id, student_id)"
    assert keys["roster.enrollments"] == "PRIMARY KEY (district_id, section_id, student_id)"
    assert keys["roster.admins"] == "UNIQUE NULLS NOT DISTINCT (district_id, user_id, role, school_id)"
    indexes = [row[0] for row in warehouse_query(
        "select indexdef from pg_indexes where schemaname = 'roster' and tablename = 'students'")]
    assert any("(district_id, school_id)" in definition for definition in indexes), indexes

    # A second nightly refresh of the same data rewrites nothing published (the tables keep
    # their size), and the churned work tables are vacuumed: their dead copy is reused by the
    # next night's rows, so they stay within twice their live size instead of growing each night.
    sizes = "select n.nspname, sum(pg_total_relation_size(c.oid)) from pg_class c join pg_namespace n " \
            "on n.oid = c.relnamespace where c.relkind = 'r' and n.nspname in ('roster', 'roster_build') group by 1"
    before = {schema: int(size) for schema, size in warehouse_query(sizes)}
    students = warehouse_query("select * from roster.students order by student_id")
    assert sync(out=io.StringIO()) == 0
    after = {schema: int(size) for schema, size in warehouse_query(sizes)}
    assert after["roster"] <= 1.05 * before["roster"], (before, after)
    assert after["roster_build"] <= 2.1 * before["roster_build"], (before, after)  # at most one dead copy
    vacuumed = dict(warehouse_query(
        "select schemaname || '.' || relname, last_vacuum is not null from pg_stat_user_tables "
        "where schemaname in ('clever_raw', 'roster_build')"))
    assert vacuumed["roster_build.int_enrollments__kept"] and vacuumed["clever_raw.section_students"], vacuumed
    assert warehouse_query("select * from roster.students order by student_id") == students

