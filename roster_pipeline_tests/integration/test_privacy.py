"""No student- or staff-level personal value outside the warehouse (issue 15, item 4).

Dagster's event log, run storage and compute logs are readable by everyone with the UI, outside
the warehouse roles that keep personal data and demographics apart. So the sandbox districts are
synced twice (a clean publish, then a rules profile that lets malformed emails through, so the
pandera contracts fail and failed-check metadata exists), and every name part, email, birth date
and state id Clever served is searched for in everything the Dagster instance kept (every file
under DAGSTER_HOME; every text column of the Postgres instance's database), in the captured
stdout/stderr and in Python logging. None may be there. The same values are in roster.students,
so the search does find them where they belong.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import sqlite3
import uuid
from pathlib import Path

import psycopg2
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance

from roster_pipeline.cli.sync import sync
from roster_pipeline_tests.fixtures.warehouses import POSTGRES, warehouse_query

PROJECT = Path(__file__).resolve().parents[2]
MIN_LENGTH = 5  # shorter values (Lee, Kim, Ava, middle initials) also match unrelated text: not searched
PEOPLE = ("students", "teachers", "staff", "district_admins")


@pytest.fixture
def postgres_instance(tmp_path, monkeypatch):
    """A DAGSTER_HOME with the project's production dagster.yaml on a fresh Postgres database."""
    admin = psycopg2.connect(f"{POSTGRES}/postgres")
    admin.autocommit = True
    database = f"roster_test_{uuid.uuid4().hex[:12]}"
    admin.cursor().execute(f"create database {database}")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for key, value in {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432",
                       "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": database}.items():
        monkeypatch.setenv(key, value)
    try:
        yield home, database
    finally:
        admin.cursor().execute(f"drop database if exists {database} with (force)")
        admin.close()


def served_personal_values() -> tuple[dict[str, set[str]], dict[str, int]]:
    """Every personal value Clever served (the raw tables), by kind, and how many were left out why."""
    found: dict[str, set[str]] = {"name part": set(), "email": set(), "birth date": set(), "state id": set()}
    for table in PEOPLE:
        for first, last, email in warehouse_query(f"select first_name, last_name, email from clever_raw.{table}"):
            found["name part"] |= {first, last}
            if email and email.strip():  # as served, and as the roster normalizes it
                found["email"] |= {email.strip(), email.strip().lower()}
    for table in ("students", "teachers"):
        found["state id"] |= {s for (s,) in warehouse_query(f"select state_id from clever_raw.{table}")}
    found["birth date"] |= {d.strip() for (d,) in warehouse_query("select dob from clever_raw.students") if d}
    found["birth date"] |= {str(d) for (d,) in warehouse_query("select birth_date from roster.students")}  # ISO
    # School, district, section, course and term names are not personal and are meant to be shown.
    shared = " ".join(str(n) for t in ("districts", "schools", "sections", "courses", "terms")
                      for (n,) in warehouse_query(f"select name from clever_raw.{t}") if n)
    skipped = {"too short": 0, "in a school, district, section, course or term name": 0}
    values: dict[str, set[str]] = {}
    for kind, candidates in found.items():
        candidates = {c for c in candidates if c is not None and str(c).strip() and str(c) != "None"}
        skipped["too short"] += sum(len(c) < MIN_LENGTH for c in candidates)
        generic = {c for c in candidates if len(c) >= MIN_LENGTH and c in shared}
        skipped["in a school, district, section, course or term name"] += len(generic)
        values[kind] = {c for c in candidates if len(c) >= MIN_LENGTH and c not in generic}
    return values, skipped


def spellings(value: str) -> set[str]:
    """The value as stored text may hold it: plain, JSON-escaped (Dagster's serdes), escaped twice."""
    once = json.dumps(value)[1:-1]
    return {value, once, json.dumps(once)[1:-1]}


def leaks(values: dict[str, set[str]], haystacks: dict[str, str]) -> list[str]:
    return [f"{kind} {value!r} in {where}" for kind, group in values.items() for value in sorted(group)
            for where, text in haystacks.items() if any(s in text for s in spellings(value))]


def sqlite_text(path: Path) -> str:
    """Every value of every table of a SQLite file (a value can straddle pages in the raw bytes)."""
    parts = []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        for (table,) in db.execute("select name from sqlite_master where type = 'table'").fetchall():
            for row in db.execute(f'select * from "{table}"'):
                parts += [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row if v is not None]
    return "\n".join(parts)


def dagster_home_text(home: Path) -> dict[str, str]:
    """Every file under DAGSTER_HOME as text, plus the rows of each SQLite database in it."""
    texts = {}
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        texts[str(path.relative_to(home))] = path.read_bytes().decode("utf-8", "replace")
        if path.read_bytes()[:16] == b"SQLite format 3\x00":
            texts[f"{path.relative_to(home)} (rows)"] = sqlite_text(path)
    return texts


def postgres_instance_text(database: str) -> tuple[str, int]:
    """Every text column of every table of the instance database, and how many columns that is."""
    parts, columns = [], 0
    with psycopg2.connect(f"{POSTGRES}/{database}") as conn, conn.cursor() as cur:
        cur.execute("select c.table_schema, c.table_name, c.column_name from information_schema.columns c "
                    "join information_schema.tables t using (table_schema, table_name) "
                    "where t.table_type = 'BASE TABLE' and c.table_schema not in ('pg_catalog', 'information_schema') "
                    "and c.data_type in ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea')")
        for schema, table, column in cur.fetchall():
            columns += 1
            cur.execute(f'select "{column}"::text from "{schema}"."{table}" where "{column}" is not null')
            parts += [row[0] for row in cur.fetchall()]
    return "\n".join(parts), columns


@pytest.mark.parametrize("warehouse_env, instance", [("duckdb", "sqlite"), ("postgres", "postgres")],
                         indirect=["warehouse_env"], ids=["duckdb-sqlite_instance", "postgres-postgres_instance"])
def test_no_personal_value_reaches_dagster_logs_or_output(pipeline_env, sandbox, request, tmp_path, monkeypatch,
                                                          capfd, caplog, instance):
    caplog.set_level(logging.DEBUG)
    database = None
    if instance == "postgres":
        home, database = request.getfixturevalue("postgres_instance")
    else:
        home = pipeline_env / "dagster_home"
    cli_output = io.StringIO()
    assert sync(out=cli_output) == 0, cli_output.getvalue()
    # Let malformed emails through: the pandera contracts (well-formed emails) fail and block the publish.
    rules = tmp_path / "lax.toml"
    rules.write_text("[emails]\nteacher_pattern = '.*'\nstudent_pattern = '.*'\ncheck_syntax = false\n")
    monkeypatch.setenv("ROSTER_RULES", str(rules))
    assert sync(out=cli_output) == 1
    assert "roster.students failed its pandera contract" in cli_output.getvalue()
    monkeypatch.delenv("ROSTER_RULES")
    captured = capfd.readouterr()

    # The failed checks exist and name the failing records by id.
    failing_ids = {student_id for (student_id,) in warehouse_query(
        "select student_id from roster_build.students where email is not null and email not like '%_@_%._%'")}
    assert failing_ids
    with DagsterInstance.get() as dagster:
        key = AssetCheckKey(AssetKey(["roster", "students"]), "pandera_contract")
        record = dagster.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    evaluation = record.event.dagster_event.event_specific_data
    assert evaluation.passed is False
    failures = evaluation.metadata["failures"].value
    assert "str_matches" in failures and "| email |" in failures and "DATAFRAME_CHECK" in failures
    assert any(student_id in failures for student_id in failing_ids)

    values, skipped = served_personal_values()
    searched = sum(len(v) for v in values.values())
    assert searched > 1000 and all(len(v) > 20 for v in values.values()), {k: len(v) for k, v in values.items()}

    haystacks = dagster_home_text(home)
    if instance == "sqlite":  # runs, event logs and schedules are SQLite files there
        assert sum(name.endswith(".db (rows)") for name in haystacks) >= 3
    if database:
        haystacks["postgres instance database"], columns = postgres_instance_text(database)
        assert columns > 20
    dagster_text = "\n".join(haystacks.values())
    # The search looks where the check results are: the failing ids are in the instance's storage.
    assert any(student_id in dagster_text for student_id in failing_ids)
    haystacks |= {"stdout": captured.out, "stderr": captured.err, "CLI output": cli_output.getvalue(),
                  "Python logging": caplog.text + "\n".join(str(r.args) for r in caplog.records)}
    assert len(caplog.records) > 20  # logging was captured (paging progress, Dagster's own lines)

    found = leaks(values, haystacks)
    print(f"[{instance} instance] searched {searched} personal values "
          f"({', '.join(f'{len(v)} {k}s' for k, v in values.items())}) in {len(haystacks)} places "
          f"({sum(map(len, haystacks.values())):,} characters); found {len(found)}; not searched: "
          f"{', '.join(f'{n} {why}' for why, n in skipped.items())}")
    assert found == []

    # Positive control: the same values are in the warehouse, where they belong.
    roster = "\n".join(" ".join(str(v) for v in row) for row in warehouse_query(
        "select first_name, last_name, email, birth_date, state_id from roster.students"))
    present = {kind: sum(any(s in roster for s in spellings(v)) for v in group) for kind, group in values.items()}
    print(f"positive control: {present} of them are in roster.students")
    assert present["email"] > 300 and present["birth date"] > 300 and present["state id"] > 500
    assert present["name part"] > 50
