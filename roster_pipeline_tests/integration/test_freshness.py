"""Keeping districts fresh: nightly schedule, discovery sensor, Clever events, forget."""

from __future__ import annotations

import copy
import io
import json
from datetime import datetime, timezone

import duckdb
import httpx
import pytest
from dagster import DagsterInstance, build_schedule_context, build_sensor_context

from roster_pipeline.clever.source import raw_tables
from roster_pipeline.cli import main
from roster_pipeline.cli.sync import sync
from roster_pipeline.defs.automation.schedules import build_nightly_schedule
from roster_pipeline.defs.automation.sensors import build_discovery_sensor, build_events_sensor
from roster_pipeline.defs.resources import CleverResource, WarehouseResource
from roster_pipeline_tests.fixtures.dirty_district import DISTRICT_ID, ROSTER_TABLES, S2, oid, section, student

A, B, C = "a" * 24, "b" * 24, "c" * 24
UTC = timezone.utc


def tokens(*ids: str) -> CleverResource:
    return CleverResource(district_tokens=",".join(f"{d}=token-{d[:4]}" for d in ids))


# -- nightly schedule ------------------------------------------------------------------------

@pytest.fixture
def instance(tmp_path):
    """A real (SQLite) Dagster instance in a temporary folder."""
    with DagsterInstance.local_temp(str(tmp_path)) as temporary:
        yield temporary


def warehouse_at(tmp_path) -> WarehouseResource:
    return WarehouseResource(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}", dlt_dir=str(tmp_path / "dlt"))


def batched(requests) -> list[list[str]]:
    return [r.run_config["ops"]["sync_districts"]["config"]["districts"] for r in requests]


def test_nightly_tick_requests_batches_of_districts_with_a_run_key_per_night(instance, tmp_path):
    instance.add_dynamic_partitions("district", [A, B, C])
    schedule = build_nightly_schedule("0 0 * * *", "America/Los_Angeles", batch_size=2)
    context = build_schedule_context(instance=instance, resources={"clever": tokens(A, B, C),
                                                                   "warehouse": warehouse_at(tmp_path)},
                                     scheduled_execution_time=datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
    requests = list(schedule(context))
    assert batched(requests) == [[A, B], [C]]
    assert [r.run_key for r in requests] == [f"nightly:2026-11-02:{A}", f"nightly:2026-11-02:{C}"]
    assert all(r.tags["roster/trigger"] == "schedule" for r in requests)
    assert all(r.run_config["ops"]["sync_districts"]["config"]["incremental"] is False for r in requests)


def test_the_nightly_refresh_skips_a_district_clever_has_paused(instance, tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:  # what the publishes left in roster.districts
        con.execute("create schema roster; create table roster.districts (district_id varchar, name varchar, "
                    "published_at timestamptz, state varchar, pause_start timestamptz, pause_end timestamptz)")
        con.execute("insert into roster.districts values (?, 'A', now(), 'success', null, null), "
                    "(?, 'B', now(), 'paused', now() - interval 3 day, now() + interval 60 day), "
                    "(?, 'C', now(), 'success', now() - interval 90 day, now() - interval 10 day)", [A, B, C])
    instance.add_dynamic_partitions("district", [A, B, C])
    context = build_schedule_context(instance=instance, resources={"clever": tokens(A, B, C),
                                                                   "warehouse": warehouse_at(tmp_path)},
                                     scheduled_execution_time=datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
    assert batched(build_nightly_schedule("0 0 * * *", "UTC", batch_size=25)(context)) == [[A, C]]


def test_schedule_honours_the_timezone_across_the_daylight_saving_change(instance, tmp_path):
    from dagster._utils.schedules import cron_string_iterator

    start = datetime(2026, 10, 30, 12, 0, tzinfo=UTC).timestamp()
    ticks = cron_string_iterator(start, "0 0 * * *", "America/Los_Angeles")
    utc_hours = [next(ticks).astimezone(UTC).strftime("%m-%d %H:%M") for _ in range(4)]
    # US daylight saving time ends on 1 November 2026: midnight moves from 07:00 to 08:00 UTC.
    assert utc_hours == ["10-31 07:00", "11-01 07:00", "11-02 08:00", "11-03 08:00"]
    # The run key holds the local night, even when the tick is on the next UTC day.
    instance.add_dynamic_partitions("district", [A])
    late = build_nightly_schedule("30 23 * * *", "America/Los_Angeles", batch_size=25)
    context = build_schedule_context(instance=instance, resources={"clever": tokens(A), "warehouse": warehouse_at(tmp_path)},
                                     scheduled_execution_time=datetime(2026, 11, 2, 7, 30, tzinfo=UTC))
    assert list(late(context))[0].run_key == f"nightly:2026-11-01:{A}"


# -- district discovery ----------------------------------------------------------------------

def test_discovery_adds_new_districts_and_stops_syncing_removed_ones(instance, tmp_path):
    sensor = build_discovery_sensor(300)

    def tick(clever: CleverResource, cursor: str | None):
        result = sensor(build_sensor_context(instance=instance, resources={"clever": clever}, cursor=cursor))
        for request in result.dynamic_partitions_requests:  # what the daemon does with the result
            instance.add_dynamic_partitions("district", list(request.partition_keys))
        return result

    first = tick(tokens(A, B), None)
    assert sorted(r.partition_key for r in first.run_requests) == [A, B]
    assert all(r.tags["roster/trigger"] == "discovery" for r in first.run_requests)
    second = tick(tokens(A, B, C), first.cursor)
    assert [r.partition_key for r in second.run_requests] == [C]
    assert sorted(instance.get_dynamic_partitions("district")) == [A, B, C]
    third = tick(tokens(A, C), second.cursor)  # B de-authorized the app
    assert third.run_requests == [] and json.loads(third.cursor) == [B]
    nightly = build_nightly_schedule("0 0 * * *", "UTC", batch_size=25)(build_schedule_context(
        instance=instance, resources={"clever": tokens(A, C), "warehouse": warehouse_at(tmp_path)},
        scheduled_execution_time=datetime(2026, 11, 3, tzinfo=UTC)))
    assert batched(nightly) == [[A, C]]


def test_discovery_through_the_oauth_token_endpoint(sandbox, instance):
    env = sandbox.env()
    clever = CleverResource(oauth_tokens_url=env["CLEVER_OAUTH_TOKENS_URL"], client_id=env["CLEVER_CLIENT_ID"],
                            client_secret=env["CLEVER_CLIENT_SECRET"])
    result = build_discovery_sensor(300)(build_sensor_context(instance=instance, resources={"clever": clever}))
    assert sorted(r.partition_key for r in result.run_requests) == sorted(s.id for s in sandbox.data.specs)


# -- Clever events ---------------------------------------------------------------------------

def snapshot(data_dir) -> dict[str, list]:
    """Every raw and roster row of the warehouse (the hard-delete flag column left out)."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        tables = [f"clever_raw.{t}" for t in raw_tables()] + [f"roster.{t}" for t in ROSTER_TABLES]
        result = {}
        for table in tables:
            columns = [r[0] for r in con.execute(f"describe {table}").fetchall() if r[0] != "_deleted"]
            rows = con.execute(f"select {', '.join(columns)} from {table}").fetchall()
            result[table] = sorted(rows, key=repr)
        return result


def run_logs(data_dir) -> str:
    instance = DagsterInstance.get()
    run = instance.get_runs(limit=1)[0]
    return "\n".join(e.user_message or "" for e in instance.all_logs(run.run_id))


def synced(**options) -> None:
    out = io.StringIO()
    assert sync(out=out, **options) == 0, out.getvalue()


def change_every_collection(district) -> None:
    """Created, updated and deleted objects of every collection the events cover."""
    new_student = student(40, "2", first="Newly", last="Enrolled")
    district.upsert("student", new_student)
    grade_change = copy.deepcopy(district.find(("student",), oid("student", 2)))
    grade_change["roles"]["student"]["grade"] = "Other"
    district.upsert("student", grade_change)
    district.delete("student", oid("student", 13))
    teacher = copy.deepcopy(district.find(("teacher",), oid("teacher", 1)))
    teacher["email"] = "ana.lopez.new@lincoln.k12.us"
    district.upsert("teacher", teacher)
    district.delete("staff", oid("staff", 2))
    district.upsert("district_admin", {**district.objects["district_admin"][0], "id": oid("district_admin", 2),
                                       "email": "second@district.org"})
    district.upsert("section", section(9, "Math 1 - P3", "math", "1", 1, [40, 1]))
    ela = copy.deepcopy(district.find(("section",), oid("section", 2)))
    ela["students"] = [oid("student", 40)]
    district.upsert("section", ela)
    district.delete("section", oid("section", 3))
    district.upsert("school", {**district.find(("school",), S2), "name": "Roosevelt High (renamed)"})
    district.upsert("school", {**district.objects["school"][0], "id": oid("school", 3), "name": "Short-lived"})
    district.delete("school", oid("school", 3))
    district.upsert("course", {"id": oid("course", 2), "district": DISTRICT_ID, "name": "ELA 1", "number": "E1"})
    district.upsert("term", {**district.objects["term"][0], "name": "Fall 2026 (extended)"})


def test_events_of_every_collection_give_the_same_tables_as_a_full_refresh(dirty):
    district, data_dir = dirty
    synced()
    change_every_collection(district)
    synced(incremental=True)
    assert f"applying {len(district.events.events)} Clever events" in run_logs(data_dir)
    incremental = snapshot(data_dir)
    synced()  # full refresh of the same data
    full = snapshot(data_dir)
    for table in full:
        assert incremental[table] == full[table], table
    # The changes really arrived: spot checks on each collection.
    students = {r[1] for r in full["roster.students"]}
    assert oid("student", 40) in students and oid("student", 13) not in students and oid("student", 2) not in students
    assert ("ana.lopez.new@lincoln.k12.us",) in {(r[6],) for r in full["roster.teachers"]}
    assert {r[1] for r in full["clever_raw.sections"]} == {oid("section", n) for n in (1, 2, 4, 5, 6, 7, 8, 9)}
    assert oid("school", 3) not in {r[1] for r in full["clever_raw.schools"]}


def test_replaying_the_same_events_changes_nothing(dirty):
    from roster_pipeline.clever.events import Changes, clever_events_source, stored_cursor
    from roster_pipeline.warehouse.connection import Warehouse

    district, data_dir = dirty
    synced()
    warehouse = Warehouse(f"duckdb:///{data_dir / 'warehouse.duckdb'}", data_dir / "dlt")
    before_changes = stored_cursor(warehouse.raw_pipeline(DISTRICT_ID))
    change_every_collection(district)
    synced(incremental=True)
    once = snapshot(data_dir)
    # Move the cursor back to before the changes, and apply the same events again.
    warehouse.raw_pipeline(DISTRICT_ID).run(clever_events_source(DISTRICT_ID, Changes(), before_changes[1]))
    synced(incremental=True)
    assert "applying" in run_logs(data_dir)
    assert snapshot(data_dir) == once


def test_expired_cursor_and_events_turned_off_fall_back_to_a_full_refresh(dirty):
    district, data_dir = dirty
    district.upsert("term", {**district.objects["term"][0], "name": "Fall 2026 v2"})  # a cursor to expire
    synced()
    district.upsert("teacher", {**district.find(("teacher",), oid("teacher", 7)), "email": "gia@roosevelt.k12.us"})
    district.events.expire()  # 30 days later: the stored cursor is gone from Clever
    synced(incremental=True)
    assert "full refresh instead of events: the stored event cursor is past Clever's 30-day retention" in run_logs(data_dir)
    assert ("gia@roosevelt.k12.us",) in {(r[6],) for r in snapshot(data_dir)["roster.teachers"]}

    district.events.enabled = False
    district.upsert("teacher", {**district.find(("teacher",), oid("teacher", 7)), "email": "gia.r@roosevelt.k12.us"})
    synced(incremental=True)
    assert "full refresh instead of events: Clever events are turned off for this district" in run_logs(data_dir)
    assert ("gia.r@roosevelt.k12.us",) in {(r[6],) for r in snapshot(data_dir)["roster.teachers"]}


def test_an_incremental_build_checks_its_changed_rows_and_a_failing_one_blocks_the_publish(dirty, tmp_path,
                                                                                        monkeypatch):
    from dagster import AssetCheckKey, AssetKey

    district, data_dir = dirty
    rules = tmp_path / "lax.toml"  # lets any teacher email through: only the contract stops a malformed one
    rules.write_text("[emails]\nteacher_pattern = '.*'\ncheck_syntax = false\n")
    monkeypatch.setenv("ROSTER_RULES", str(rules))
    teacher_4 = district.find(("teacher",), oid("teacher", 4))
    district.upsert("teacher", {**teacher_4, "email": "dev.patel@roosevelt.k12.us"})
    synced()
    published = snapshot(data_dir)["roster.teachers"]
    district.upsert("teacher", {**teacher_4, "email": "dev.patel-at-roosevelt"})
    out = io.StringIO()
    assert sync(out=out, incremental=True) == 1
    assert "incremental build of the records changed since the last publish" in run_logs(data_dir)
    assert "roster.teachers failed its pandera contract" in out.getvalue()
    key = AssetCheckKey(AssetKey(["roster", "teachers"]), "pandera_contract")
    record = DagsterInstance.get().event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    evaluation = record.event.dagster_event.event_specific_data
    assert not evaluation.passed and oid("teacher", 4) in evaluation.metadata["failures"].value
    assert evaluation.metadata["rows_checked"].value < len(published)  # the changed teachers, not the slice
    assert snapshot(data_dir)["roster.teachers"] == published  # the previous version stays


def test_a_first_incremental_sync_without_a_cursor_is_a_full_refresh(dirty):
    _, data_dir = dirty
    synced(incremental=True)
    assert "full refresh instead of events: no event cursor is stored yet (first sync)" in run_logs(data_dir)
    assert len(snapshot(data_dir)["roster.students"]) == 6


def test_events_sensor_brings_sandbox_changes_to_the_clean_tables(pipeline_env, sandbox):
    from roster_pipeline.definitions import build_definitions
    from roster_pipeline.defs.constants import BATCH_OP, DISTRICT_BATCH_JOB

    synced()
    env = sandbox.env()
    clever = CleverResource(api_base_url=env["CLEVER_API_BASE_URL"], oauth_tokens_url=env["CLEVER_OAUTH_TOKENS_URL"],
                            client_id=env["CLEVER_CLIENT_ID"], client_secret=env["CLEVER_CLIENT_SECRET"])
    with DagsterInstance.get() as instance:
        sensor = build_events_sensor(300, batch_size=1)
        quiet = sensor(build_sensor_context(instance=instance, resources={"clever": clever}))
        assert quiet.run_requests == []  # nothing changed since the full sync
        changes = httpx.post(f"{sandbox.base_url}/sandbox/advance-day", json={"share": 0.05}).json()["changes"]
        busy = sensor(build_sensor_context(instance=instance, resources={"clever": clever}, cursor=quiet.cursor))
        # batches of one (batch_size=1): one district_batch run per district with new events
        configs = [r.run_config["ops"][BATCH_OP]["config"] for r in busy.run_requests]
        assert sorted(d for c in configs for d in c["districts"]) == sorted(changes) and len(configs) == len(changes)
        assert all(c["incremental"] and c["trigger"] == "events" for c in configs)
        assert all(r.job_name == DISTRICT_BATCH_JOB and r.tags["roster/trigger"] == "events" for r in busy.run_requests)
        again = sensor(build_sensor_context(instance=instance, resources={"clever": clever}, cursor=busy.cursor))
        assert again.run_requests == []  # each new event is requested once
        together = build_events_sensor(300, batch_size=25)(
            build_sensor_context(instance=instance, resources={"clever": clever}, cursor=quiet.cursor))
        (request,) = together.run_requests  # the same districts in one warm run

        batch = build_definitions().resolve_job_def(DISTRICT_BATCH_JOB)
        assert batch.execute_in_process(run_config=request.run_config, tags=request.tags, instance=instance).success
        district_runs = [r for r in instance.get_runs() if r.tags.get("roster/batch")]
        assert sorted(r.tags["roster/district"] for r in district_runs) == sorted(changes)
        assert all(r.tags["roster/trigger"] == "events" for r in district_runs)
    spec = sandbox.data.specs[0]
    changed = [e["data"]["object"] for e in spec.events.events
               if e["type"] == "users.updated" and "teacher" in e["data"]["object"]["roles"]]
    assert changed
    with duckdb.connect(str(pipeline_env / "warehouse.duckdb"), read_only=True) as con:
        emails = {r[0] for r in con.execute("select email from clever_raw.teachers where district_id = ?", [spec.id]).fetchall()}
    assert {t["email"] for t in changed} <= emails


def test_forget_removes_a_district_everywhere(dirty, capsys):
    _, data_dir = dirty
    synced()
    assert main(["forget", "--district", DISTRICT_ID, "--yes"]) == 0
    assert "forgotten" in capsys.readouterr().out
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        tables = con.execute("select table_schema, table_name from information_schema.columns "
                             "where column_name = 'district_id'").fetchall()
        assert len(tables) > 20
        for schema, table in tables:
            assert con.execute(f"select count(*) from {schema}.{table} where district_id = ?",
                               [DISTRICT_ID]).fetchone()[0] == 0, table
        assert con.execute("select count(*) from clever_raw._dlt_pipeline_state where pipeline_name = ?",
                           [f"clever_{DISTRICT_ID}"]).fetchone()[0] == 0
    assert DISTRICT_ID not in DagsterInstance.get().get_dynamic_partitions("district")


def test_nightly_batch_runs_each_district_in_its_own_run_and_isolates_failures(pipeline_env, sandbox, monkeypatch):
    from dagster import AssetKey, DagsterRunStatus, RunsFilter

    from roster_pipeline.definitions import build_definitions
    from roster_pipeline.defs.automation.batch import batch_run_config
    from roster_pipeline.defs.constants import BATCH_TAG, DISTRICT_BATCH_JOB
    from roster_pipeline.settings import warehouse_url
    from roster_pipeline.warehouse.analyst_copy import analyst_file
    from roster_pipeline.warehouse.connection import Warehouse

    monkeypatch.setenv("DAGSTER_HOME", str(pipeline_env.parent))
    ids = [spec.id for spec in sandbox.data.specs]
    unknown = "d" * 24  # registered long ago, but Clever has no token for it now
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("district", [*ids, unknown])
        result = build_definitions().resolve_job_def(DISTRICT_BATCH_JOB).execute_in_process(
            run_config=batch_run_config([ids[0], unknown, ids[1]]), instance=instance, raise_on_error=False)
        assert not result.success  # the batch reports the district that failed...
        children = instance.get_runs(filters=RunsFilter(tags={BATCH_TAG: result.run_id}))
        # ...after syncing the district that came after it, each district in a run of its own
        assert {r.tags["roster/district"]: r.status for r in children} == {
            ids[0]: DagsterRunStatus.SUCCESS, unknown: DagsterRunStatus.FAILURE, ids[1]: DagsterRunStatus.SUCCESS}
        assert all(r.tags["roster/trigger"] == "schedule" and r.job_name == "district_sync" for r in children)
        assert instance.get_materialized_partitions(AssetKey(["roster", "published"])) == set(ids)
    # The analysts' file is refreshed once, at the end of the batch, with every district in it.
    with duckdb.connect(str(analyst_file(Warehouse(warehouse_url(), pipeline_env / "dlt"))), read_only=True) as con:
        assert {r[0] for r in con.execute("select distinct district_id from roster.students").fetchall()} == set(ids)
