"""How a generated district is laid out: its size, cohorts, schools, sections and teaching loads.

Students come in cohorts of 25 (one grade, one school); each cohort takes 4-8 sections (math,
ELA, science, ... one per period); six sections make one teacher's load; each school has three
staff members and the district two or three district admins.

Nothing is stored per student: every object is a pure function of (seed, district, kind, index),
so a 1,000,000-student district costs no memory until a page asks for it, and the same seed
always serves the same data. That is why `DistrictSpec` can be frozen: what simulated school
days change lives beside it, in `generated_district.GeneratedDistrict`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property

from roster_pipeline.sandbox.ids import district_prefix, district_token, object_id, parse_object_id, token_record_id

COHORT_SIZE = 25
SLOTS_PER_COHORT = 8
SECTIONS_PER_TEACHER = 6
STAFF_PER_SCHOOL = 3
STUDENTS_PER_SCHOOL = 450
GRADES = list(range(13))  # 0 = Kindergarten .. 12

SLOT_SUBJECTS = [  # one section per period slot: (Clever subject, short name)
    ("math", "Math"), ("english/language arts", "ELA"), ("science", "Science"),
    ("social studies", "Social Studies"), ("language", "Spanish"), ("arts and music", "Art"),
    ("PE and health", "PE"), ("technology and engineering", "Technology"),
]
SCHOOL_LEVELS = [  # (name suffix, grades)
    ("Elementary School", range(0, 6)), ("Middle School", range(6, 9)), ("High School", range(9, 13)),
]


def grade_label(grade: int) -> str:
    return "Kindergarten" if grade == 0 else str(grade)


@dataclass(frozen=True)
class DistrictSpec:
    """One generated district as configured: its number in the sandbox, size and share mode.

    Every attribute is a pure function of the four fields; the hashed ones (prefix, token) and
    the sizes are computed once and cached, never changed.
    """

    seed: int
    number: int
    students: int
    share_by_schools: bool = False  # Share by Schools: every fourth school (from the second) is hidden

    # -- identity --------------------------------------------------------------------------
    @cached_property
    def prefix(self) -> str:
        return district_prefix(self.seed, self.number)

    @cached_property
    def token(self) -> str:
        return district_token(self.seed, self.number)

    @property
    def id(self) -> str:
        return self.make_id("district", 0)

    @property
    def token_record_id(self) -> str:
        return token_record_id(self.prefix)

    @property
    def domain(self) -> str:
        return f"d{self.number + 1}.sandbox-schools.org"

    def make_id(self, kind: str, index: int) -> str:
        return object_id(self.prefix, kind, index)

    def parse_id(self, object_id: str) -> tuple[str, int] | None:
        """Id → (kind, index) for ids of this district; None for anything else."""
        return parse_object_id(self.prefix, object_id)

    def h(self, kind: str, index: int, salt: str = "") -> int:
        """A stable pseudo-random number for one object (and a salt per attribute)."""
        digest = hashlib.blake2b(f"{self.seed}:{self.number}:{kind}:{index}:{salt}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big")

    def stamps(self, kind: str, index: int) -> dict:
        """An object's `created` (a day in August 2025) and `last_modified`."""
        day = 1 + self.h(kind, index, "created") % 28
        return {"created": f"2025-08-{day:02d}T12:00:00.000Z", "last_modified": "2026-09-01T08:30:00.000Z"}

    # -- sizes -----------------------------------------------------------------------------
    @cached_property
    def cohorts(self) -> int:
        return math.ceil(self.students / COHORT_SIZE)

    @cached_property
    def schools_per_level(self) -> int:
        return max(1, round(self.students / STUDENTS_PER_SCHOOL / 3))

    @property
    def schools(self) -> int:
        return 3 * self.schools_per_level

    @property
    def teachers(self) -> int:
        return math.ceil(self.cohorts * SLOTS_PER_COHORT / SECTIONS_PER_TEACHER)

    @property
    def staff(self) -> int:
        return self.schools * STAFF_PER_SCHOOL

    @property
    def district_admins(self) -> int:
        return 2 + self.number % 2

    # -- structure -------------------------------------------------------------------------
    @property
    def sections_per_year(self) -> int:
        """Section index positions one school year takes (year y's sections follow year y-1's)."""
        return self.cohorts * SLOTS_PER_COHORT

    def cohort_grade(self, cohort: int, year: int = 0) -> int:
        """The cohort's grade in school year `year` (0 = the first): promoted each year; a cohort
        past grade 12 graduated and its place is taken by a new kindergarten."""
        return (cohort + year) % len(GRADES)

    def cohort_intake(self, cohort: int, year: int = 0) -> int:
        """Which group of students holds the cohort's place in `year`: 0 for those generated on the
        first day, 1 for the kindergarten that replaced them when they graduated, and so on."""
        return (cohort % len(GRADES) + year) // len(GRADES)

    def cohort_school(self, cohort: int, year: int = 0) -> int:
        grade = self.cohort_grade(cohort, year)
        level = next(i for i, (_, grades) in enumerate(SCHOOL_LEVELS) if grade in grades)
        return level + 3 * ((cohort // len(GRADES)) % self.schools_per_level)

    def school_shared(self, school: int) -> bool:
        return not self.share_by_schools or school % 4 != 1

    def section_exists(self, index: int) -> bool:
        """Sections are sparse: a cohort takes 4-8 of its 8 period slots."""
        cohort, slot = divmod(index, SLOTS_PER_COHORT)
        return cohort < self.cohorts and slot < 4 + self.h("cohort", cohort, "sections") % 5

    def cohort_students(self, cohort: int) -> range:
        """The cohort's students as generated (before any simulated school day)."""
        return range(cohort * COHORT_SIZE, min(self.students, (cohort + 1) * COHORT_SIZE))

    def teacher_school(self, teacher: int) -> int:
        """Teachers stay at the school of their first-year load (a rollover moves students, not staff)."""
        return self.cohort_school(teacher * SECTIONS_PER_TEACHER // SLOTS_PER_COHORT)
