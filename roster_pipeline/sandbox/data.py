"""Seeded synthetic Clever districts, generated object by object from their index.

Nothing is stored per student: every object is a pure function of (seed, district, kind,
index), so a 1,000,000-student district costs no memory until a page asks for it, and the
same seed always serves the same data. Ids encode (district, kind, index), which turns a
`starting_after=<id>` cursor into a position without any lookup table.

Layout of a district: students come in cohorts of 25 (one grade, one school); each cohort
takes 4-8 sections (math, ELA, science, ... one per period); six sections make one teacher's
load; each school has three staff members and the district two or three district admins.
Dirty values appear at fixed, realistic rates chosen by a hash of the object's index.
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator

COHORT_SIZE = 25
SLOTS_PER_COHORT = 8
SECTIONS_PER_TEACHER = 6
STAFF_PER_SCHOOL = 3
STUDENTS_PER_SCHOOL = 450
GRADES = list(range(13))  # 0 = Kindergarten .. 12

# Kind codes live in the id, so ids sort by kind then index (users of every role page in one order).
KIND_CODES = {
    "district": 0x01, "school": 0x02, "student": 0x03, "teacher": 0x04, "staff": 0x05,
    "district_admin": 0x06, "section": 0x07, "course": 0x08, "term": 0x09,
}
CODE_KINDS = {v: k for k, v in KIND_CODES.items()}
USER_ROLES = ("student", "teacher", "staff", "district_admin")

SLOT_SUBJECTS = [
    ("math", "Math"), ("english/language arts", "ELA"), ("science", "Science"),
    ("social studies", "Social Studies"), ("language", "Spanish"), ("arts and music", "Art"),
    ("PE and health", "PE"), ("technology and engineering", "Technology"),
]
SCHOOL_LEVELS = [  # (name suffix, grades)
    ("Elementary School", range(0, 6)), ("Middle School", range(6, 9)), ("High School", range(9, 13)),
]
FIRST_NAMES = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Mateo", "Sophia", "Elijah", "Isabella", "Lucas",
    "Mia", "Levi", "Amelia", "Ezra", "Harper", "Luca", "Evelyn", "Asher", "Camila", "James",
    "Sofia", "Leo", "Aria", "Jayden", "Luna", "Santiago", "Layla", "Mohammed", "Zoe", "Wei",
    "Priya", "Kenji", "Fatima", "Dmitri", "Aaliyah", "Diego", "Nia", "Hiroshi", "Maya", "Omar",
    "Chloe", "Andre", "Grace", "Tomás", "Hana", "Kwame", "Ingrid", "Rafael", "Leila", "Sean",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Nguyen", "Kim", "Patel", "Chen", "O'Brien", "Okafor", "Kowalski", "Haddad", "Tanaka",
    "Silva", "Müller", "Novak", "Reyes", "Cohen", "Singh",
]
CITY_NAMES = ["Riverside", "Lakewood", "Fairview", "Madison", "Georgetown", "Springfield", "Clinton", "Salem"]
SCHOOL_NAMES = [
    "Lincoln", "Washington", "Roosevelt", "Jefferson", "Cesar Chavez", "Maya Angelou", "Sequoia",
    "Hillcrest", "Oak Grove", "Bayview", "Sunset", "Mission", "Franklin", "Marshall", "Carver",
]
RACES = ["Caucasian", "Asian", "Black or African American", "American Indian",
         "Hawaiian or Other Pacific Islander", "Two or More Races", "Unknown", ""]
HOME_LANGUAGES = ["English"] * 14 + ["Spanish"] * 4 + ["Vietnamese", "Arabic", "Tagalog", "Hmong", "Somali"]
FRL = ["Free"] * 4 + ["Reduced"] * 2 + ["Paid"] * 5 + ["Other", ""]
GENDERS = ["M", "F"] * 24 + ["X", ""]
STAFF_TITLES = ["Principal", "Assistant Principal", "Counselor"]

# Deliberately dirty values. Out-of-enum ones are the only objects allowed to break Clever's schema.
DIRTY_GRADES = ["Other", "PostGraduate", "Ungraded", "", "PreKindergarten", "13", None]
GARBAGE_GRADES = ["K", "05", "Grade 3"]
BAD_DOBS = ["13/45/2010", "2/30/2011", "00/00/0000", "sometime in 2012"]
BAD_EMAILS = ["not-an-email", "jo@@school", "@example.org", "student at school.org"]


def grade_label(grade: int) -> str:
    return "Kindergarten" if grade == 0 else str(grade)


COLLECTION_OF_KIND = {
    "district": "districts", "school": "schools", "student": "users", "teacher": "users", "staff": "users",
    "district_admin": "users", "section": "sections", "course": "courses", "term": "terms",
}


class EventLog:
    """A district's Clever events: `<collection>.<created|updated|deleted>` with the full object.

    `expire()` drops every event logged so far, as if 30 days had passed: a consumer whose cursor
    pointed into them gets 404 and must resync. `enabled = False` answers /events with 403.
    """

    EVENT_KIND = 0x0A

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.events: list[dict] = []
        self.counter = 0
        self.enabled = True
        self.lock = threading.Lock()

    def record(self, kind: str, action: str, obj: dict, previous: dict | None = None) -> dict:
        with self.lock:
            self.counter += 1
            event = {
                "id": f"{self.prefix}{self.EVENT_KIND:02x}{self.counter:014x}",
                "type": f"{COLLECTION_OF_KIND[kind]}.{action}",
                "created": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "data": {"object": copy.deepcopy(obj)},
            }
            if previous:
                event["previous_attributes"] = previous
            self.events.append(event)
            return event

    def expire(self) -> None:
        with self.lock:
            self.events = []

    def page(self, starting_after: str | None, limit: int) -> tuple[list[dict], str | None]:
        """Events after the cursor; LookupError when the cursor is unknown or past retention."""
        with self.lock:
            events = list(self.events)
        start = 0
        if starting_after:
            positions = [i for i, e in enumerate(events) if e["id"] == starting_after]
            if not positions:
                raise LookupError("starting_after is not a retained event (older than 30 days or unknown)")
            start = positions[0] + 1
        chunk = events[start:start + limit]
        return chunk, (chunk[-1]["id"] if start + limit < len(events) else None)


@dataclass(frozen=True)
class DistrictSpec:
    """One synthetic district: its number in the sandbox, size and share mode."""

    seed: int
    number: int
    students: int
    share_by_schools: bool = False  # Share by Schools: every fourth school (from the second) is hidden
    # Simulated days of change (advance_day): field patches by id (None = deleted), students
    # enrolled after generation (by cohort), and the events describing every change.
    patches: dict = field(default_factory=dict, compare=False, repr=False)
    enrolled: dict = field(default_factory=dict, compare=False, repr=False)
    added_students: list = field(default_factory=list, compare=False, repr=False)

    @cached_property
    def events(self) -> EventLog:
        return EventLog(self.prefix)

    @cached_property
    def prefix(self) -> str:
        return hashlib.sha256(f"district-{self.seed}-{self.number}".encode()).hexdigest()[:8]

    @property
    def id(self) -> str:
        return self.make_id("district", 0)

    @cached_property
    def token(self) -> str:
        return "sbx_" + hashlib.sha256(f"token-{self.seed}-{self.number}".encode()).hexdigest()[:36]

    def make_id(self, kind: str, index: int) -> str:
        return f"{self.prefix}{KIND_CODES[kind]:02x}{index:014x}"

    def h(self, kind: str, index: int, salt: str = "") -> int:
        """A stable pseudo-random number for one object (and a salt per attribute)."""
        digest = hashlib.blake2b(f"{self.seed}:{self.number}:{kind}:{index}:{salt}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big")

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

    def count(self, kind: str) -> int:
        """How many index positions a kind has (sections are sparse: 8 slots per cohort)."""
        return {
            "district": 1, "school": self.schools, "student": self.students + len(self.added_students),
            "teacher": self.teachers,
            "staff": self.staff, "district_admin": self.district_admins,
            "section": self.cohorts * SLOTS_PER_COHORT, "course": len(SLOT_SUBJECTS) * len(GRADES),
            "term": 2,
        }[kind]

    # -- structure -------------------------------------------------------------------------
    def cohort_grade(self, cohort: int) -> int:
        return cohort % len(GRADES)

    def cohort_school(self, cohort: int) -> int:
        grade = self.cohort_grade(cohort)
        level = next(i for i, (_, grades) in enumerate(SCHOOL_LEVELS) if grade in grades)
        return level + 3 * ((cohort // len(GRADES)) % self.schools_per_level)

    def school_shared(self, school: int) -> bool:
        return not self.share_by_schools or school % 4 != 1

    def section_exists(self, index: int) -> bool:
        cohort, slot = divmod(index, SLOTS_PER_COHORT)
        return cohort < self.cohorts and slot < 4 + self.h("cohort", cohort, "sections") % 5

    def cohort_students(self, cohort: int) -> range:
        return range(cohort * COHORT_SIZE, min(self.students, (cohort + 1) * COHORT_SIZE))

    def section_students(self, cohort: int) -> list[int]:
        """The cohort's students still enrolled, then those who enrolled on simulated days."""
        current = [s for s in self.cohort_students(cohort) if self.patches.get(self.make_id("student", s), {}) is not None]
        return current + self.enrolled.get(cohort, [])

    def teacher_school(self, teacher: int) -> int:
        return self.cohort_school(teacher * SECTIONS_PER_TEACHER // SLOTS_PER_COHORT)

    def school_of(self, kind: str, index: int) -> int | None:
        """The school an object belongs to (None for district-wide objects)."""
        if kind == "school":
            return index
        if kind == "student":
            return self.cohort_school(self.student_cohort(index))
        if kind == "section":
            return self.cohort_school(index // SLOTS_PER_COHORT)
        if kind == "teacher":
            return self.teacher_school(index)
        if kind == "staff":
            return index // STAFF_PER_SCHOOL
        return None

    def exists(self, kind: str, index: int) -> bool:
        if not 0 <= index < self.count(kind):
            return False
        if self.patches.get(self.make_id(kind, index), {}) is None:  # deleted on a simulated day
            return False
        if kind == "section" and not self.section_exists(index):
            return False
        return True

    def visible(self, kind: str, index: int) -> bool:
        """Exists and is shared with the application."""
        if not self.exists(kind, index):
            return False
        school = self.school_of(kind, index)
        return school is None or self.school_shared(school)

    # -- objects ---------------------------------------------------------------------------
    def student_cohort(self, index: int) -> int:
        if index >= self.students:
            return self.added_students[index - self.students]
        return index // COHORT_SIZE

    def build(self, kind: str, index: int) -> dict:
        obj = getattr(self, f"_{kind}")(index)
        patch = self.patches.get(obj["id"])
        if patch:
            obj.update(copy.deepcopy(patch))
        return obj

    def _name(self, kind: str, index: int) -> dict:
        first = FIRST_NAMES[self.h(kind, index, "first") % len(FIRST_NAMES)]
        last = LAST_NAMES[self.h(kind, index, "last") % len(LAST_NAMES)]
        middle = FIRST_NAMES[self.h(kind, index, "middle") % len(FIRST_NAMES)][0]
        return {"first": first, "middle": middle, "last": last}

    def _stamps(self, kind: str, index: int) -> dict:
        day = 1 + self.h(kind, index, "created") % 28
        return {"created": f"2025-08-{day:02d}T12:00:00.000Z", "last_modified": "2026-09-01T08:30:00.000Z"}

    def _district(self, index: int) -> dict:
        city = CITY_NAMES[self.number % len(CITY_NAMES)]
        return {
            "id": self.id, "name": f"{city} Unified School District {self.number + 1}",
            "sis_type": "PowerSchool", "state": "success", "last_sync": "2026-11-01T06:00:00.000Z",
            # Clever's default summer pause: two days before the last school day to two weeks before school.
            "pause_start": "2027-06-09T00:00:00.000Z", "pause_end": "2027-08-16T00:00:00.000Z",
            "nces_id": f"06{self.h('district', 0, 'nces') % 100000:05d}",
            "mdr_number": str(1000000 + self.h("district", 0, "mdr") % 9000000),
            "login_methods": ["clever"], "portal_url": "https://clever.com/in/sandbox",
            "launch_date": "2025-07-01",
            "district_contact": {"id": self.make_id("district_admin", 0), "district": self.id,
                                 "email": f"admin0@{self.domain}", "title": "Director of Data",
                                 "name": self._name("district_admin", 0)},
        }

    @property
    def domain(self) -> str:
        return f"d{self.number + 1}.sandbox-schools.org"

    def _school(self, index: int) -> dict:
        level_name, grades = SCHOOL_LEVELS[index % 3]
        base = SCHOOL_NAMES[(index // 3) % len(SCHOOL_NAMES)]
        suffix = f" {index // 3 // len(SCHOOL_NAMES) + 1}" if index // 3 >= len(SCHOOL_NAMES) else ""
        principal = self._name("school-principal", index)
        return {
            "id": self.make_id("school", index), "district": self.id,
            "name": f"{base}{suffix} {level_name}", "sis_id": f"SCH{index + 100}",
            "state_id": f"ST{self.h('school', index, 'st') % 10**6:06d}",
            "nces_id": f"06{self.h('school', index, 'nces') % 10**10:010d}",
            "school_number": str(index + 100), "phone": "(555) 555-0100",
            "low_grade": grade_label(grades[0]), "high_grade": grade_label(grades[-1]),
            "principal": {"name": f"{principal['first']} {principal['last']}",
                          "email": f"principal{index}@{self.domain}"},
            "location": {"address": f"{100 + index} Main St", "city": CITY_NAMES[self.number % len(CITY_NAMES)],
                         "state": "CA", "zip": f"9{self.number % 10}{index % 1000:03d}"},
            **self._stamps("school", index),
        }

    def _dirty_grade(self, kind: str, index: int, clean: int, per_mille: int) -> str | None:
        roll = self.h(kind, index, "grade") % 1000
        if roll < per_mille:
            return DIRTY_GRADES[roll % len(DIRTY_GRADES)]
        if roll < per_mille + per_mille // 4:
            return GARBAGE_GRADES[roll % len(GARBAGE_GRADES)]
        return grade_label(clean)

    def _student(self, index: int) -> dict:
        cohort = self.student_cohort(index)
        grade = self.cohort_grade(cohort)
        school = self.make_id("school", self.cohort_school(cohort))
        name = self._name("student", index)
        roll = self.h("student", index, "dob") % 1000
        birth_year = 2026 - 6 - grade + (roll % 2)
        dob = BAD_DOBS[roll % len(BAD_DOBS)] if roll < 10 else f"{1 + roll % 12}/{1 + roll % 28}/{birth_year}"
        mail_roll = self.h("student", index, "email") % 1000
        if mail_roll < 10:
            email = BAD_EMAILS[mail_roll % len(BAD_EMAILS)]
        elif mail_roll < 60:
            email = None
        else:
            email = f"{name['first'].lower()}.{name['last'].lower().replace(chr(39), '')}{index}@students.{self.domain}"
            if mail_roll < 90:
                email = f"  {email.upper()} "
        demo = self.h("student", index, "demo")
        student = {
            "school": school, "schools": [school], "sis_id": f"S{index + 100000}",
            "state_id": f"{9000000000 + index}", "student_number": f"{index + 100000}",
            "dob": dob, "gender": GENDERS[demo % len(GENDERS)],
            "grade": self._dirty_grade("student", index, grade, 40),
            "graduation_year": str(2026 + 12 - grade + 1),
            "race": RACES[demo // 7 % len(RACES)],
            "hispanic_ethnicity": ["Y", "N", "N", ""][demo // 11 % 4],
            "ell_status": ["Y", "N", "N", "N", "N", ""][demo // 13 % 6],
            "frl_status": FRL[demo // 17 % len(FRL)],
            "iep_status": ["Y", "N", "N", "N", "N", "N", "", "Yes"][demo // 19 % 8],
            "section_504_status": ["Y", "N", "N", "N", "N", "N", "N", ""][demo // 23 % 8],
            "gifted_status": ["Y", "N", "N", "N", "N", ""][demo // 29 % 6],
            "home_language": HOME_LANGUAGES[demo // 31 % len(HOME_LANGUAGES)],
            "enrollments": [{"school": school, "start_date": "2026-08-20T00:00:00.000Z", "end_date": "2027-06-10T00:00:00.000Z"}],
            "preferred_name": {"first": name["first"]},
            "disability": {"disability_status": "Y" if demo % 9 == 0 else "N"},
        }
        return self._user("student", index, name, email, {"student": student})

    def _user(self, kind: str, index: int, name: dict, email: str | None, roles: dict) -> dict:
        return {
            "id": self.make_id(kind, index), "district": self.id, "email": email, "name": name,
            "roles": roles, **self._stamps(kind, index),
        }

    def teacher_email(self, index: int) -> str | None:
        name = self._name("teacher", index)
        clean = f"{name['first'][0].lower()}{name['last'].lower().replace(chr(39), '')}{index}@{self.domain}"
        roll = self.h("teacher", index, "email") % 1000
        if roll < 10:
            return None
        if roll < 15:
            return ""
        if roll < 25:
            return clean.replace("@", "")  # malformed: no domain part
        if roll < 35 and index > 0:
            return self.teacher_email_clean(index - 1).upper()  # shared with the previous teacher
        if roll < 80:
            return f" {clean.title()} "  # mixed case and padding: fine after trim + lower
        return clean

    def teacher_email_clean(self, index: int) -> str:
        name = self._name("teacher", index)
        return f"{name['first'][0].lower()}{name['last'].lower().replace(chr(39), '')}{index}@{self.domain}"

    def _teacher(self, index: int) -> dict:
        school = self.make_id("school", self.teacher_school(index))
        teacher = {
            "school": school, "schools": [school], "sis_id": f"T{index + 5000}",
            "state_id": f"TS{index + 5000}", "teacher_number": f"{index + 5000}",
            "title": ["Teacher", "Lead Teacher", "Math Specialist", "Reading Specialist", ""][self.h("teacher", index, "title") % 5],
            "district": self.id, "name": self._name("teacher", index),
        }
        return self._user("teacher", index, self._name("teacher", index), self.teacher_email(index), {"teacher": teacher})

    def _staff(self, index: int) -> dict:
        school_index, rank = divmod(index, STAFF_PER_SCHOOL)
        school = self.make_id("school", school_index)
        name = self._name("staff", index)
        staff = {
            "schools": [school], "staff_id": f"STF{index + 700}", "title": STAFF_TITLES[rank],
            "department": "Administration" if rank < 2 else "Student Services",
            "roles": ["school_admin"] if rank < 2 else [],
        }
        email = f"{name['first'].lower()}.staff{index}@{self.domain}"
        return self._user("staff", index, name, email, {"staff": staff})

    def _district_admin(self, index: int) -> dict:
        name = self._name("district_admin", index)
        title = ["Director of Data", "Assessment Coordinator", "Chief Academic Officer"][index % 3]
        return self._user("district_admin", index, name, f"admin{index}@{self.domain}",
                          {"district_admin": {"title": title}})

    def _section(self, index: int) -> dict:
        cohort, slot = divmod(index, SLOTS_PER_COHORT)
        grade = self.cohort_grade(cohort)
        subject, short = SLOT_SUBJECTS[slot]
        teacher = index // SECTIONS_PER_TEACHER
        teachers = [self.make_id("teacher", teacher)]
        if self.h("section", index, "coteach") % 10 == 0 and teacher + 1 < self.teachers:
            teachers.append(self.make_id("teacher", teacher + 1))
        label = "K" if grade == 0 else str(grade)
        return {
            "id": self.make_id("section", index), "district": self.id,
            "school": self.make_id("school", self.cohort_school(cohort)),
            "name": f"{short} {label} - P{slot + 1}", "period": str(slot + 1),
            "section_number": f"{cohort}-{slot + 1}", "sis_id": f"SEC{index + 10000}",
            "grade": self._dirty_grade("section", index, grade, 15),
            "subject": subject, "course": self.make_id("course", slot * len(GRADES) + grade),
            "term_id": self.make_id("term", self.h("section", index, "term") % 2),
            "teacher": teachers[0], "teachers": teachers,
            "students": [self.make_id("student", s) for s in self.section_students(cohort)],
            **self._stamps("section", index),
        }

    def _course(self, index: int) -> dict:
        slot, grade = divmod(index, len(GRADES))
        label = "Kindergarten" if grade == 0 else f"Grade {grade}"
        return {"id": self.make_id("course", index), "district": self.id,
                "name": f"{SLOT_SUBJECTS[slot][1]} - {label}", "number": f"C{slot}{grade:02d}"}

    def _term(self, index: int) -> dict:
        start, end = [("2026-08-20", "2027-01-15"), ("2027-01-19", "2027-06-10")][index]
        return {"id": self.make_id("term", index), "district": self.id,
                "name": ["Fall 2026", "Spring 2027"][index], "start_date": start, "end_date": end}

    # -- simulated days ----------------------------------------------------------------------
    def advance_day(self, day: int, share: float = 0.01) -> dict[str, int]:
        """Change about `share` of the district like a school day does, and log the events.

        A third of the changes are students who withdraw, a third students who enroll, and the
        rest teachers whose email changes and sections that move to another teacher and period.
        """
        rng = random.Random(f"{self.seed}:{self.number}:day{day}")
        changes = max(3, round(self.students * share))
        touched_cohorts: set[int] = set()
        counts = {"withdrawn": 0, "enrolled": 0, "emails_changed": 0, "sections_moved": 0}
        for _ in range(changes // 3):
            index = rng.randrange(self.count("student"))
            if not self.visible("student", index):
                continue
            obj = self.build("student", index)
            self.patches[obj["id"]] = None
            self.events.record("student", "deleted", obj)
            touched_cohorts.add(self.student_cohort(index))
            counts["withdrawn"] += 1
        for _ in range(changes // 3):
            cohort = rng.randrange(self.cohorts)
            if not self.school_shared(self.cohort_school(cohort)):
                continue
            index = self.count("student")
            self.added_students.append(cohort)
            self.enrolled.setdefault(cohort, []).append(index)
            self.events.record("student", "created", self.build("student", index))
            touched_cohorts.add(cohort)
            counts["enrolled"] += 1
        for _ in range(max(1, changes // 6)):
            index = rng.randrange(self.teachers)
            if not self.visible("teacher", index):
                continue
            old = self.build("teacher", index)["email"]
            self.patches.setdefault(self.make_id("teacher", index), {})["email"] = f"t{index}.day{day}@{self.domain}"
            self.events.record("teacher", "updated", self.build("teacher", index), {"email": old})
            counts["emails_changed"] += 1
        moved: set[int] = set()
        for _ in range(max(1, changes // 6)):
            index = rng.randrange(self.count("section"))
            if not self.visible("section", index):
                continue
            teacher = rng.randrange(self.teachers)
            old = self.build("section", index)
            patch = self.patches.setdefault(old["id"], {})
            patch.update({"teacher": self.make_id("teacher", teacher), "teachers": [self.make_id("teacher", teacher)],
                          "period": str(rng.randrange(1, 9))})
            self.events.record("section", "updated", self.build("section", index),
                               {"teacher": old["teacher"], "period": old["period"]})
            moved.add(index)
            counts["sections_moved"] += 1
        for cohort in sorted(touched_cohorts):  # their student lists changed
            for slot in range(SLOTS_PER_COHORT):
                index = cohort * SLOTS_PER_COHORT + slot
                if self.visible("section", index) and index not in moved:
                    self.events.record("section", "updated", self.build("section", index))
        return counts

    # -- serving ---------------------------------------------------------------------------
    @property
    def token_record_id(self) -> str:
        return f"{self.prefix}ffffffffffffffff"

    def parse_id(self, object_id: str) -> tuple[str, int] | None:
        """Id → (kind, index) for ids of this district; None for anything else."""
        if len(object_id) != 24 or not object_id.startswith(self.prefix):
            return None
        try:
            kind = CODE_KINDS.get(int(object_id[8:10], 16))
            index = int(object_id[10:], 16)
        except ValueError:
            return None
        return (kind, index) if kind else None

    def page(self, kinds: tuple[str, ...], starting_after: str | None, limit: int) -> tuple[list[dict], str | None]:
        """One page of a collection: (objects, cursor for `next` or None). ValueError on a foreign cursor."""
        after = None
        if starting_after:
            after = self.parse_id(starting_after)
            if after is None or after[0] not in kinds:
                raise ValueError("starting_after is not an id of this collection")
        objects, last, more = self.scan(kinds, after, limit)
        return objects, (self.make_id(*last) if more else None)

    def find(self, kinds: tuple[str, ...], object_id: str) -> dict | None:
        parsed = self.parse_id(object_id)
        if parsed is None or parsed[0] not in kinds or not self.visible(*parsed):
            return None
        return self.build(*parsed)

    # -- paging ----------------------------------------------------------------------------
    def scan(self, kinds: tuple[str, ...], after: tuple[str, int] | None, limit: int) -> tuple[list[dict], tuple[str, int] | None, bool]:
        """One page: scan up to `limit` existing objects after the cursor, keep the shared ones.

        Returns (objects, last scanned position, more remain). Unshared objects still use up the
        scan, so a Share-by-Schools district yields short or empty pages that carry `next`, as
        Clever does.
        """
        found: list[dict] = []
        scanned = 0
        last = after
        for kind, index in self._positions(kinds, after):
            if scanned == limit:
                return found, last, True
            scanned += 1
            last = (kind, index)
            if self.visible(kind, index):
                found.append(self.build(kind, index))
        return found, last, False

    def _positions(self, kinds: tuple[str, ...], after: tuple[str, int] | None) -> Iterator[tuple[str, int]]:
        first_kind, first_index = (0, 0) if after is None else (kinds.index(after[0]), after[1] + 1)
        for position in range(first_kind, len(kinds)):
            kind = kinds[position]
            start = first_index if position == first_kind else 0
            for index in range(start, self.count(kind)):
                if self.exists(kind, index):
                    yield kind, index


@dataclass
class HandmadeDistrict:
    """A district given object by object (tests and demos of specific dirty cases).

    `objects` maps a kind (school, student, teacher, staff, district_admin, section, course,
    term, district) to its objects in the order they are served; tests may change it between syncs.
    """

    id: str
    token: str
    objects: dict[str, list[dict]]
    share_by_schools: bool = False

    @property
    def token_record_id(self) -> str:
        return self.id[:8] + "f" * 16

    def _listing(self, kinds: tuple[str, ...]) -> list[dict]:
        return [obj for kind in kinds for obj in self.objects.get(kind, [])]

    def page(self, kinds: tuple[str, ...], starting_after: str | None, limit: int) -> tuple[list[dict], str | None]:
        listing = self._listing(kinds)
        start = 0
        if starting_after:
            positions = [i for i, obj in enumerate(listing) if isinstance(obj, dict) and obj.get("id") == starting_after]
            if not positions:
                raise ValueError("starting_after is not an id of this collection")
            start = positions[0] + 1
        chunk = listing[start:start + limit]
        more = start + limit < len(listing)
        return chunk, (chunk[-1].get("id") if more else None)

    def find(self, kinds: tuple[str, ...], object_id: str) -> dict | None:
        return next((obj for obj in self._listing(kinds) if obj.get("id") == object_id), None)

    @cached_property
    def events(self) -> EventLog:
        return EventLog(self.id[:8])

    def upsert(self, kind: str, obj: dict) -> dict:
        """Create or replace an object, and log the matching event."""
        listing = self.objects.setdefault(kind, [])
        for position, existing in enumerate(listing):
            if existing.get("id") == obj["id"]:
                listing[position] = obj
                previous = {k: v for k, v in existing.items() if obj.get(k) != v}
                return self.events.record(kind, "updated", obj, previous)
        listing.append(obj)
        return self.events.record(kind, "created", obj)

    def delete(self, kind: str, object_id: str) -> dict:
        listing = self.objects.get(kind, [])
        obj = next(o for o in listing if o.get("id") == object_id)
        listing.remove(obj)
        return self.events.record(kind, "deleted", obj)


@dataclass
class SandboxData:
    """All districts of one sandbox, keyed by id and by token."""

    seed: int = 42
    districts: int = 2
    students: int = 2000
    share_by_schools: tuple[int, ...] = field(default=(1,))  # district numbers that Share by Schools
    handmade: list[HandmadeDistrict] = field(default_factory=list)
    equal_sizes: bool = False  # every district as large as the first (a vendor's many similar districts)

    @cached_property
    def specs(self) -> list:
        generated = [
            DistrictSpec(self.seed, n, self.students if self.equal_sizes else max(1, self.students - n * self.students // 5),
                         n in self.share_by_schools)
            for n in range(self.districts)
        ]
        return [*generated, *self.handmade]

    @cached_property
    def by_token(self) -> dict:
        return {spec.token: spec for spec in self.specs}
