"""Identities that survive Clever's re-issued ids (issue 20, part 4), on DuckDB and Postgres.

A sandbox district's student gets a new id because their SIS id changed (matched on the state
id, in the same sync), another comes back after a long absence under a new id (matched on the
SIS id against the history), and a third new id contradicts its match (another birth date): not
linked, IDENTITY_AMBIGUOUS with both ids.
"""

from __future__ import annotations

import io

import httpx
import pytest

from roster_pipeline_tests.fixtures.engine import sync
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS, warehouse_query


@pytest.fixture
def district(own_sandbox, warehouse_env):
    return own_sandbox(seed=31, students=300)


def synced(**options) -> None:
    out = io.StringIO()
    assert sync(out=out, **options) == 0, out.getvalue()


def published_students() -> dict[str, tuple]:
    return {r[0]: r[1:] for r in warehouse_query("select student_id, person_key, sis_id, state_id from roster.students")}


def withdraw(spec, student_id: str) -> None:
    """A student leaves (Clever deletes the user), as a school day does."""
    obj = spec.build("student", spec.parse_id(student_id)[1])
    spec.changes.patches[student_id] = None
    spec.changes.withdrawn_on[student_id] = 0
    spec.events.record("student", "deleted", obj)


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_a_reissued_id_keeps_its_person_key_and_history(district):
    spec = district.data.specs[0]
    synced()
    before = published_students()
    first, second = sorted(before)[10], sorted(before)[20]
    third = sorted(r[0] for r in warehouse_query("select student_id from roster.students where birth_date is not null"))[30]

    # 1. An SIS id change: same sync, matched on the state id; an events (incremental) run.
    post = lambda **body: httpx.post(f"{district.base_url}/sandbox/reissue-id", json=body,  # noqa: E731
                                     timeout=30).raise_for_status().json()["new_ids"][spec.id]
    new_first = post(student=first, sis_id="S-CHANGED-1")
    synced(incremental=True)
    now = published_students()
    assert first not in now and now[new_first][0] == first and now[new_first][1] == "S-CHANGED-1"
    assert warehouse_query("select entity, old_id, new_id, matched_on, person_key from roster.identity_links") == [
        ("student", first, new_first, "state_id", first)]
    changes = warehouse_query("select record_id, change, changed_columns, detail from roster.roster_changes "
                              "where entity = 'student' and published_at = (select max(published_at) from roster.publishes)")
    assert changes == [(new_first, "changed", "student_id", f"Clever id re-issued (was {first}; same state_id)")]
    assert warehouse_query("select students_added, students_removed, students_changed from roster.publishes "
                           "order by published_at desc limit 1") == [(0, 0, 1)]
    versions = warehouse_query("select student_id, valid_to is null from roster.students_history where person_key = ? "
                               "order by valid_from", [first])
    assert versions == [(first, False), (new_first, True)]  # one person, two ids, one history

    # 2. A return after a long absence: the old id left in an earlier sync; matched on the SIS id; full refresh.
    withdraw(spec, second)
    synced(incremental=True)
    assert second not in published_students()
    new_second = post(student=second)
    synced()
    assert published_students()[new_second][0] == second
    assert ("student", second, new_second, "sis_id") in {r[:4] for r in warehouse_query(
        "select entity, old_id, new_id, matched_on from roster.identity_links")}

    # 3. A match that contradicts the birth date: not linked, kept as a new person, explained.
    new_third = post(student=third)
    index = spec.parse_id(new_third)[1]
    roles = spec.build("student", index)["roles"]
    roles["student"]["dob"] = "1/1/2001"
    spec.changes.patches[new_third] = {"roles": roles}
    synced()
    assert published_students()[new_third][0] == new_third  # its own person
    assert not warehouse_query("select 1 from roster.identity_links where new_id = ?", [new_third])
    (detail,) = warehouse_query("select detail from roster.rejected_records where reason_code = 'IDENTITY_AMBIGUOUS' "
                                "and action = 'not_linked' and record_id = ?", [new_third])
    assert third in detail[0] and "another birth date" in detail[0]
    withdraw(spec, sorted(before)[40])
    synced(incremental=True)  # later runs still say so
    assert warehouse_query("select count(*) from roster.rejected_records where reason_code = 'IDENTITY_AMBIGUOUS'") == [(1,)]
