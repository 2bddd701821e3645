"""Emails a mail server would accept, and demographics said to be missing (issue 29, parts 2 and 3).

- The teacher email Clever's demo district carries, `hauc"k.haylie@example.com`, passes the default
  pattern; email-validator refuses it, so the teacher is excluded (TEACHER_EMAIL_INVALID, with the
  library's reason) and a student's `jo..smith@…` is left empty. Ordinary addresses, plain or not
  (accents), are kept. Only the emails that are not plain addresses are read into Python.
- Clever v3.1's flags are free text: Y/N, Yes/No, True/False, 1/0 in any case are read; any other
  value is NULL with a DEMOGRAPHIC_VALUE_UNRECOGNIZED row naming the field, never the value.
- A district whose students carry no demographic field publishes no demographics rows, and says
  so: rejected_records, roster.districts, the `published` materialization, status, the index page.

A hand-made district (the recorded address, every spelling) and a generated one (what the sandbox
serves on its own), each synced through the CLI's code into DuckDB and Postgres.
"""

from __future__ import annotations

import io
import json

import httpx
import pytest
from dagster import AssetKey, DagsterInstance
from markupsafe import escape

from roster_pipeline.cli import main
from roster_pipeline.cli.sync import sync
from roster_pipeline.modeling.prepared import email_problem, is_plain
from roster_pipeline.modeling.reason_codes import REASON_CODES
from roster_pipeline.sandbox.people import DEMOGRAPHIC_FIELDS
from roster_pipeline_tests.fixtures.dirty_district import DISTRICT_ID, S1, oid, section, teacher
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS, warehouse_query

pytestmark = pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)

RECORDED = 'hauc"k.haylie@example.com'  # Clever's demo district: the contact of 3 ELA sections
YES = {"y", "yes", "true", "1"}
NO = {"n", "no", "false", "0"}
FLAGS = {"iep_status": "special_education", "ell_status": "ell", "section_504_status": "section_504",
         "gifted_status": "gifted"}


def synced(**options) -> str:
    out = io.StringIO()
    assert sync(out=out, **options) == 0, out.getvalue()
    return out.getvalue()


def read_flag(value) -> bool | None:
    """What the rules should make of a served flag (the spellings the issue lists)."""
    text = (value or "").strip().lower()
    return True if text in YES else False if text in NO else None


def rejected(district_id: str, code: str) -> dict[str, list[tuple]]:
    """record_id → [(action, detail, school_id)] of one reason code."""
    found: dict[str, list[tuple]] = {}
    for record_id, action, detail, school in warehouse_query(
            "select record_id, action, detail, school_id from roster.rejected_records "
            "where district_id = ? and reason_code = ?", [district_id, code]):
        found.setdefault(record_id, []).append((action, detail, school))
    return found


def latest_metadata(key: list[str]) -> dict:
    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(AssetKey(key))
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def status_json(district_id: str) -> dict:
    out = io.StringIO()
    from roster_pipeline.cli.operations import status
    assert status(as_json=True, out=out, district_id=district_id) == 0
    (entry,) = json.loads(out.getvalue())
    return entry


def status_details(district_id: str) -> str:
    out = io.StringIO()
    from roster_pipeline.cli.operations import status
    assert status(out=out, district_id=district_id) == 0
    return out.getvalue()


def index_page(data_dir, district_id: str) -> str:
    return (data_dir / "reports" / district_id / "index.html").read_text(encoding="utf-8")


def demographics_rows(district_id: str) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in warehouse_query(
        "select student_id, special_education, frl_status, ell, section_504, gifted from roster.demographics "
        "where district_id = ?", [district_id])}


def the_district_says_it_shares_no_demographics(district_id: str, data_dir, kept_students: int) -> None:
    """Every place the notice must be, for a district whose students carry no demographic field."""
    assert demographics_rows(district_id) == {}
    assert warehouse_query("select count(*) from roster.students where district_id = ?", [district_id]) == [
        (kept_students,)]
    notices = warehouse_query("select entity, record_id, school_id, action, detail from roster.rejected_records "
                              "where district_id = ? and reason_code = 'DEMOGRAPHICS_NOT_SHARED'", [district_id])
    assert [n[:4] for n in notices] == [("district", district_id, None, "notice")]
    assert "no student of the district carries any demographic field" in notices[0][4]
    assert rejected(district_id, "DEMOGRAPHIC_VALUE_UNRECOGNIZED") == {}
    assert warehouse_query("select demographics_shared from roster.districts where district_id = ?",
                           [district_id]) == [(False,)]
    published = latest_metadata(["roster", "published"])
    assert published["demographics_shared"] is False and "DEMOGRAPHICS_NOT_SHARED" in published["notices"]
    assert status_json(district_id)["demographics_shared"] is False
    details = status_details(district_id)
    assert "demographics not shared" in details.splitlines()[0]
    assert f"Demographics not shared (DEMOGRAPHICS_NOT_SHARED): {REASON_CODES['DEMOGRAPHICS_NOT_SHARED'].meaning}" in details
    page = index_page(data_dir, district_id)
    assert 'id="notice-demographics_not_shared"' in page and REASON_CODES["DEMOGRAPHICS_NOT_SHARED"].fix in page
    assert page.count(str(escape(REASON_CODES["DEMOGRAPHICS_NOT_SHARED"].meaning))) == 1  # not among the excluded


def hand_made_case(district) -> None:
    """The recorded address, a student address the pattern lets through, free-text flags in every spelling."""
    objects = district.objects
    objects["teacher"].append(teacher(8, "Haylie", "Hauck", RECORDED))
    objects["section"].append(section(9, "Tenth Grade English - Hauck - 7", "english/language arts", "1", 8, [1, 2]))
    spellings = {  # student → the flags it is served with
        1: {"iep_status": " yes ", "ell_status": "TRUE", "section_504_status": "n", "gifted_status": "0",
            "frl_status": "FREE"},
        2: {"iep_status": "Pending evaluation", "ell_status": "No", "section_504_status": "1",
            "gifted_status": "False", "frl_status": "Homeless"},
        13: {"iep_status": "Y", "ell_status": "maybe", "section_504_status": "N", "gifted_status": "Yes"},
    }
    for obj in objects["student"]:
        n = int(obj["id"][-14:], 16)
        if n in spellings:
            obj["roles"]["student"].update(spellings[n])
    objects["student"][12]["email"] = "zoe..nunez@students.lincoln.k12.us"  # student 13
    objects["student"][13]["email"] = "Zoë.Ñúñez@Students.Lincoln.K12.US"  # student 14: not plain, valid
    assert objects["student"][12]["id"] == oid("student", 13)


def test_the_recorded_address_is_refused_free_text_flags_are_read_and_a_district_without_demographics_says_so(
        dirty, monkeypatch):
    district, data_dir = dirty
    hand_made_case(district)
    synced()

    # The recorded address: excluded with email-validator's reason; its section with it.
    problem = email_problem(RECORDED)
    assert problem and not is_plain(RECORDED)
    assert rejected(DISTRICT_ID, "TEACHER_EMAIL_INVALID")[oid("teacher", 8)] == [
        ("excluded", f'email "{RECORDED}" is not a valid address ({problem})', S1)]
    assert "primary teacher" in rejected(DISTRICT_ID, "SECTION_TEACHER_EXCLUDED")[oid("section", 9)][0][1]
    assert warehouse_query("select count(*) from roster.teachers where email like ?", ['%hauc%']) == [(0,)]
    # A student address the pattern lets through is left empty, with the reason; ordinary ones are kept.
    assert rejected(DISTRICT_ID, "STUDENT_EMAIL_INVALID")[oid("student", 13)] == [(
        "field_nulled", 'email "zoe..nunez@students.lincoln.k12.us" is not a valid address '
                        f'({email_problem("zoe..nunez@students.lincoln.k12.us")}); email set to NULL', S1)]
    emails = dict(warehouse_query("select student_id, email from roster.students"))
    assert emails[oid("student", 13)] is None
    assert emails[oid("student", 1)] == "kid.one@students.lincoln.k12.us"
    assert emails[oid("student", 14)] == "Zoë.Ñúñez@Students.Lincoln.K12.US".lower()
    assert {e for (e,) in warehouse_query("select email from roster.teachers")} == {
        "ana.lopez@lincoln.k12.us", "gia.rossi@roosevelt.k12.us"}
    # The roster step's list: exactly the served emails the library refuses, whatever the pattern says.
    served = {(obj.get("email") or "").strip().lower() for kind in ("student", "teacher")
              for obj in district.objects[kind]} - {""}
    assert dict(warehouse_query("select email, reason from roster_build.invalid_emails where district_id = ?",
                                [DISTRICT_ID])) == {e: email_problem(e) for e in served if email_problem(e)}
    check = latest_metadata(["roster", "email_syntax"])
    assert check["emails_judged"] == len({e for e in served if not is_plain(e)}) < len(served)

    # Free-text flags: every listed spelling read, any other value NULL with a row naming the field only.
    demographics = demographics_rows(DISTRICT_ID)
    roles = {obj["id"]: obj["roles"]["student"] for obj in district.objects["student"]
             if isinstance(obj["roles"].get("student"), dict)}
    unreadable: dict[str, set[str]] = {}
    for student_id, row in demographics.items():
        for position, (field, column) in enumerate(FLAGS.items()):
            value = roles[student_id].get(field)
            assert row[[0, 2, 3, 4][position]] is read_flag(value), (student_id, field, value)
            if (value or "").strip() and read_flag(value) is None:
                unreadable.setdefault(student_id, set()).add(f"{field} is not a yes/no value")
        frl = (roles[student_id].get("frl_status") or "").strip().lower()
        assert row[1] == (frl if frl in ("free", "reduced", "paid", "other") else None), student_id
        if frl and frl not in ("free", "reduced", "paid", "other"):
            unreadable.setdefault(student_id, set()).add("frl_status is not Free, Reduced, Paid or Other")
    assert demographics[oid("student", 1)] == (True, "free", True, False, False)
    assert demographics[oid("student", 2)] == (None, None, False, True, False)
    assert unreadable.keys() == {oid("student", 2), oid("student", 13)}
    notices = rejected(DISTRICT_ID, "DEMOGRAPHIC_VALUE_UNRECOGNIZED")
    assert {s: {d.split(";")[0].split(" (")[0] for _, d, _ in rows} for s, rows in notices.items()} == unreadable
    assert all(action == "field_nulled" for rows in notices.values() for action, _, _ in rows)
    for value in ("Pending evaluation", "Homeless", "maybe"):  # the field is named, the value never
        assert warehouse_query("select count(*) from roster.rejected_records where detail like ?",
                               [f"%{value}%"]) == [(0,)]
    assert warehouse_query("select demographics_shared from roster.districts") == [(True,)]
    assert status_json(DISTRICT_ID)["demographics_shared"] is True
    assert "notice-demographics_not_shared" not in index_page(data_dir, DISTRICT_ID)
    kept = len(demographics)

    # The district stops sharing demographics: its students come without the fields (Clever's events).
    for obj in list(district.objects["student"]):
        role = obj["roles"].get("student")
        if isinstance(role, dict):
            district.upsert("student", {**obj, "roles": {"student": {
                k: v for k, v in role.items() if k not in DEMOGRAPHIC_FIELDS}}})
    said = synced(incremental=True)
    assert "incremental" in said
    the_district_says_it_shares_no_demographics(DISTRICT_ID, data_dir, kept)
    assert warehouse_query("select demographics_removed from roster.publishes order by published_at desc limit 1") == [
        (kept,)]
    # A full refresh of the same data publishes the same.
    synced()
    the_district_says_it_shares_no_demographics(DISTRICT_ID, data_dir, kept)


def test_the_sandbox_serves_what_the_rules_must_catch_and_a_district_that_stops_sharing_demographics(
        own_sandbox, warehouse_env, tmp_path):
    server = own_sandbox(seed=33, students=600)
    spec = server.data.specs[0]
    data_dir = tmp_path / "data"
    synced()

    served = {kind: [spec.build(kind, i) for i in range(spec.count(kind)) if spec.visible(kind, i)]
              for kind in ("student", "teacher")}
    kept_teachers = {t for (t,) in warehouse_query("select teacher_id from roster.teachers")}
    kept_students = dict(warehouse_query("select student_id, email from roster.students"))
    # A stray quote (the recorded address's flaw): excluded with email-validator's reason.
    quoted = [t for t in served["teacher"] if '"' in (t["email"] or "")]
    assert quoted, "the sandbox serves a teacher email with a stray quote"
    refused = rejected(spec.id, "TEACHER_EMAIL_INVALID")
    for obj in quoted:
        email = obj["email"].strip().lower()
        assert obj["id"] not in kept_teachers
        assert refused[obj["id"]][0][1] == f'email "{obj["email"]}" is not a valid address ({email_problem(email)})'
    # A double dot in a student's address: the student is kept, the email left empty with the reason.
    dotted = [s for s in served["student"] if ".." in (s["email"] or "") and s["id"] in kept_students]
    assert dotted, "the sandbox serves a kept student with a double dot in the email"
    nulled = rejected(spec.id, "STUDENT_EMAIL_INVALID")
    for obj in dotted:
        assert kept_students[obj["id"]] is None
        assert f"({email_problem(obj['email'].strip().lower())})" in nulled[obj["id"]][0][1]
    # Ordinary addresses pass: every kept teacher's and student's email is one the library accepts.
    assert all(email_problem(e) is None for (e,) in warehouse_query("select email from roster.teachers"))
    assert all(email_problem(e) is None for e in kept_students.values() if e is not None)
    # Only the emails that are not plain addresses were read into Python.
    emails = {(o["email"] or "").strip().lower() for group in served.values() for o in group} - {""}
    assert latest_metadata(["roster", "email_syntax"])["emails_judged"] == len(
        {e for e in emails if not is_plain(e)}) < len(emails) / 5

    # Free-text iep_status: read when it spells yes or no, else NULL with the field named.
    iep = {s["id"]: s["roles"]["student"]["iep_status"] for s in served["student"] if s["id"] in kept_students}
    demographics = demographics_rows(spec.id)
    assert set(demographics) == set(kept_students)
    assert {s: row[0] for s, row in demographics.items()} == {s: read_flag(v) for s, v in iep.items()}
    odd = {s for s, v in iep.items() if (v or "").strip() and read_flag(v) is None}
    assert odd and {v for v in iep.values() if v not in ("Y", "N", "") and read_flag(v) is not None} - {"Yes"}
    assert {s for s, rows in rejected(spec.id, "DEMOGRAPHIC_VALUE_UNRECOGNIZED").items()
            if any(d.startswith("iep_status") for _, d, _ in rows)} == odd
    before = demographics

    # The district stops sharing demographics (POST /sandbox/demographics-shared), then shares them again.
    def share(shared: bool) -> int:
        return httpx.post(f"{server.base_url}/sandbox/demographics-shared", json={"shared": shared},
                          timeout=60).raise_for_status().json()["students"][spec.id]

    assert share(False) == len(served["student"])
    assert all(not set(DEMOGRAPHIC_FIELDS) & set(spec.build("student", i)["roles"]["student"])
               for i in range(spec.count("student")))
    synced(incremental=True)
    the_district_says_it_shares_no_demographics(spec.id, data_dir, len(kept_students))
    assert main(["report", "--district", spec.id]) == 0  # the pages of `report` say it too
    assert 'id="notice-demographics_not_shared"' in index_page(data_dir, spec.id)
    assert share(True) == len(served["student"])
    synced(incremental=True)
    assert demographics_rows(spec.id) == before
    assert rejected(spec.id, "DEMOGRAPHICS_NOT_SHARED") == {}
    assert status_json(spec.id)["demographics_shared"] is True
