"""Deliberately dirty values, at fixed and realistic rates, as real district rosters carry them.

Which object gets a dirty value is chosen by a hash of its index, so the same seed puts the same
bad grade on the same student. Out-of-enum grades and impossible birth dates are the only values
allowed to break Clever's schema (roster_pipeline_tests/test_sandbox.py checks that).
"""

from __future__ import annotations

from roster_pipeline.sandbox.layout import DistrictSpec, grade_label
from roster_pipeline.sandbox.names import person_name

DIRTY_GRADES = ["Other", "PostGraduate", "Ungraded", "", "PreKindergarten", "13", None]
GARBAGE_GRADES = ["K", "05", "Grade 3"]
BAD_DOBS = ["13/45/2010", "2/30/2011", "00/00/0000", "sometime in 2012"]
BAD_EMAILS = ["not-an-email", "jo@@school", "@example.org", "student at school.org"]
# iep_status is free text in Clever v3.1: SIS spellings the rules read, and values they cannot.
FREE_TEXT_FLAGS = ["yes", " No ", "TRUE", "false", "1", "0", "Pending evaluation", "See file"]


def grade(spec: DistrictSpec, kind: str, index: int, clean: int, per_mille: int) -> str | None:
    """The clean grade label; `per_mille` objects in 1000 get an odd value, a quarter as many again garbage."""
    roll = spec.h(kind, index, "grade") % 1000
    if roll < per_mille:
        return DIRTY_GRADES[roll % len(DIRTY_GRADES)]
    if roll < per_mille + per_mille // 4:
        return GARBAGE_GRADES[roll % len(GARBAGE_GRADES)]
    return grade_label(clean)


def student_dob(spec: DistrictSpec, index: int, grade: int, year: int = 0) -> str:
    """A birth date that fits the grade in school year `year` (M/D/YYYY, as Clever sends it; the
    same every year for the same student); 1 in 100 impossible."""
    roll = spec.h("student", index, "dob") % 1000
    birth_year = 2026 + year - 6 - grade + (roll % 2)
    return BAD_DOBS[roll % len(BAD_DOBS)] if roll < 10 else f"{1 + roll % 12}/{1 + roll % 28}/{birth_year}"


def student_email(spec: DistrictSpec, index: int, name: dict) -> str | None:
    """1 in 100 malformed, 5 in 100 missing, 3 in 100 upper case with padding, the rest clean; of those
    padded or clean, 1 in 100 (drawn apart) malformed in a way the pattern lets through (`jo..smith`)."""
    mail_roll = spec.h("student", index, "email") % 1000
    if mail_roll < 10:
        return BAD_EMAILS[mail_roll % len(BAD_EMAILS)]
    if mail_roll < 60:
        return None
    dots = ".." if spec.h("student", index, "email_syntax") % 1000 < 10 else "."
    email = f"{name['first'].lower()}{dots}{name['last'].lower().replace(chr(39), '')}{index}@students.{spec.domain}"
    if mail_roll < 90:
        email = f"  {email.upper()} "
    return email


def teacher_email(spec: DistrictSpec, index: int) -> str | None:
    """Missing, empty, malformed, shared with the previous teacher, padded or clean; of those padded or
    clean, 1 in 100 (drawn apart) with a stray quote the pattern lets through (`hauc"k12@…`, as Clever's
    demo district has one)."""
    clean = teacher_email_clean(spec, index)
    roll = spec.h("teacher", index, "email") % 1000
    if roll < 10:
        return None
    if roll < 15:
        return ""
    if roll < 25:
        return clean.replace("@", "")  # malformed: no domain part
    if roll < 35 and index > 0:
        return teacher_email_clean(spec, index - 1).upper()  # shared with the previous teacher
    if spec.h("teacher", index, "email_syntax") % 1000 < 10:
        clean = f'{clean[:4]}"{clean[4:]}'  # no mail server takes it: the pattern does
    if roll < 80:
        return f" {clean.title()} "  # mixed case and padding: fine after trim + lower
    return clean


def iep_status(spec: DistrictSpec, index: int, generated: str) -> str:
    """The generated flag, or for 1 student in 100 (drawn apart) free text: a spelling of yes or no
    the rules read, or a value they cannot (Clever v3.1's iep_status is free text)."""
    roll = spec.h("student", index, "free_text") % 1000
    return FREE_TEXT_FLAGS[roll % len(FREE_TEXT_FLAGS)] if roll < 10 else generated


def teacher_email_clean(spec: DistrictSpec, index: int) -> str:
    name = person_name(spec, "teacher", index)
    return f"{name['first'][0].lower()}{name['last'].lower().replace(chr(39), '')}{index}@{spec.domain}"
