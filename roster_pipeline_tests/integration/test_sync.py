"""Full syncs through Dagster into a real DuckDB file: counts, district isolation, secrets."""

import io
from pathlib import Path

import pytest
from dagster import DagsterInstance

from roster_pipeline.clever.source import raw_tables
from roster_pipeline.cli import main
from roster_pipeline.cli.sync import sync
from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.server import start_sandbox
from roster_pipeline_tests.fixtures.services import served
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS, warehouse_query


def district_counts(data_dir: Path, district_id: str) -> dict[str, int]:
    return {t: warehouse_query(f"select count(*) from clever_raw.{t} where district_id = ?", [district_id])[0][0]
            for t in raw_tables()}


def district_fingerprint(data_dir: Path, district_id: str) -> dict[str, list]:
    """Every row of a district, per raw table, in a stable order."""
    return {t: sorted(map(repr, warehouse_query(f"select * from clever_raw.{t} where district_id = ?", [district_id])))
            for t in raw_tables()}


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_sync_loads_every_collection_of_two_districts_as_served(pipeline_env, sandbox):
    out = io.StringIO()
    assert sync(out=out) == 0, out.getvalue()
    assert "2 of 2 districts synced" in out.getvalue()
    base = sandbox.env()["CLEVER_API_BASE_URL"]
    for spec in sandbox.data.specs:
        expected = served(base, spec.token)
        assert district_counts(pipeline_env, spec.id) == expected
        assert expected["students"] > 300 and expected["section_students"] > expected["students"] * 3
    # Runs are recorded in the instance with the district as partition, so the UI shows them.
    instance = DagsterInstance.get()
    runs = instance.get_runs()
    assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(s.id for s in sandbox.data.specs)
    assert all(r.tags["roster/trigger"] == "manual" for r in runs)
    assert sorted(instance.get_dynamic_partitions("district")) == sorted(s.id for s in sandbox.data.specs)


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_refreshing_one_district_replaces_its_slice_and_leaves_the_other_untouched(pipeline_env, sandbox, monkeypatch):
    assert sync(out=io.StringIO()) == 0
    first, second = sandbox.data.specs
    before_second = district_fingerprint(pipeline_env, second.id)
    # The same seed with fewer students: the same districts and tokens, each one smaller.
    smaller = start_sandbox(SandboxData(seed=7, districts=2, students=300))
    try:
        for key, value in smaller.env().items():
            monkeypatch.setenv(key, value)
        # Halving a district trips the mass-change guard (tested below); approved here.
        assert sync([first.id], accept_mass_change=True, out=io.StringIO()) == 0
        expected_first = served(smaller.env()["CLEVER_API_BASE_URL"], first.token)
    finally:
        smaller.shutdown()
        smaller.server_close()
    assert district_counts(pipeline_env, first.id) == expected_first
    assert expected_first["students"] == 300  # shrank from 600: removed students are gone, no leftovers
    assert district_fingerprint(pipeline_env, second.id) == before_second


def test_tokens_never_reach_logs_storage_or_the_warehouse(pipeline_env, sandbox, capfd):
    assert sync(out=io.StringIO()) == 0
    tokens = [spec.token.encode() for spec in sandbox.data.specs] + [b"sandbox-secret"]
    captured = capfd.readouterr()
    for token in tokens:
        assert token not in (captured.out + captured.err).encode()
    files = [p for p in pipeline_env.rglob("*") if p.is_file()]
    assert any(p.name == "warehouse.duckdb" for p in files) and any(p.suffix == ".db" for p in files)
    leaks = [str(p) for p in files for token in tokens if token in p.read_bytes()]
    assert leaks == []
    instance = DagsterInstance.get()
    for run in instance.get_runs():
        text = str(run.run_config) + str(run.tags)
        for record in instance.all_logs(run.run_id):
            text += str(record)
        for token in tokens:
            assert token.decode() not in text


def test_sync_of_an_unknown_district_fails_fast_with_one_sentence(pipeline_env, capsys):
    assert main(["sync", "--district", "f" * 24]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--district" in err and "no Clever token" in err


def test_bad_warehouse_setting_fails_fast_naming_the_variable(pipeline_env, capsys, monkeypatch):
    monkeypatch.setenv("ROSTER_WAREHOUSE", "mysql://nope")
    assert main(["sync"]) == 2
    assert "ROSTER_WAREHOUSE" in capsys.readouterr().err


def test_a_failing_district_makes_sync_exit_non_zero(pipeline_env, sandbox, monkeypatch):
    first = sandbox.data.specs[0]
    monkeypatch.setenv("CLEVER_DISTRICT_TOKENS", f"{first.id}=revoked-token")
    out = io.StringIO()
    assert sync(out=out) == 1
    assert "refused the district token (401)" in out.getvalue()
    assert "revoked-token" not in out.getvalue()


def published_counts(district_id: str) -> dict[str, int]:
    return {t: warehouse_query(f"select count(*) from roster.{t} where district_id = ?", [district_id])[0][0]
            for t in ("students", "teachers", "sections", "enrollments", "rejected_records")}


def test_mass_change_guard_blocks_a_halved_district_until_approved(pipeline_env, sandbox, monkeypatch):
    assert sync(out=io.StringIO()) == 0  # first publish: exempt
    first = sandbox.data.specs[0]
    before = published_counts(first.id)
    smaller = start_sandbox(SandboxData(seed=7, districts=2, students=300))
    try:
        for key, value in smaller.env().items():
            monkeypatch.setenv(key, value)
        out = io.StringIO()
        assert sync([first.id], out=out) == 1
        assert "roster/students:mass_change_guard failed: students:" in out.getvalue()
        assert "publish blocked" in out.getvalue() and "--accept-mass-change" in out.getvalue()
        assert published_counts(first.id) == before  # analysts still see the previous version
        assert sync([first.id], accept_mass_change=True, out=io.StringIO()) == 0
    finally:
        smaller.shutdown()
        smaller.server_close()
    after = published_counts(first.id)
    assert after["students"] < before["students"] * 0.6


def test_small_changes_pass_the_guard(pipeline_env, sandbox, monkeypatch):
    assert sync(out=io.StringIO()) == 0
    first = sandbox.data.specs[0]
    monkeypatch.setenv("ROSTER_MASS_CHANGE_MIN_ROWS", "1000")  # a 50 % drop of a small district is churn here
    smaller = start_sandbox(SandboxData(seed=7, districts=2, students=300))
    try:
        for key, value in smaller.env().items():
            monkeypatch.setenv(key, value)
        assert sync([first.id], out=io.StringIO()) == 0
    finally:
        smaller.shutdown()
        smaller.server_close()


READER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("select count(*) from roster.students").fetchone()[0], flush=True)
sys.stdin.readline()  # hold the file open until the test has synced
print(con.execute("select count(*) from roster.students").fetchone()[0], flush=True)
"""


def test_an_analyst_holding_the_duckdb_file_open_never_breaks_a_sync(pipeline_env, sandbox, monkeypatch):
    import subprocess
    import sys

    assert sync(out=io.StringIO()) == 0
    analysts = pipeline_env / "warehouse_for_analysts.duckdb"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(analysts)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        before = int(reader.stdout.readline())
        smaller = start_sandbox(SandboxData(seed=7, districts=2, students=300))
        try:
            for key, value in smaller.env().items():
                monkeypatch.setenv(key, value)
            out = io.StringIO()
            assert sync(accept_mass_change=True, out=out) == 0, out.getvalue()
        finally:
            smaller.shutdown()
            smaller.server_close()
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert int(reader.stdout.readline()) == before  # its snapshot stayed whole and readable
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    assert reader.returncode == 0
    import duckdb

    with duckdb.connect(str(analysts), read_only=True) as con:  # a new connection sees the new version
        after = con.execute("select count(*) from roster.students").fetchone()[0]
    assert after == warehouse_query("select count(*) from roster.students")[0][0] < before


FAULTS = {
    "429-storm": {"status": 429, "count": 5, "reset_in": 1},
    "5xx-burst": {"status": 503, "count": 4},
    "dropped-connection": {"status": "drop", "count": 3},
    "truncated-page": {"status": "truncate", "count": 3},
    "slow-page-past-timeout": {"status": "slow", "delay": 2.5, "count": 2},
}


def published_rows(district_id: str) -> dict[str, list]:
    tables = ("schools", "students", "teachers", "sections", "enrollments", "demographics", "admins",
              "rejected_records", "school_roster_summary")
    return {t: sorted(map(repr, warehouse_query(f"select * from roster.{t} where district_id = ?", [district_id])))
            for t in tables}


@pytest.mark.parametrize("fault", list(FAULTS.values()), ids=list(FAULTS))
def test_a_sync_through_transient_faults_publishes_what_a_clean_sync_does(pipeline_env, clean_faults, monkeypatch, fault):
    monkeypatch.setenv("CLEVER_TIMEOUT_SECONDS", "1")
    first = clean_faults.data.specs[0]
    assert sync([first.id], out=io.StringIO()) == 0
    clean = published_rows(first.id)
    clean_faults.faults.configure(fault)
    out = io.StringIO()
    assert sync([first.id], out=out) == 0, out.getvalue()
    assert clean_faults.faults.count == 0  # every injected fault was met and retried
    assert published_rows(first.id) == clean


def test_a_sync_that_cannot_finish_leaves_the_published_tables_intact(pipeline_env, clean_faults):
    first = clean_faults.data.specs[0]
    assert sync([first.id], out=io.StringIO()) == 0
    before = published_rows(first.id)
    # Half way through the load, Clever starts refusing every request (not a transient error).
    clean_faults.faults.configure({"status": 400, "count": 10_000, "after": 5})
    out = io.StringIO()
    assert sync([first.id], out=out) == 1
    assert "Clever answered 400" in out.getvalue()
    assert published_rows(first.id) == before
