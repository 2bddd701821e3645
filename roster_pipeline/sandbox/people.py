"""The district's people as Clever users: students, teachers, school staff and district admins.

Each builder returns the full Clever v3.1 user object for one index; demographics are spread by
a hash of the student at rates close to a mid-sized US district's.
"""

from __future__ import annotations

from roster_pipeline.sandbox import dirty_values
from roster_pipeline.sandbox.layout import STAFF_PER_SCHOOL, DistrictSpec
from roster_pipeline.sandbox.names import person_name

# What a district that does not share demographics leaves out of its students (Clever's demographics).
DEMOGRAPHIC_FIELDS = ("race", "hispanic_ethnicity", "ell_status", "frl_status", "iep_status", "section_504_status",
                      "gifted_status", "home_language", "home_language_code", "disability")
RACES = ["Caucasian", "Asian", "Black or African American", "American Indian",
         "Hawaiian or Other Pacific Islander", "Two or More Races", "Unknown", ""]
HOME_LANGUAGES = ["English"] * 14 + ["Spanish"] * 4 + ["Vietnamese", "Arabic", "Tagalog", "Hmong", "Somali"]
FRL = ["Free"] * 4 + ["Reduced"] * 2 + ["Paid"] * 5 + ["Other", ""]
GENDERS = ["M", "F"] * 24 + ["X", ""]
STAFF_TITLES = ["Principal", "Assistant Principal", "Counselor"]


def user(spec: DistrictSpec, kind: str, index: int, name: dict, email: str | None, roles: dict) -> dict:
    return {
        "id": spec.make_id(kind, index), "district": spec.id, "email": email, "name": name,
        "roles": roles, **spec.stamps(kind, index),
    }


def student(spec: DistrictSpec, index: int, cohort: int, year: int = 0) -> dict:
    """A student of `cohort` in school year `year` (students enrolled on simulated days are not in
    their index's cohort)."""
    grade = spec.cohort_grade(cohort, year)
    school = spec.make_id("school", spec.cohort_school(cohort, year))
    name = person_name(spec, "student", index)
    demo = spec.h("student", index, "demo")
    student = {
        "school": school, "schools": [school], "sis_id": f"S{index + 100000}",
        "state_id": f"{9000000000 + index}", "student_number": f"{index + 100000}",
        "dob": dirty_values.student_dob(spec, index, grade, year), "gender": GENDERS[demo % len(GENDERS)],
        "grade": dirty_values.grade(spec, "student", index, grade, 40),
        "graduation_year": str(2026 + year + 12 - grade + 1),
        "race": RACES[demo // 7 % len(RACES)],
        "hispanic_ethnicity": ["Y", "N", "N", ""][demo // 11 % 4],
        "ell_status": ["Y", "N", "N", "N", "N", ""][demo // 13 % 6],
        "frl_status": FRL[demo // 17 % len(FRL)],
        "iep_status": dirty_values.iep_status(spec, index, ["Y", "N", "N", "N", "N", "N", "", "Yes"][demo // 19 % 8]),
        "section_504_status": ["Y", "N", "N", "N", "N", "N", "N", ""][demo // 23 % 8],
        "gifted_status": ["Y", "N", "N", "N", "N", ""][demo // 29 % 6],
        "home_language": HOME_LANGUAGES[demo // 31 % len(HOME_LANGUAGES)],
        "enrollments": [{"school": school, "start_date": "2026-08-20T00:00:00.000Z",
                         "end_date": "2027-06-10T00:00:00.000Z"}],
        "preferred_name": {"first": name["first"]},
        "disability": {"disability_status": "Y" if demo % 9 == 0 else "N"},
    }
    return user(spec, "student", index, name, dirty_values.student_email(spec, index, name), {"student": student})


def teacher(spec: DistrictSpec, index: int) -> dict:
    school = spec.make_id("school", spec.teacher_school(index))
    teacher = {
        "school": school, "schools": [school], "sis_id": f"T{index + 5000}",
        "state_id": f"TS{index + 5000}", "teacher_number": f"{index + 5000}",
        "title": ["Teacher", "Lead Teacher", "Math Specialist", "Reading Specialist", ""][
            spec.h("teacher", index, "title") % 5],
        "district": spec.id, "name": person_name(spec, "teacher", index),
    }
    return user(spec, "teacher", index, person_name(spec, "teacher", index), dirty_values.teacher_email(spec, index),
                {"teacher": teacher})


def staff(spec: DistrictSpec, index: int) -> dict:
    """Three per school: a principal, an assistant principal (both school admins) and a counselor."""
    school_index, rank = divmod(index, STAFF_PER_SCHOOL)
    school = spec.make_id("school", school_index)
    name = person_name(spec, "staff", index)
    staff = {
        "schools": [school], "staff_id": f"STF{index + 700}", "title": STAFF_TITLES[rank],
        "department": "Administration" if rank < 2 else "Student Services",
        "roles": ["school_admin"] if rank < 2 else [],
    }
    email = f"{name['first'].lower()}.staff{index}@{spec.domain}"
    return user(spec, "staff", index, name, email, {"staff": staff})


def district_admin(spec: DistrictSpec, index: int) -> dict:
    name = person_name(spec, "district_admin", index)
    title = ["Director of Data", "Assessment Coordinator", "Chief Academic Officer"][index % 3]
    return user(spec, "district_admin", index, name, f"admin{index}@{spec.domain}",
                {"district_admin": {"title": title}})
