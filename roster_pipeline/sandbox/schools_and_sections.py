"""The district's organisation as Clever objects: the district, its schools, sections, courses and terms.

A section is one cohort's class in one period slot (`layout.py`); its course is the slot's
subject at the cohort's grade, and its teacher the one whose six-section load it falls in
(one section in ten is co-taught with the next teacher). As in real SIS exports, three sections
in a hundred come without a primary teacher (`teacher` null, the teacher list still there) and
one in a hundred without any teacher.
"""

from __future__ import annotations

import time

from roster_pipeline.sandbox import dirty_values
from roster_pipeline.sandbox.layout import (
    GRADES,
    SCHOOL_LEVELS,
    SECTIONS_PER_TEACHER,
    SLOT_SUBJECTS,
    SLOTS_PER_COHORT,
    DistrictSpec,
    grade_label,
)
from roster_pipeline.sandbox.names import SCHOOL_NAMES, city_name, person_name

# When Clever last synced a district's SIS: the latest 06:00 UTC before the sandbox started (Clever
# syncs each SIS nightly), so a new district is never flagged stale; `/sandbox/last-sync` makes it stale.
SIS_SYNCED_AT = time.strftime("%Y-%m-%dT06:00:00.000Z", time.gmtime(time.time() - 6 * 3600))


def district(spec: DistrictSpec, index: int) -> dict:
    return {
        "id": spec.id, "name": f"{city_name(spec)} Unified School District {spec.number + 1}",
        "sis_type": "PowerSchool", "state": "success", "last_sync": SIS_SYNCED_AT,
        # Clever's default summer pause: two days before the last school day to two weeks before school.
        "pause_start": "2027-06-09T00:00:00.000Z", "pause_end": "2027-08-16T00:00:00.000Z",
        "nces_id": f"06{spec.h('district', 0, 'nces') % 100000:05d}",
        "mdr_number": str(1000000 + spec.h("district", 0, "mdr") % 9000000),
        "login_methods": ["clever"], "portal_url": "https://clever.com/in/sandbox",
        "launch_date": "2025-07-01",
        "district_contact": {"id": spec.make_id("district_admin", 0), "district": spec.id,
                             "email": f"admin0@{spec.domain}", "title": "Director of Data",
                             "name": person_name(spec, "district_admin", 0)},
    }


def school(spec: DistrictSpec, index: int) -> dict:
    """Schools cycle elementary, middle, high; names repeat with a number past the fifteenth of a level."""
    level_name, grades = SCHOOL_LEVELS[index % 3]
    base = SCHOOL_NAMES[(index // 3) % len(SCHOOL_NAMES)]
    suffix = f" {index // 3 // len(SCHOOL_NAMES) + 1}" if index // 3 >= len(SCHOOL_NAMES) else ""
    principal = person_name(spec, "school-principal", index)
    return {
        "id": spec.make_id("school", index), "district": spec.id,
        "name": f"{base}{suffix} {level_name}", "sis_id": f"SCH{index + 100}",
        "state_id": f"ST{spec.h('school', index, 'st') % 10**6:06d}",
        "nces_id": f"06{spec.h('school', index, 'nces') % 10**10:010d}",
        "school_number": str(index + 100), "phone": "(555) 555-0100",
        "low_grade": grade_label(grades[0]), "high_grade": grade_label(grades[-1]),
        "principal": {"name": f"{principal['first']} {principal['last']}",
                      "email": f"principal{index}@{spec.domain}"},
        "location": {"address": f"{100 + index} Main St", "city": city_name(spec),
                     "state": "CA", "zip": f"9{spec.number % 10}{index % 1000:03d}"},
        **spec.stamps("school", index),
    }


def section(spec: DistrictSpec, index: int, students: list[int]) -> dict:
    """One cohort's class in one period of one school year (each year's sections take new index
    positions, so new ids); `students` are the student indexes enrolled in it today."""
    year, local = divmod(index, spec.sections_per_year)
    cohort, slot = divmod(local, SLOTS_PER_COHORT)
    grade = spec.cohort_grade(cohort, year)
    subject, short = SLOT_SUBJECTS[slot]
    teacher = local // SECTIONS_PER_TEACHER
    teachers = [spec.make_id("teacher", teacher)]
    if spec.h("section", index, "coteach") % 10 == 0 and teacher + 1 < spec.teachers:
        teachers.append(spec.make_id("teacher", teacher + 1))
    primary = teachers[0]
    roll = spec.h("section", index, "primary") % 100  # its own salt: every other value stays as it was
    if roll < 3:  # the SIS left the primary teacher empty: Clever's `teacher` is null, its list is not
        primary = None
    elif roll == 3:  # no teacher at all
        primary, teachers = None, []
    label = "K" if grade == 0 else str(grade)
    return {
        "id": spec.make_id("section", index), "district": spec.id,
        "school": spec.make_id("school", spec.cohort_school(cohort, year)),
        "name": f"{short} {label} - P{slot + 1}", "period": str(slot + 1),
        "section_number": f"{cohort}-{slot + 1}", "sis_id": f"SEC{index + 10000}",
        "grade": dirty_values.grade(spec, "section", index, grade, 15),
        "subject": subject, "course": spec.make_id("course", slot * len(GRADES) + grade),
        "term_id": spec.make_id("term", 2 * year + spec.h("section", local, "term") % 2),
        "teacher": primary, "teachers": teachers,
        "students": [spec.make_id("student", s) for s in students],
        **spec.stamps("section", index),
    }


def course(spec: DistrictSpec, index: int) -> dict:
    slot, grade = divmod(index, len(GRADES))
    label = "Kindergarten" if grade == 0 else f"Grade {grade}"
    return {"id": spec.make_id("course", index), "district": spec.id,
            "name": f"{SLOT_SUBJECTS[slot][1]} - {label}", "number": f"C{slot}{grade:02d}"}


def term(spec: DistrictSpec, index: int) -> dict:
    """Two terms a school year: fall and spring of the year that starts in August 2026 + index // 2."""
    year, half = divmod(index, 2)
    start, end = [(f"{2026 + year}-08-20", f"{2027 + year}-01-15"), (f"{2027 + year}-01-19", f"{2027 + year}-06-10")][half]
    return {"id": spec.make_id("term", index), "district": spec.id,
            "name": [f"Fall {2026 + year}", f"Spring {2027 + year}"][half], "start_date": start, "end_date": end}
