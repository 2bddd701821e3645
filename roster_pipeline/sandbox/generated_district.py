"""A generated district as the sandbox serves it: its frozen spec plus the school days so far.

The spec (`layout.DistrictSpec`) says what the district was on the first day; `SchoolDayChanges`
holds what simulated school days changed since (`school_days.advance_day` writes it), and the
`EventLog` the Clever events that describe those changes. Everything a consumer reads goes
through `build`, which generates the object and applies the day's patches.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from roster_pipeline.sandbox import dirty_values, paging, people, schools_and_sections
from roster_pipeline.sandbox.event_log import EventLog
from roster_pipeline.sandbox.layout import (
    COHORT_SIZE,
    GRADES,
    SLOT_SUBJECTS,
    SLOTS_PER_COHORT,
    STAFF_PER_SCHOOL,
    DistrictSpec,
)

# Objects whose content follows from the spec alone (students and sections also depend on the days).
BUILDERS = {
    "district": schools_and_sections.district, "school": schools_and_sections.school,
    "teacher": people.teacher, "staff": people.staff, "district_admin": people.district_admin,
    "course": schools_and_sections.course, "term": schools_and_sections.term,
}


@dataclass
class SchoolDayChanges:
    """What simulated school days changed in a generated district (nothing until the first day)."""

    patches: dict[str, dict | None] = field(default_factory=dict)  # field patches by object id; None = deleted
    enrolled: dict[int, list[int]] = field(default_factory=dict)  # cohort → students who enrolled on a day
    added_students: list[int] = field(default_factory=list)  # cohort of each enrolled student, index order
    withdrawn_on: dict[str, int] = field(default_factory=dict)  # student id → the day it withdrew (it may return)
    unshared: set[int] = field(default_factory=set)  # schools the district admin stopped sharing


def _from_spec(name: str, doc: str | None = None) -> property:
    """A read-only attribute answered by the district's spec (what does not change day to day)."""
    return property(lambda self: getattr(self.spec, name), doc=doc)


class GeneratedDistrict:
    """One generated district: spec, changes of simulated days, Clever events; pages and objects by id."""

    def __init__(self, spec: DistrictSpec) -> None:
        self.spec = spec
        self.changes = SchoolDayChanges()
        self.events = EventLog(spec.prefix)

    def __repr__(self) -> str:
        return f"GeneratedDistrict({self.spec!r})"

    # -- what the spec says ------------------------------------------------------------------
    id = _from_spec("id")
    token = _from_spec("token")
    token_record_id = _from_spec("token_record_id")
    share_by_schools = _from_spec("share_by_schools")
    students = _from_spec("students", "Students generated on the first day (those enrolled later are counted by `count`).")
    teachers = _from_spec("teachers")
    schools = _from_spec("schools")

    def make_id(self, kind: str, index: int) -> str:
        return self.spec.make_id(kind, index)

    def parse_id(self, object_id: str) -> tuple[str, int] | None:
        return self.spec.parse_id(object_id)

    def teacher_email(self, index: int) -> str | None:
        """A teacher's email as generated (before any simulated day changed it)."""
        return dirty_values.teacher_email(self.spec, index)

    # -- what exists today -------------------------------------------------------------------
    def count(self, kind: str) -> int:
        """How many index positions a kind has (sections are sparse: 8 slots per cohort)."""
        spec = self.spec
        return {
            "district": 1, "school": spec.schools, "student": spec.students + len(self.changes.added_students),
            "teacher": spec.teachers,
            "staff": spec.staff, "district_admin": spec.district_admins,
            "section": spec.cohorts * SLOTS_PER_COHORT, "course": len(SLOT_SUBJECTS) * len(GRADES),
            "term": 2,
        }[kind]

    def student_cohort(self, index: int) -> int:
        if index >= self.spec.students:
            return self.changes.added_students[index - self.spec.students]
        return index // COHORT_SIZE

    def section_students(self, cohort: int) -> list[int]:
        """The cohort's students still enrolled, then those who enrolled on simulated days."""
        patches = self.changes.patches
        current = [s for s in self.spec.cohort_students(cohort)
                   if patches.get(self.make_id("student", s), {}) is not None]
        return current + self.changes.enrolled.get(cohort, [])

    def school_of(self, kind: str, index: int) -> int | None:
        """The school an object belongs to (None for district-wide objects)."""
        if kind == "school":
            return index
        if kind == "student":
            return self.spec.cohort_school(self.student_cohort(index))
        if kind == "section":
            return self.spec.cohort_school(index // SLOTS_PER_COHORT)
        if kind == "teacher":
            return self.spec.teacher_school(index)
        if kind == "staff":
            return index // STAFF_PER_SCHOOL
        return None

    def exists(self, kind: str, index: int) -> bool:
        if not 0 <= index < self.count(kind):
            return False
        if self.changes.patches.get(self.make_id(kind, index), {}) is None:  # deleted on a simulated day
            return False
        if kind == "section" and not self.spec.section_exists(index):
            return False
        return True

    def visible(self, kind: str, index: int) -> bool:
        """Exists and is shared with the application."""
        if not self.exists(kind, index):
            return False
        school = self.school_of(kind, index)
        return school is None or (self.spec.school_shared(school) and school not in self.changes.unshared)

    # -- serving -----------------------------------------------------------------------------
    def build(self, kind: str, index: int) -> dict:
        """The object as Clever serves it today: generated, then patched by the simulated days."""
        if kind == "student":
            obj = people.student(self.spec, index, self.student_cohort(index))
        elif kind == "section":
            obj = schools_and_sections.section(self.spec, index, self.section_students(index // SLOTS_PER_COHORT))
        else:
            obj = BUILDERS[kind](self.spec, index)
        patch = self.changes.patches.get(obj["id"])
        if patch:
            obj.update(copy.deepcopy(patch))
        return obj

    def page(self, kinds: tuple[str, ...], starting_after: str | None, limit: int) -> tuple[list[dict], str | None]:
        return paging.page(self, kinds, starting_after, limit)

    def find(self, kinds: tuple[str, ...], object_id: str) -> dict | None:
        return paging.find(self, kinds, object_id)

    def scan(self, kinds: tuple[str, ...], after: tuple[str, int] | None,
             limit: int) -> tuple[list[dict], tuple[str, int] | None, bool]:
        return paging.scan(self, kinds, after, limit)
