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
    school_year: int = 0  # rollovers so far: year y's sections and terms are new objects, students a grade up
    same_person: dict[int, tuple[int, str | None]] = field(default_factory=dict)  # a re-issued id's student
    # index → (the index Clever knew the person by, their new SIS id or None when it is unchanged)
    demographics_shared: bool = True  # False: students come without their demographic fields (API v3.0 alike)


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
            "section": spec.sections_per_year * (self.changes.school_year + 1),
            "course": len(SLOT_SUBJECTS) * len(GRADES), "term": 2 * (self.changes.school_year + 1),
        }[kind]

    def student_cohort(self, index: int) -> int:
        if index >= self.spec.students:
            return self.changes.added_students[index - self.spec.students]
        return index // COHORT_SIZE

    def cohort_grade(self, cohort: int) -> int:
        """The cohort's grade this school year."""
        return self.spec.cohort_grade(cohort, self.changes.school_year)

    def cohort_school(self, cohort: int) -> int:
        """The cohort's school this school year (a promotion can move it to the next level's school)."""
        return self.spec.cohort_school(cohort, self.changes.school_year)

    def section_index(self, cohort: int, slot: int) -> int:
        """The index of the cohort's section in a period slot this school year."""
        return self.spec.sections_per_year * self.changes.school_year + cohort * SLOTS_PER_COHORT + slot

    def section_students(self, cohort: int) -> list[int]:
        """The cohort's students still enrolled, then those who enrolled on simulated days (or in a
        new kindergarten at a rollover)."""
        patches = self.changes.patches
        enrolled = [*self.spec.cohort_students(cohort), *self.changes.enrolled.get(cohort, [])]
        return [s for s in enrolled if patches.get(self.make_id("student", s), {}) is not None]

    def school_of(self, kind: str, index: int) -> int | None:
        """The school an object belongs to (None for district-wide objects)."""
        if kind == "school":
            return index
        if kind == "student":
            return self.cohort_school(self.student_cohort(index))
        if kind == "section":
            return self.cohort_school(index % self.spec.sections_per_year // SLOTS_PER_COHORT)
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
        if kind == "section":  # only this school year's sections, and the slots the cohort takes
            year, local = divmod(index, self.spec.sections_per_year)
            return year == self.changes.school_year and self.spec.section_exists(local)
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
            obj = self._student(index)
        elif kind == "section":
            cohort = index % self.spec.sections_per_year // SLOTS_PER_COHORT
            obj = schools_and_sections.section(self.spec, index, self.section_students(cohort))
        else:
            obj = BUILDERS[kind](self.spec, index)
        patch = self.changes.patches.get(obj["id"])
        if patch:
            obj.update(copy.deepcopy(patch))
        if kind == "student" and not self.changes.demographics_shared:
            for name in people.DEMOGRAPHIC_FIELDS:  # absent, not null: as Clever leaves them out
                obj["roles"].get("student", {}).pop(name, None)
        return obj

    def _student(self, index: int) -> dict:
        """A student this school year; a re-issued id carries the person its first id named (name,
        birth date, state id and, unless it changed, SIS id) under the new id."""
        cohort, year = self.student_cohort(index), self.changes.school_year
        if index not in self.changes.same_person:
            return people.student(self.spec, index, cohort, year)
        first, sis_id = self.changes.same_person[index]
        obj = people.student(self.spec, first, cohort, year)
        obj["id"] = self.make_id("student", index)
        if sis_id:
            obj["roles"]["student"]["sis_id"] = sis_id
        return obj

    def page(self, kinds: tuple[str, ...], starting_after: str | None, limit: int) -> tuple[list[dict], str | None]:
        return paging.page(self, kinds, starting_after, limit)

    def find(self, kinds: tuple[str, ...], object_id: str) -> dict | None:
        return paging.find(self, kinds, object_id)

    def scan(self, kinds: tuple[str, ...], after: tuple[str, int] | None,
             limit: int) -> tuple[list[dict], tuple[str, int] | None, bool]:
        return paging.scan(self, kinds, after, limit)
