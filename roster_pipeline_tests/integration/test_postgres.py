"""Production footing on the machine's Postgres: same tables as DuckDB, the instance, access roles."""

from __future__ import annotations

import datetime
import decimal
import io
import shutil
import uuid
from pathlib import Path

import psycopg2
import pytest

from roster_pipeline.cli import main
from roster_pipeline.cli.sync import sync
from roster_pipeline.modeling.project import SqlProject
from roster_pipeline.publishing.guard import GUARDED_TABLES
from roster_pipeline_tests.fixtures.warehouses import POSTGRES, warehouse_query

PROJECT = Path(__file__).resolve().parents[2]
ROSTER_TABLES = ["schools", "students", "teachers", "sections", "enrollments", "demographics", "admins",
                 "rejected_records", "school_roster_summary"]


@pytest.fixture
def fresh_database():
    """Make fresh Postgres databases on demand; every one is dropped afterwards."""
    admin = psycopg2.connect(f"{POSTGRES}/postgres")
    admin.autocommit = True
    names = []

    def create() -> str:
        name = f"roster_test_{uuid.uuid4().hex[:12]}"
        admin.cursor().execute(f"create database {name}")
        names.append(name)
        return name

    yield create
    for name in names:
        admin.cursor().execute(f"drop database if exists {name} with (force)")
    admin.close()


def normalized(value):
    """Python values from DuckDB and psycopg2 in one form (both drivers agree on most types)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.datetime):
        return value.date()
    return value


def roster_rows() -> dict[str, list]:
    return {t: sorted((tuple(normalized(v) for v in row) for row in warehouse_query(f"select * from roster.{t}")), key=repr)
            for t in ROSTER_TABLES}


def test_duckdb_and_postgres_build_identical_roster_tables(pipeline_env, sandbox, monkeypatch, fresh_database):
    assert sync(out=io.StringIO()) == 0
    on_duckdb = roster_rows()
    monkeypatch.setenv("ROSTER_WAREHOUSE", f"{POSTGRES}/{fresh_database()}")
    monkeypatch.setenv("ROSTER_DATA_DIR", str(pipeline_env.parent / "data_postgres"))
    assert sync(out=io.StringIO()) == 0
    on_postgres = roster_rows()
    for table in ROSTER_TABLES:
        assert on_postgres[table] == on_duckdb[table], table
    assert len(on_duckdb["students"]) > 500 and len(on_duckdb["rejected_records"]) > 50
    columns = "select column_name, data_type from information_schema.columns where table_schema = 'roster' " \
              "and table_name = 'students' order by ordinal_position"
    assert [c for c, _ in warehouse_query(columns)] == ["district_id", "student_id", "person_key", "school_id", "first_name",
                                                        "last_name", "gender", "birth_date", "state_id", "sis_id",
                                                        "email", "grade", "race", "hispanic_ethnicity"]
    assert dict(warehouse_query(columns))["birth_date"] == "date"
    assert dict(warehouse_query(columns))["grade"] == "integer"


def test_reader_roles_keep_demographics_and_raw_data_away(pipeline_env, sandbox, monkeypatch, fresh_database, capsys):
    database = fresh_database()
    monkeypatch.setenv("ROSTER_WAREHOUSE", f"{POSTGRES}/{database}")
    assert sync(out=io.StringIO()) == 0
    assert main(["grants"]) == 0
    assert "roster_demographics_reader: select on demographics" in capsys.readouterr().out
    suffix = uuid.uuid4().hex[:8]
    analyst, counselor = f"analyst_{suffix}", f"counselor_{suffix}"
    admin = psycopg2.connect(f"{POSTGRES}/{database}")
    admin.autocommit = True
    admin.cursor().execute(f"create role {analyst} login; grant roster_reader to {analyst}; "
                           f"create role {counselor} login; grant roster_demographics_reader to {counselor}")
    try:
        def can_read(user: str, table: str) -> bool:
            with psycopg2.connect(f"postgresql://{user}@127.0.0.1:5432/{database}") as conn, conn.cursor() as cur:
                try:
                    cur.execute(f"select count(*) from {table}")
                    return cur.fetchone()[0] >= 0
                except psycopg2.errors.InsufficientPrivilege:
                    return False

        for table in ROSTER_TABLES:
            assert can_read(analyst, f"roster.{table}") == (table != "demographics"), table
            assert can_read(counselor, f"roster.{table}"), table
        history = ["students", "teachers", "sections", "enrollments", "admins", "schools", "demographics"]
        for table in [f"{t}_history" for t in history] + ["roster_changes", "publishes"]:
            assert can_read(analyst, f"roster.{table}") == (table != "demographics_history"), table
            assert can_read(counselor, f"roster.{table}"), table
        for user in (analyst, counselor):
            assert not can_read(user, "clever_raw.students")
            assert not can_read(user, "roster_build.students")
        # An allow-list: a table nobody classified (meta.access) stays private through the next publish.
        admin.cursor().execute("create table roster.student_disabilities as "
                               "select district_id, student_id from roster.students")
        assert sync(out=io.StringIO()) == 0
        assert not can_read(analyst, "roster.student_disabilities")
        assert not can_read(counselor, "roster.student_disabilities")
        assert can_read(analyst, "roster.students") and can_read(counselor, "roster.demographics")
    finally:
        admin.cursor().execute(f"drop role {analyst}; drop role {counselor}")
        admin.close()


def test_sync_records_its_runs_in_the_postgres_instance(pipeline_env, sandbox, monkeypatch, fresh_database, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    database = fresh_database()
    for key, value in {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432",
                       "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": database}.items():
        monkeypatch.setenv(key, value)
    assert sync(out=io.StringIO()) == 0
    with psycopg2.connect(f"{POSTGRES}/{database}") as conn, conn.cursor() as cur:
        cur.execute("select count(*) from runs where status = 'SUCCESS'")
        assert cur.fetchone()[0] == len(sandbox.data.specs)
        cur.execute("select value from run_tags where key = 'dagster/partition' order by value")
        assert [r[0] for r in cur.fetchall()] == sorted(s.id for s in sandbox.data.specs)
        cur.execute("select count(*) from event_logs where dagster_event_type = 'ASSET_CHECK_EVALUATION'")
        checks = len(SqlProject().marts()) + len(GUARDED_TABLES)  # a contract per mart, the mass-change guards
        assert cur.fetchone()[0] == checks * len(sandbox.data.specs)
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        from dagster import QueuedRunCoordinator

        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)  # RosterRunCoordinator, which tags UI runs
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
