"""Rollover: a new school year publishes without the mass-change guard's block, and keeps last year in history.

The hand-made district rolls over as Clever serves a new year: a new term, every section
replaced by new ones in it. A mass change inside the year still blocks.
"""

from __future__ import annotations

import io

from roster_pipeline_tests.fixtures.dirty_district import DISTRICT_ID, oid, section
from roster_pipeline_tests.fixtures.engine import sync
from roster_pipeline_tests.fixtures.operations import Receiver
from roster_pipeline_tests.fixtures.warehouses import warehouse_query

NEW_SECTIONS = [(21, "Math K - P1", "math", "Kindergarten", 1, [1, 2, 4]), (22, "ELA 1 - P2", "english/language arts",
                "1", 1, [2, 5]), (24, "Math 12 - P1", "math", "12", 5, [3])]


def synced(**options) -> int:
    return sync(out=io.StringIO(), **options)


def roll_over(district) -> None:
    """Next year's term, and every section replaced by a new one in it."""
    district.upsert("term", {"id": oid("term", 2), "district": DISTRICT_ID, "name": "Fall 2027",
                             "start_date": "2027-08-18", "end_date": "2028-01-14"})
    for old in list(district.objects["section"]):
        district.delete("section", old["id"])
    for n, name, subject, grade, teacher, students in NEW_SECTIONS:
        district.upsert("section", {**section(n, name, subject, grade, teacher, students,
                                              **({"school_id": oid("school", 2)} if grade == "12" else {})),
                                    "term_id": oid("term", 2)})


def last_publish() -> tuple:
    return warehouse_query("select published_at, new_school_year, latest_term_start from roster.publishes "
                           "order by published_at desc limit 1")[0]


def test_a_new_school_year_publishes_without_approval_and_keeps_last_year(dirty, monkeypatch):
    district, _ = dirty
    monkeypatch.setenv("ROSTER_MASS_CHANGE_SHARE", "0.1")  # this small district's rollover is a mass change
    monkeypatch.setenv("ROSTER_MASS_CHANGE_MIN_ROWS", "1")
    receiver = Receiver()
    monkeypatch.setenv("ROSTER_ALERT_WEBHOOK_URL", receiver.url)
    assert synced() == 0
    old_sections = {s for (s,) in warehouse_query("select section_id from roster.sections")}
    assert old_sections and last_publish()[1] is None and str(last_publish()[2]) == "2026-08-20"

    roll_over(district)
    assert synced(incremental=True) == 0  # not blocked, no approval
    _, why, latest = last_publish()
    assert why.startswith("new school year: every section's term starts on or after 2027-08-18") and str(latest) == "2027-08-18"
    now = {s for (s,) in warehouse_query("select section_id from roster.sections")}
    assert now and now <= {oid("section", n) for n, *_ in NEW_SECTIONS}  # only this year's sections
    history = {s for (s,) in warehouse_query("select section_id from roster.sections_history where valid_to is not null")}
    assert old_sections <= history  # last year's sections, kept with the day they ended
    (message,) = receiver.bodies
    assert message["problem"] == "new school year" and "students," in message["reason"] and "sections" in message["reason"]

    # Inside the new year a mass change blocks again.
    district.delete("section", oid("section", 22))
    assert synced(incremental=True) == 1

    # The date rule: ROSTER_SCHOOL_YEAR_START passed since the last publish (the last publish moved a year back).
    from roster_pipeline.settings import data_dir, warehouse_url
    from roster_pipeline.warehouse.connection import Warehouse

    with Warehouse(warehouse_url(), data_dir() / "dlt").transaction() as sql:
        sql.execute("update roster.publishes set published_at = published_at - interval '400 days'")
    assert synced() == 0
    assert "ROSTER_SCHOOL_YEAR_START" in last_publish()[1]
