"""A small hand-made district with one record per rule case, served by the sandbox.

Every object carries a comment-like `sis_id` saying which case it is; the golden tests in
test_roster_rules.py assert what happens to each one.
"""

from __future__ import annotations

import copy

from roster_pipeline.sandbox.handmade_district import HandmadeDistrict

PREFIX = "0d0d0d0d"
DISTRICT_ID = f"{PREFIX}01" + "0" * 14
TOKEN = "handmade-district-token"
KIND_CODES = {"school": 2, "student": 3, "teacher": 4, "staff": 5, "district_admin": 6, "section": 7,
              "course": 8, "term": 9}


def oid(kind: str, n: int) -> str:
    return f"{PREFIX}{KIND_CODES[kind]:02x}{n:014x}"


S1, S2 = oid("school", 1), oid("school", 2)


def school(n: int, name: str, low: str, high: str) -> dict:
    return {"id": oid("school", n), "district": DISTRICT_ID, "name": name, "sis_id": f"SCH{n}", "state_id": f"ST{n}",
            "nces_id": f"0600000{n}", "low_grade": low, "high_grade": high, "principal": {"name": "P", "email": None}}


def user(kind: str, n: int, first, last, email, role: dict | str, **top) -> dict:
    obj = {"id": oid(kind, n), "district": DISTRICT_ID, "email": email, "name": {"first": first, "last": last},
           "roles": {kind: role}, "created": "2025-08-01T00:00:00.000Z", "last_modified": "2026-09-01T00:00:00.000Z"}
    obj.update(top)
    return obj


def student(n: int, grade, *, school_id: str = S1, first: str = "Student", last: str | None = None,
            email=None, dob="4/5/2015", **demographics) -> dict:
    role = {"school": school_id, "schools": [school_id], "sis_id": f"STU{n}", "state_id": f"9{n:05d}",
            "grade": grade, "dob": dob, "gender": "F" if n % 2 else "M", "race": "Asian",
            "hispanic_ethnicity": "N", "iep_status": "N", "frl_status": "Paid", "ell_status": "N",
            "section_504_status": "N", "gifted_status": "N", "home_language": "English"}
    role.update(demographics)
    return user("student", n, first, last or f"Case{n}", email, role)


def teacher(n: int, first: str, last: str, email, school_id: str = S1) -> dict:
    return user("teacher", n, first, last, email,
                {"school": school_id, "schools": [school_id], "sis_id": f"T{n}", "title": "Teacher"})


def section(n: int, name: str, subject: str, grade, teacher_n: int | None, students: list[int],
            school_id: str = S1) -> dict:
    teacher_id = oid("teacher", teacher_n) if teacher_n else None
    return {"id": oid("section", n), "district": DISTRICT_ID, "school": school_id, "name": name,
            "period": name.rsplit("P", 1)[-1], "grade": grade, "subject": subject, "course": oid("course", 1),
            "term_id": oid("term", 1), "teacher": teacher_id, "teachers": [teacher_id] if teacher_id else [],
            "students": [oid("student", s) for s in students], "sis_id": f"SEC{n}"}


def build_objects() -> dict[str, list[dict]]:
    students = [
        student(1, "Kindergarten", dob="3/7/2020", email=" Kid.One@Students.Lincoln.K12.US",
                iep_status="Y", frl_status="Free", ell_status="N", section_504_status="", gifted_status="Y"),
        student(2, "1", dob="2019-09-01", email="not-an-email", iep_status="N", frl_status="Reduced"),
        student(3, "12", school_id=S2, dob="2/30/2008", iep_status="", frl_status="Paid"),
        student(4, "Other"),
        student(5, ""),
        student(6, None),
        student(7, "PostGraduate"),
        student(8, "Ungraded"),
        student(9, "PreKindergarten"),
        student(10, "13", school_id=S2),
        student(11, "K"),
        student(12, "Grade 3"),
        student(13, "3", first="Zoë", last="Ñúñez-Łukasz 李", iep_status="Yes", frl_status="Other"),
        # Hostile shapes: a number where Clever promises a string, a name that is not an object.
        {**student(14, 5, frl_status=""), "name": "Just A String"},
        # A 10 KB first name, and a name object without its `last` key (removed below).
        student(15, "4", first="A" * 10240, last=None),
        student(16, "５", dob=12345),  # full-width digit five; a number as birth date
        {**student(17, "2"), "roles": {"student": "student"}},  # the role is a string, not an object
    ]
    del students[14]["name"]["last"]
    teachers = [
        teacher(1, "Ana", "Lopez", " Ana.Lopez@Lincoln.K12.US "),
        teacher(2, "Ben", "Cho", None),
        teacher(3, "Cara", "Diaz", ""),
        teacher(4, "Dev", "Patel", "dev.patel-at-roosevelt", S2),
        teacher(5, "Eve", "Stone", "shared@roosevelt.k12.us", S2),
        teacher(6, "Finn", "Wu", "SHARED@roosevelt.k12.us ", S2),
        teacher(7, "Gia", "Rossi", "gia.rossi@roosevelt.k12.us", S2),
    ]
    sections = [
        section(1, "Math K - P1", "math", "Kindergarten", 1, [1, 2, 4, 13]),
        section(2, "ELA 1 - P2", "english/language arts", "1", 1, [2, 5, 14]),
        section(3, "Science 3 - P3", "science", "3", 1, [13]),
        section(4, "Math 12 - P1", "math", "12", 5, [3], S2),
        section(5, "Math 12 - P2", "math", "12", 7, [3, 10], S2),
        section(6, "Math - P4", "math", "Other", 7, [3], S2),
        section(7, "ELA 12 - P5", "english/language arts", "12", None, [3], S2),
        section(8, "ELA 13 - P6", "english/language arts", "13", 7, [10], S2),
    ]
    staff = [
        user("staff", 1, "Paula", "Principal", "Paula.Principal@District.org ",
             {"schools": [S1, S2], "staff_id": "STF1", "title": "Principal", "roles": ["school_admin"]}),
        user("staff", 2, "Carl", "Counselor", "carl@district.org",
             {"schools": [], "staff_id": "STF2", "title": "Counselor"}),
    ]
    return {
        "district": [{"id": DISTRICT_ID, "name": "Hand-made Unified", "sis_type": "PowerSchool", "state": "success"}],
        "school": [school(1, "Lincoln Elementary", "Kindergarten", "5"), school(2, "Roosevelt High", "9", "12")],
        "student": students, "teacher": teachers, "staff": staff,
        "district_admin": [user("district_admin", 1, "Dana", "Director", "dana@district.org", {"title": "Director"})],
        "section": sections,
        "course": [{"id": oid("course", 1), "district": DISTRICT_ID, "name": "Math K", "number": "M0"}],
        "term": [{"id": oid("term", 1), "district": DISTRICT_ID, "name": "Fall 2026",
                  "start_date": "2026-08-20", "end_date": "2027-01-15"}],
    }


def handmade_district() -> HandmadeDistrict:
    return HandmadeDistrict(DISTRICT_ID, TOKEN, copy.deepcopy(build_objects()))
