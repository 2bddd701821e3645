"""Simulated school days: the roster changes a real district sends between two nightly syncs.

A day withdraws and enrolls students, changes teachers' emails and moves sections to another
teacher and period, and logs the Clever events that describe each change. The changes are
seeded by (seed, district, day), so the same days replayed give the same roster.
"""

from __future__ import annotations

import random

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
    counts = {"withdrawn": 0, "enrolled": 0, "emails_changed": 0, "sections_moved": 0}
    for _ in range(how_many // 3):
        index = rng.randrange(district.count("student"))
        if not district.visible("student", index):
            continue
        obj = district.build("student", index)
        changes.patches[obj["id"]] = None
        events.record("student", "deleted", obj)
        touched_cohorts.add(district.student_cohort(index))
        counts["withdrawn"] += 1
    for _ in range(how_many // 3):
        cohort = rng.randrange(spec.cohorts)
        if not spec.school_shared(spec.cohort_school(cohort)):
            continue
        index = district.count("student")
        changes.added_students.append(cohort)
        changes.enrolled.setdefault(cohort, []).append(index)
        events.record("student", "created", district.build("student", index))
        touched_cohorts.add(cohort)
        counts["enrolled"] += 1
    for _ in range(max(1, how_many // 6)):
        index = rng.randrange(spec.teachers)
        if not district.visible("teacher", index):
            continue
        old = district.build("teacher", index)["email"]
        changes.patches.setdefault(spec.make_id("teacher", index), {})["email"] = f"t{index}.day{day}@{spec.domain}"
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
            index = cohort * SLOTS_PER_COHORT + slot
            if district.visible("section", index) and index not in moved:
                events.record("section", "updated", district.build("section", index))
    return counts
