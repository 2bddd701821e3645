"""One sandbox district through a school year (issue 20's "done when"), on DuckDB and Postgres.

A normal week of nightly and events syncs, Clever's summer pause, the rollover into a new school
year, a student whose id Clever re-issues, and a district admin who stops sharing a school. Along
the way: exactly the webhook messages expected (a failing webhook breaks nothing), the freshness
check red then green, `status` in each state, and `approve` releasing the blocked publish.
"""

from __future__ import annotations

import io
import json

import httpx
import pytest
from dagster import DagsterInstance

from roster_pipeline.cli import main
from roster_pipeline.cli.sync import sync
from roster_pipeline_tests.fixtures.operations import Receiver, evaluate_sensor, latest_freshness
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS, warehouse_query


@pytest.fixture
def district(own_sandbox, warehouse_env):
    return own_sandbox(seed=23, students=700)


def synced(expected: int = 0, **options) -> str:
    out = io.StringIO()
    assert sync(out=out, **options) == expected, out.getvalue()
    return out.getvalue()


def status(capsys) -> tuple[str, dict]:
    capsys.readouterr()
    assert main(["status"]) == 0
    line = capsys.readouterr().out.strip()
    assert main(["status", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    return line, listed


def freshness(instance):
    """The daily_freshness schedule's run, then the district's check as the UI shows it."""
    from roster_pipeline.definitions import build_definitions

    assert build_definitions().resolve_job_def("district_freshness").execute_in_process(instance=instance).success
    return latest_freshness(instance)


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_a_district_through_a_school_year(district, monkeypatch, capsys, tmp_path):
    control = lambda path, **body: httpx.post(f"{district.base_url}/sandbox/{path}", json=body,  # noqa: E731
                                              timeout=60).raise_for_status().json()
    receiver = Receiver()
    monkeypatch.setenv("ROSTER_ALERT_WEBHOOK_URL", receiver.url)

    # A normal week: a full sync, then a school day and an events sync each night.
    synced()
    (district_id, name), = warehouse_query("select district_id, name from roster.districts")
    for _ in range(5):
        control("advance-day", share=0.01)
        synced(incremental=True)
    line, listed = status(capsys)
    assert line.startswith(f"{name} ({district_id}): published ") and "last run success" in line
    assert "BLOCKED" not in line and "Clever: success" in line and not listed["blocked"]
    with DagsterInstance.get() as instance:
        assert freshness(instance).passed

    # Clever pauses the district for the summer: status and the school pages say so.
    control("pause", paused=True, pause_end="2027-08-16T00:00:00.000Z")
    synced(incremental=True)
    line, listed = status(capsys)
    assert "Clever: paused until 2027-08-16" in line and listed["clever_state"] == "paused"
    assert "Sync paused." in (tmp_path / "data" / "reports" / district_id / "index.html").read_text()

    # Rollover: the pause ends with a new school year. It publishes without approval, and the
    # webhook is failing then: the new-year alert is retried (bounded) and the sync still succeeds.
    grades = dict(warehouse_query("select student_id, grade from roster.students"))
    old_sections = {s for (s,) in warehouse_query("select section_id from roster.sections")}
    failing = Receiver(status=503)
    monkeypatch.setenv("ROSTER_ALERT_WEBHOOK_URL", failing.url)
    control("pause", paused=False)
    rolled = control("new-school-year")["changes"][district_id]
    synced(incremental=True)
    assert [m["problem"] for m in failing.bodies] == ["new school year"] * 3
    assert f"{name} ({district_id}): new school year. Every section's term starts on or after" in failing.bodies[0]["text"]
    monkeypatch.setenv("ROSTER_ALERT_WEBHOOK_URL", receiver.url)
    (why, latest), = warehouse_query("select new_school_year, latest_term_start from roster.publishes "
                                     "order by published_at desc limit 1")
    assert why.startswith("new school year: every section's term starts on or after 2027-08-") and str(latest) == "2028-01-19"
    now = dict(warehouse_query("select student_id, grade from roster.students"))
    promoted = [s for s in now if s in grades and grades[s] == 4]
    assert promoted and all(now[s] == 5 for s in promoted)
    assert not {s for s, g in grades.items() if g == 12} & set(now)  # graduates left
    assert len([s for s in now if s not in grades and now[s] == 0]) > 0.8 * rolled["kindergarten"]
    assert not old_sections & {s for (s,) in warehouse_query("select section_id from roster.sections")}
    ended = {s for (s,) in warehouse_query("select section_id from roster.sections_history where valid_to is not null")}
    assert old_sections <= ended  # last year stays in history

    # Clever re-issues a student's id (their SIS id changed): same person_key, one history.
    someone = sorted(promoted)[0]
    new_id = control("reissue-id", student=someone, sis_id="S-2027-REISSUED")["new_ids"][district_id]
    synced(incremental=True)
    assert warehouse_query("select person_key from roster.students where student_id = ?", [new_id]) == [(someone,)]
    versions = warehouse_query("select student_id, grade, valid_to is null from roster.students_history "
                               "where person_key = ? order by valid_from", [someone])
    assert versions[0] == (someone, 4, False) and versions[-1] == (new_id, 5, True)
    assert warehouse_query("select detail from roster.roster_changes where record_id = ?", [new_id]) == [
        (f"Clever id re-issued (was {someone}; same state_id)",)]

    # A district admin stops sharing the largest school: blocked, alerted once, explained by school.
    (school_id, school_name), = warehouse_query(
        "select school_id, name from roster.school_roster_summary order by students desc limit 1")
    control("share-school", school=school_id, shared=False)
    monkeypatch.setenv("ROSTER_FRESHNESS_HOURS", "0.0003")  # about a second: the blocked district goes stale
    synced(expected=1, incremental=True)
    with DagsterInstance.get() as instance:
        evaluate_sensor(instance)
        synced(expected=1)  # blocked again the same night: no second message
        evaluate_sensor(instance)
        stale = freshness(instance)
        assert not stale.passed and ":mass_change_guard failed" in stale.description
        line, listed = status(capsys)
        assert "BLOCKED: " in line and " school" in line and ", students -" in line and len(line) <= 200
        assert main(["status", "--district", district_id]) == 0
        details = capsys.readouterr().out
        assert f"{school_name}: " in details and "students removed (100%)" in details
        assert listed["blocked"] and listed["last_run"] == "failure"

        assert main(["approve", "--district", district_id, "--yes"]) == 0
        said = capsys.readouterr().out
        assert f"{school_name}: " in said and "students removed (100%)" in said
        assert warehouse_query("select count(*) from roster.students where school_id = ?", [school_id]) == [(0,)]
        monkeypatch.setenv("ROSTER_FRESHNESS_HOURS", "26")
        assert freshness(instance).passed
    line, listed = status(capsys)
    assert "BLOCKED" not in line and "last run success" in line and not listed["blocked"]

    # Exactly one message reached the working webhook all year: the block (the new year went to the
    # failing one, three attempts, nothing more).
    assert [m["problem"] for m in receiver.bodies] == ["blocked"] and len(failing.bodies) == 3
    (blocked,) = receiver.bodies
    assert blocked["district_id"] == district_id and f"{name} ({district_id}): publish blocked" in blocked["text"]
    assert f"{school_name}: " in blocked["text"] and f"roster-pipeline approve --district {district_id}" in blocked["text"]
