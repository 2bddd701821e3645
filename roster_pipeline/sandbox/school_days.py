"""Simulated school days: the roster changes a real district sends between two nightly syncs.

A day withdraws and enrolls students (some who withdrew come back days later, with their id),
promotes some students a grade, changes teachers' emails (every third day one to a colleague's
email, which excludes both) and moves sections to another teacher and period, and logs the Clever events that describe each change. A district admin can also stop
sharing a school and share it again (`set_school_shared`), with the deletes and creates Clever sends; a
new school year rolls the district over (`start_school_year`); and Clever can re-issue a student's
id (`reissue_student`). The changes are seeded by (seed, district, day), so the same days replayed
give the same roster.
"""

from __future__ import annotations

import copy
import random
import time

from roster_pipeline.sandbox.generated_district import GeneratedDistrict
from roster_pipeline.sandbox.layout import SLOTS_PER_COHORT


def advance_day(district: GeneratedDistrict, day: int, share: float = 0.01) -> dict[str, int]:
    """Change about `share` of the district like a school day does, and log the events.

    A third of the changes are students who withdraw, a third students who enroll, and the
    rest teachers whose email changes and sections that move to another teacher and period.
    """
    spec, changes, events = district.spec, district.changes, district.events
    rng = random.Random(f"{spec.seed}:{spec.number}:day{day}")
    how_many = max(3, round(spec.students * share))
    touched_cohorts: set[int] = set()
    counts = {"withdrawn": 0, "enrolled": 0, "returned": 0, "promoted": 0, "emails_changed": 0, "sections_moved": 0}
    # A student who withdrew two or more days ago comes back, with the same id (one a day at most).
    # (Clever sends nothing about a school that is not shared: nobody comes back to one.)
    away = sorted(student for student, gone in changes.withdrawn_on.items() if gone <= day - 2
                  and district.school_of("student", spec.parse_id(student)[1]) not in changes.unshared)
    if away:
        student = away[rng.randrange(len(away))]
        del changes.withdrawn_on[student]
        del changes.patches[student]
        index = spec.parse_id(student)[1]
        events.record("student", "created", district.build("student", index))
        touched_cohorts.add(district.student_cohort(index))
        counts["returned"] += 1
    for _ in range(how_many // 3):
        index = rng.randrange(district.count("student"))
        if not district.visible("student", index):
            continue
        obj = district.build("student", index)
        changes.patches[obj["id"]] = None
        changes.withdrawn_on[obj["id"]] = day
        events.record("student", "deleted", obj)
        touched_cohorts.add(district.student_cohort(index))
        counts["withdrawn"] += 1
    for _ in range(how_many // 3):
        cohort = rng.randrange(spec.cohorts)
        if not spec.school_shared(district.cohort_school(cohort)) or district.cohort_school(cohort) in changes.unshared:
            continue
        index = district.count("student")
        changes.added_students.append(cohort)
        changes.enrolled.setdefault(cohort, []).append(index)
        events.record("student", "created", district.build("student", index))
        touched_cohorts.add(cohort)
        counts["enrolled"] += 1
    for _ in range(max(1, how_many // 6)):
        index = rng.randrange(district.count("student"))
        if not district.visible("student", index):
            continue
        obj = district.build("student", index)
        grade = promoted(obj["roles"]["student"].get("grade"))
        if grade is None:
            continue
        roles = copy.deepcopy(obj["roles"])
        roles["student"]["grade"] = grade
        changes.patches.setdefault(obj["id"], {})["roles"] = roles
        events.record("student", "updated", district.build("student", index), {"roles": obj["roles"]})
        counts["promoted"] += 1
    for change in range(max(1, how_many // 6)):
        index = rng.randrange(spec.teachers)
        if not district.visible("teacher", index):
            continue
        old = district.build("teacher", index)["email"]
        email = f"t{index}.day{day}@{spec.domain}"
        if change == 0 and day % 3 == 0:  # a data-entry slip: a colleague's email (both lose their periods)
            email = district.build("teacher", rng.randrange(spec.teachers))["email"]
        changes.patches.setdefault(spec.make_id("teacher", index), {})["email"] = email
        events.record("teacher", "updated", district.build("teacher", index), {"email": old})
        counts["emails_changed"] += 1
    moved: set[int] = set()
    for _ in range(max(1, how_many // 6)):
        index = rng.randrange(district.count("section"))
        if not district.visible("section", index):
            continue
        teacher = rng.randrange(spec.teachers)
        old = district.build("section", index)
        patch = changes.patches.setdefault(old["id"], {})
        patch.update({"teacher": spec.make_id("teacher", teacher), "teachers": [spec.make_id("teacher", teacher)],
                      "period": str(rng.randrange(1, 9))})
        events.record("section", "updated", district.build("section", index),
                      {"teacher": old["teacher"], "period": old["period"]})
        moved.add(index)
        counts["sections_moved"] += 1
    for cohort in sorted(touched_cohorts):  # their student lists changed
        for slot in range(SLOTS_PER_COHORT):
            index = district.section_index(cohort, slot)
            if district.visible("section", index) and index not in moved:
                events.record("section", "updated", district.build("section", index))
    return counts


def promoted(grade: str | None) -> str | None:
    """The next grade as Clever writes it ("Kindergarten" → "1", "4" → "5"); None when there is none."""
    if grade == "Kindergarten":
        return "1"
    if grade and grade.isdigit() and 1 <= int(grade) < 12:
        return str(int(grade) + 1)
    return None


SCHOOL_KINDS = ("student", "teacher", "staff", "section")


def set_school_shared(district: GeneratedDistrict, school: int, shared: bool) -> int:
    """The district admin stops (or resumes) sharing a school: its records leave (or return) with a
    delete (or create) event each, as Clever sends them. Returns how many records moved."""
    changes, events = district.changes, district.events
    if shared == (school not in changes.unshared) or not district.spec.school_shared(school):
        return 0
    if shared:
        changes.unshared.discard(school)
    action = "created" if shared else "deleted"
    records = [(kind, index) for kind in SCHOOL_KINDS for index in range(district.count(kind))
               if district.school_of(kind, index) == school and district.visible(kind, index)]
    records.append(("school", school))
    for kind, index in records:
        events.record(kind, action, district.build(kind, index))
    if not shared:
        changes.unshared.add(school)
    return len(records)


def set_district_paused(district: GeneratedDistrict, paused: bool, pause_start: str | None = None,
                        pause_end: str | None = None) -> dict:
    """Clever pauses (or resumes) the district's syncs: its district object says so (`state`,
    `pause_start`, `pause_end`), with a `districts.updated` event. Returns the object served now."""
    patch = district.changes.patches.setdefault(district.spec.id, {})
    if paused:
        patch.update({"state": "paused", "pause_start": pause_start or time.strftime("%Y-%m-%dT00:00:00.000Z", time.gmtime()),
                      "pause_end": pause_end})
    else:
        patch.update({"state": "success", "pause_start": None, "pause_end": None,
                      "last_sync": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())})
    served = district.build("district", 0)
    district.events.record("district", "updated", served)
    return served


def set_last_sync(district: GeneratedDistrict, last_sync: str | None) -> dict:
    """Clever last synced the district's SIS at `last_sync` (ISO 8601; None: never): a stale SIS sync
    reaches us only as this date, every sync of ours still succeeding. A `districts.updated` event
    says so; returns the object served now."""
    district.changes.patches.setdefault(district.spec.id, {})["last_sync"] = last_sync
    served = district.build("district", 0)
    district.events.record("district", "updated", served)
    return served


def set_demographics_shared(district: GeneratedDistrict, shared: bool) -> int:
    """The district stops (or resumes) sharing demographics with the application: its students come
    without (or with) their demographic fields, each with a `users.updated` event. Returns how many."""
    if district.changes.demographics_shared == shared:
        return 0
    district.changes.demographics_shared = shared
    students = [i for i in range(district.count("student")) if district.visible("student", i)]
    for index in students:
        district.events.record("student", "updated", district.build("student", index))
    return len(students)


def start_school_year(district: GeneratedDistrict) -> dict[str, int]:
    """Roll the district over to its next school year, with the events Clever sends for it.

    New terms, every section replaced by a new one (new id, new term), every student a grade up
    (some move to the next level's school), the twelfth graders gone, and a new kindergarten (one
    cohort of students where each graduating cohort was). What a day patched into a student's
    grade or school is dropped: the new year decides both.
    """
    changes, events, spec = district.changes, district.events, district.spec
    counts = {"terms": 2, "sections_ended": 0, "sections_started": 0, "promoted": 0, "graduated": 0,
              "kindergarten": 0}
    old_sections = [district.build("section", i) for i in range(district.count("section"))
                    if district.visible("section", i)]
    old_students = {i: district.build("student", i) for i in range(district.count("student"))
                    if district.visible("student", i)}
    changes.school_year += 1
    for patch in changes.patches.values():
        if patch:
            patch.pop("roles", None)
    for index in range(district.count("term") - 2, district.count("term")):
        events.record("term", "created", district.build("term", index))
    for section in old_sections:
        events.record("section", "deleted", section)
        counts["sections_ended"] += 1
    for index, before in old_students.items():
        cohort = district.student_cohort(index)
        if district.cohort_grade(cohort) == 0:  # they were in grade 12: graduated
            changes.patches[before["id"]] = None
            changes.withdrawn_on.pop(before["id"], None)  # nobody comes back from graduation
            events.record("student", "deleted", before)
            counts["graduated"] += 1
        else:
            events.record("student", "updated", district.build("student", index), {"roles": before["roles"]})
            counts["promoted"] += 1
    for student in [s for s in changes.withdrawn_on if district.cohort_grade(
            district.student_cohort(spec.parse_id(s)[1])) == 0]:
        del changes.withdrawn_on[student]  # withdrawn twelfth graders do not come back either
    for cohort in range(spec.cohorts):
        school = district.cohort_school(cohort)
        if district.cohort_grade(cohort) != 0 or not spec.school_shared(school) or school in changes.unshared:
            continue
        for _ in spec.cohort_students(cohort):  # as many as the cohort had on the first day
            index = district.count("student")
            changes.added_students.append(cohort)
            changes.enrolled.setdefault(cohort, []).append(index)
            events.record("student", "created", district.build("student", index))
            counts["kindergarten"] += 1
    for index in range(district.count("section")):
        if district.visible("section", index):
            events.record("section", "created", district.build("section", index))
            counts["sections_started"] += 1
    return counts


def reissue_student(district: GeneratedDistrict, student_id: str, new_sis_id: str | None = None) -> str:
    """Clever issues a new id for a student: their SIS id changed (`new_sis_id`), or they come back
    after a long absence (the old id was withdrawn; the SIS id is the same). The old id leaves
    (if it had not already) and the new one arrives, with the same name, birth date and state id,
    in the same cohort. Returns the new id."""
    changes, spec = district.changes, district.spec
    parsed = spec.parse_id(student_id)
    if parsed is None or parsed[0] != "student" or not district.exists("student", parsed[1]) and student_id not in changes.withdrawn_on:
        raise ValueError("not a student of this district")
    first = parsed[1]
    first, earlier_sis = changes.same_person.get(first, (first, None))  # re-issued before: the same person still
    cohort = district.student_cohort(parsed[1])
    if district.exists("student", parsed[1]):
        gone, shared = district.build("student", parsed[1]), district.visible("student", parsed[1])
        changes.patches[student_id] = None
        if shared:
            district.events.record("student", "deleted", gone)
    changes.withdrawn_on.pop(student_id, None)
    index = district.count("student")
    changes.added_students.append(cohort)
    changes.enrolled.setdefault(cohort, []).append(index)
    changes.same_person[index] = (first, new_sis_id or earlier_sis)
    created = district.build("student", index)
    if district.visible("student", index):
        district.events.record("student", "created", created)
    return created["id"]
