"""One bad value never stops a district, and never stops all districts (issue 27, section 4).

Each case is a hand-made district served by the sandbox: a malformed Clever event (no id, an id
that is not a string, not an object, naming no object), a NUL character in names and id lists
(Postgres text cannot hold one), a student, teacher or section without an id. The district
syncs and publishes; what cannot be kept is counted in the run log or listed in
`rejected_records`, on DuckDB and Postgres alike.
"""

from __future__ import annotations

import copy
import io

import pytest
from dagster import DagsterInstance, build_sensor_context

from roster_pipeline.cli.sync import sync
from roster_pipeline.defs.automation.sensors import build_events_sensor
from roster_pipeline.defs.constants import BATCH_OP
from roster_pipeline.defs.resources import CleverResource
from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.handmade_district import HandmadeDistrict
from roster_pipeline.sandbox.server import start_sandbox
from roster_pipeline_tests.fixtures.dirty_district import (
    DISTRICT_ID,
    TOKEN,
    build_objects,
    oid,
    section,
    student,
    teacher,
)
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS, warehouse_query

OTHER_ID, OTHER_TOKEN = "0e0e0e0e01" + "0" * 14, "other-district-token"
NO_ID = {"type": "users.updated", "data": {"object": {"id": oid("student", 1)}}}
MALFORMED_EVENTS = [
    {"id": "0d0d0d0dee00000000000000", "type": "users.updated", "data": None},  # names no object
    {"id": 12345, "type": "users.updated", "data": {"object": {"id": oid("student", 1)}}},  # an id that is a number
    "users.updated",  # not an object
    {"id": "", "type": "sections.deleted"},  # an empty id
    NO_ID,  # the newest event has no id (the old code read the id of each page's last event)
]


@pytest.fixture
def serve(tmp_path, monkeypatch, warehouse_env):
    """`serve(*districts)`: a sandbox serving these hand-made districts, the installation pointed at it."""
    servers = []

    def start(*districts: HandmadeDistrict):
        servers.append(start_sandbox(SandboxData(districts=0, handmade=list(districts))))
        for name in ("CLEVER_CLIENT_ID", "CLEVER_CLIENT_SECRET", "ROSTER_RULES"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("DAGSTER_HOME", raising=False)  # sync makes its own under the data folder
        monkeypatch.setenv("CLEVER_API_BASE_URL", servers[-1].env()["CLEVER_API_BASE_URL"])
        monkeypatch.setenv("CLEVER_DISTRICT_TOKENS", ",".join(f"{d.id}={d.token}" for d in districts))
        monkeypatch.setenv("ROSTER_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.chdir(tmp_path)
        return servers[-1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def synced(**options) -> str:
    """Sync; the latest run's log (it must have succeeded)."""
    out = io.StringIO()
    assert sync(out=out, **options) == 0, out.getvalue()
    instance = DagsterInstance.get()
    run = instance.get_runs(limit=1)[0]
    return "\n".join(e.user_message or "" for e in instance.all_logs(run.run_id))


def district(objects: dict[str, list[dict]] | None = None) -> HandmadeDistrict:
    return HandmadeDistrict(DISTRICT_ID, TOKEN, objects or copy.deepcopy(build_objects()))


def published(sql: str) -> list[tuple]:
    return sorted(warehouse_query(sql), key=repr)


# -- events --------------------------------------------------------------------------------------

def test_malformed_events_are_skipped_and_counted_in_a_full_refresh_and_an_incremental_sync(serve):
    served = district()
    served.upsert("student", {**served.objects["student"][0], "email": "first.event@students.lincoln.k12.us"})
    for event in MALFORMED_EVENTS:  # the newest events are malformed: the cursor is the last good one
        served.events.record_malformed(event)
    serve(served)
    log = synced()
    # The full refresh only needs the newest event's id: the one with an id but no object is a fine cursor.
    assert "4 malformed Clever events skipped" in log
    assert warehouse_query("select count(*) from clever_raw.students")[0][0] == len(served.objects["student"])

    served.upsert("student", student(30, "2", first="Late", last="Arrival"))
    served.events.record_malformed(NO_ID)
    served.events.record_malformed("users.deleted")
    log = synced(incremental=True)
    # Read after the cursor: the four malformed events after it again (no id to move past), and two new ones.
    assert "applying 1 Clever events" in log and "6 malformed Clever events skipped" in log
    assert warehouse_query("select first_name, last_name from roster.students where student_id = ?",
                           [oid("student", 30)]) == [("Late", "Arrival")]


def test_the_events_sensor_requests_every_other_district_when_one_serves_a_malformed_event(serve, tmp_path):
    broken, other = district(), HandmadeDistrict(OTHER_ID, OTHER_TOKEN, {})
    good = broken.upsert("student", student(30, "2"))
    broken.events.record_malformed(NO_ID)  # the last event of the page
    other.upsert("district", {"id": OTHER_ID, "name": "Other USD"})
    server = serve(broken, other)
    clever = CleverResource(api_base_url=server.env()["CLEVER_API_BASE_URL"],
                            district_tokens=f"{DISTRICT_ID}={TOKEN},{OTHER_ID}={OTHER_TOKEN}")
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        instance.add_dynamic_partitions("district", [DISTRICT_ID, OTHER_ID])
        result = build_events_sensor(300, batch_size=25)(build_sensor_context(instance=instance,
                                                                              resources={"clever": clever}))
    (request,) = result.run_requests
    assert sorted(request.run_config["ops"][BATCH_OP]["config"]["districts"]) == sorted([DISTRICT_ID, OTHER_ID])
    assert result.cursor and good["id"] in result.cursor  # the broken district's cursor is its last good event


# -- NUL characters ------------------------------------------------------------------------------

@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_nul_characters_are_removed_alike_on_duckdb_and_postgres(serve, warehouse_env):
    objects = build_objects()
    kid = next(s for s in objects["student"] if s["id"] == oid("student", 13))
    kid["name"]["first"] = "Zo\x00ë"
    math = next(s for s in objects["section"] if s["id"] == oid("section", 1))
    math["name"] = "Math K\x00 - P1"
    math["students"] = [*math["students"][:-1], math["students"][-1] + "\x00"]  # student 13's id, with a NUL
    serve(district(objects))
    log = synced()
    assert warehouse_query("select first_name from roster.students where student_id = ?",
                           [oid("student", 13)]) == [("Zoë",)]
    assert warehouse_query("select name from roster.sections where section_id = ?", [oid("section", 1)]) == [
        ("Math K - P1",)]
    # The id in the section's list, cleaned, is student 13's: the enrollment is kept.
    assert (oid("student", 13),) in warehouse_query("select student_id from roster.enrollments where section_id = ?",
                                                    [oid("section", 1)])
    assert "NUL characters removed from 1 values (first_name: 1)" in log  # counts only, no value
    assert "NUL characters removed from 2 values (name: 1, students: 1)" in log


# -- records without an id -----------------------------------------------------------------------

@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_records_without_an_id_are_rejected_and_the_district_publishes(serve, warehouse_env):
    objects = build_objects()
    objects["student"] += [{**student(40, "3"), "id": None}, {**student(41, "4"), "id": None}]
    del objects["student"][-1]["roles"]["student"]["sis_id"]  # neither a Clever id nor a SIS id
    objects["teacher"].append({**teacher(40, "Nia", "Noid", "nia.noid@lincoln.k12.us"), "id": None})
    objects["section"].append({**section(40, "Math 3 - P7", "math", "3", 1, [13]), "id": None})
    serve(district(objects))
    synced()
    assert published("select entity, record_id, reason_code, detail from roster.rejected_records "
                     "where reason_code = 'ID_MISSING'") == sorted([
        ("section", "sis_id:SEC40", "ID_MISSING", "the record has no Clever id (SIS id SEC40)"),
        ("student", "(no id, no sis_id)", "ID_MISSING", "the record has no Clever id (SIS id missing too)"),
        ("student", "sis_id:STU40", "ID_MISSING", "the record has no Clever id (SIS id STU40)"),
        ("teacher", "sis_id:T40", "ID_MISSING", "the record has no Clever id (SIS id T40)"),
    ], key=repr)
    # The rest of the district is published as without them.
    assert warehouse_query("select count(*) from roster.students")[0][0] == 6
    assert warehouse_query("select count(*) from roster.students where student_id is null")[0][0] == 0
    assert warehouse_query("select count(*) from roster.publishes")[0][0] == 1
