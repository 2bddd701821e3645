"""School confirmation reports: one self-contained HTML page (and CSV files) per school.

After each publish a school liaison confirms the school's roster. The page leads with what
the school must fix in the SIS (each record with the reason in plain words and the fix), then
shows what was loaded (students per grade of the grades the school serves, against the previous
sync; the sections of the subjects the district's rules profile keeps, with teacher, co-teachers, period and
enrollment count, sections of one name told apart by their section number). Records kept out by
design (a subject or grade the vendor does not process) need no fix, so they are only counted, in
a collapsed list at the end; the reason codes' `to_fix_in_sis` column decides which is which.

Every page and CSV says which publish it shows ("Roster as of …", in ROSTER_SYNC_TIMEZONE: Clever's
district object carries no time zone). The changes since the last sync are one line per change: an
enrollment that changed, came or left because its teacher, section, student or school did is
counted on that record's line (a teacher's new email is one line, not one per enrollment), and the
index counts the same lines. A district index links the schools, flags a district whose SIS Clever
has not synced for ROSTER_SIS_STALE_DAYS, and names the schools the district no longer shares: a
school no longer published has no page or CSV left behind (a liaison must never confirm an old
roster); a school shared again says so on its page. Changes use `roster_changes`' words ("school no
longer shared", "school shared again"), as the mass-change guard does. Everything is read from the
published `roster` tables, so the page says exactly what analysts see; the pages carry their CSS
inline and load nothing from the internet.

Pages and CSVs are files outside the warehouse and its roles, so they name people by their SIS
id (the id the liaison looks up in the SIS), never by name, email or birth date, and a reason
about an email or a birth date is said without quoting the value.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path

import jinja2

from roster_pipeline.clever.pause import clever_paused
from roster_pipeline.clever.sis_sync import SIS_STALE, sis_stale_since
from roster_pipeline.modeling.reason_codes import REASON_CODES
from roster_pipeline.modeling.rules import RulesProfile
from roster_pipeline.publishing.history import RESHARED, UNSHARED
from roster_pipeline.publishing.publish import PREVIOUS_SUMMARY, district_labels
from roster_pipeline.settings import (
    CLEVER_ID_PATTERN,
    ConfigError,
    data_dir,
    sis_stale_days,
    sync_timezone,
    validate_clever_id,
    validate_district_id,
)
from roster_pipeline.warehouse.connection import Statements, Warehouse, placeholder, table_columns
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA, PUBLISHED_SCHEMA

TEMPLATES = Path(__file__).resolve().parent / "templates"
GRADES = range(13)  # the summary's per-grade columns: students_grade_k, students_grade_1 .. _12
ENTITY_ORDER = {"student": 0, "teacher": 1, "section": 2}  # a liaison fixes people first; sections often follow
# How a page writes a normalized subject (the rules profile's lower-case spelling) where that reads wrong.
SUBJECT_LABELS = {"ela": "ELA", "pe and health": "PE and health"}


def grade_label(grade: int) -> str:
    """Clever's own word for grade 0, so the page never shows the "K" it rejects elsewhere."""
    return "Kindergarten" if grade == 0 else str(grade)


def subject_label(subject: str) -> str:
    """A kept subject as a page writes it: "ela" → "ELA"; any other as the rules profile spells it."""
    return SUBJECT_LABELS.get(subject, subject)


def subject_list(subjects: Sequence[str], conjunction: str = "and") -> str:
    """The kept subjects in words: "math and ELA", "math, ELA and science" ("" when none is kept)."""
    labels = [subject_label(s) for s in subjects]
    if len(labels) < 2:
        return "".join(labels)
    return f"{', '.join(labels[:-1])} {conjunction} {labels[-1]}"


def kept_subjects(district_id: str) -> tuple[str, ...]:
    """The subjects whose sections the district's roster keeps (`ROSTER_RULES`, else the bundled profile)."""
    return RulesProfile.load().for_district(district_id).subjects_keep


def reports_dir() -> Path:
    """ROSTER_REPORTS_DIR, or `reports/` under the data directory."""
    raw = os.environ.get("ROSTER_REPORTS_DIR")
    path = Path(raw) if raw else data_dir() / "reports"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"ROSTER_REPORTS_DIR {path} exists and is not a folder.")
    return path


@dataclass
class SchoolReport:
    school_id: str
    name: str
    counts: dict[str, int]                      # students, teachers, sections, enrollments, excluded_*, to_fix, ...
    grades: list[tuple[str, int, int | None]]   # (grade label, now, previous sync or None)
    sections: list[dict] = field(default_factory=list)
    to_fix: list[dict] = field(default_factory=list)     # excluded, and the school can fix it in the SIS
    cleared: list[dict] = field(default_factory=list)    # fields left empty (invalid email, birth date)
    by_design: list[dict] = field(default_factory=list)  # excluded, nothing to fix (out of scope)
    changes: list[dict] = field(default_factory=list)    # the last sync's changes, one line each (one_line_per_change)
    came_back: dict[str, int] = field(default_factory=dict)  # per entity, records back with the school (shared again)

    @property
    def since_last_sync(self) -> dict[str, int]:
        """The change lines by kind ("added", "removed", "changed"): the index's counts are the page's lines."""
        return dict(Counter(line["change"] for line in self.changes))

    @property
    def file_stem(self) -> str:
        return f"school_{self.school_id}"

    @property
    def excluded(self) -> list[dict]:
        return self.to_fix + self.by_design


@dataclass
class UnsharedSchool:
    """A school the district no longer shares: no page any more, a line on the index."""

    school_id: str
    name: str
    since: datetime  # the publish that removed it
    removed: dict[str, int]  # per entity, the records that left with it


def with_school(change: dict, sharing: str) -> bool:
    """The record left or came back with its school (its detail starts with the sharing's words, and may
    say more: "school shared again; primary teacher taken from the section's teacher list")."""
    detail = change["detail"] or ""
    return detail == sharing or detail.startswith(f"{sharing};")


def _by_entity(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in sorted(rows, key=lambda r: CHANGE_ORDER.get(r["entity"], 9)):
        counts[row["entity"]] = counts.get(row["entity"], 0) + 1
    return counts


def unshared_schools(sql: Statements, district_id: str) -> list[UnsharedSchool]:
    """The schools the district no longer shares (their last change is "school no longer shared"), with
    when and what left with them: said on the index until the school is shared again, not only the night
    it left (the change log's retention, ROSTER_HISTORY_RETENTION_DAYS, ends it too)."""
    if not table_columns(sql, PUBLISHED_SCHEMA, "roster_changes"):
        return []
    d = placeholder(sql.dialect, "d")
    params = {"d": district_id, "unshared": UNSHARED, "also": f"{UNSHARED};%"}  # "…; primary teacher taken from…"
    gone = sql.execute(f"""
        select record_id, published_at from (
            select record_id, change, detail, published_at,
                   row_number() over (partition by record_id order by published_at desc) as n
            from {PUBLISHED_SCHEMA}.roster_changes where district_id = {d} and entity = 'school') as latest
        where n = 1 and change = 'removed' and detail = {placeholder(sql.dialect, 'unshared')}""", params).fetchall()
    if not gone:
        return []
    left = defaultdict(Counter)
    for school, published_at, entity, count in sql.execute(
            f"select school_id, published_at, entity, count(*) from {PUBLISHED_SCHEMA}.roster_changes "
            f"where district_id = {d} and change = 'removed' and (detail = {placeholder(sql.dialect, 'unshared')} "
            f"or detail like {placeholder(sql.dialect, 'also')}) "
            "and entity <> 'school' group by school_id, published_at, entity", params).fetchall():
        left[(school, published_at)][entity] = count
    names = {}
    if table_columns(sql, PUBLISHED_SCHEMA, "schools_history"):
        names = dict(sql.execute(f"select school_id, name from {PUBLISHED_SCHEMA}.schools_history "
                                 f"where district_id = {d} order by valid_from", params).fetchall())
    return sorted((UnsharedSchool(school, names.get(school) or school, at,
                                  {e: left[(school, at)][e] for e in sorted(left[(school, at)], key=lambda e: CHANGE_ORDER.get(e, 9))})
                   for school, at in gone), key=lambda s: (s.name, s.school_id))


def counted(counts: dict[str, int]) -> str:
    """ "573 students, 24 teachers, 1 section" (the templates' words for records per entity)."""
    return ", ".join(f"{n:,} {entity.replace('_', ' ')}{'' if n == 1 else 's'}" for entity, n in counts.items()) \
        or "no records"


def _entity_rank(row: dict) -> int:
    return ENTITY_ORDER.get(row["entity"], len(ENTITY_ORDER))


def tally(rows: list[dict]) -> str:
    """Records by entity for the headline, e.g. "2 students, 1 section"."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["entity"]] = counts.get(row["entity"], 0) + 1
    ordered = sorted(counts.items(), key=lambda item: (ENTITY_ORDER.get(item[0], len(ENTITY_ORDER)), item[0]))
    return ", ".join(f"{n} {entity}{'' if n == 1 else 's'}" for entity, n in ordered)


def _rows(sql: Statements, query: str, params: dict) -> list[dict]:
    sql.execute(query, params)
    columns = sql.columns
    return [dict(zip(columns, row)) for row in sql.fetchall()]


def expected_grade(value: str) -> str | None:
    """The Clever grade an SIS value plainly means ("K" → "Kindergarten", "05" or "Grade 5" → "5"), if any."""
    text = re.sub(r"^(grade|gr\.?)\s*", "", unicodedata.normalize("NFKC", value).strip().lower())
    if text in ("k", "kg", "kdg", "kinder", "kindergarten"):
        return "Kindergarten"
    if text.isascii() and text.isdigit() and 0 <= int(text) <= 12:
        return grade_label(int(text))
    return None


PEOPLE = ("student", "teacher", "admin")
# Reasons whose detail quotes a person's own value (an email, a birth date): the page says it without the value.
DETAIL_WITHOUT_VALUE = {
    "STUDENT_EMAIL_INVALID": "the email in the SIS is not a valid address; email left empty",
    "STUDENT_DOB_INVALID": "the birth date in the SIS is not a valid date; birth date left empty",
    "TEACHER_EMAIL_INVALID": "the email in the SIS is not a valid address",
    "TEACHER_EMAIL_DUPLICATE": "the same email as the teacher with Clever id {others}",
}


def person_label(sis_id: str | None) -> str:
    """How a page names a student or teacher in its list of records: by SIS id (names stay in the warehouse)."""
    return f"SIS id {sis_id}" if sis_id else "(no SIS id)"


# How a query names a person where no Clever id column stands beside it (sections, changes).
PERSON_LABEL_SQL = "coalesce('SIS id ' || {sis_id}, 'Clever id ' || {clever_id})"


def _explained(row: dict) -> dict:
    """The reason code's meaning and fix; a grade Clever does not define gets the value Clever expects instead.

    The record is named for the page (`record`): a person by SIS id, a section or school by name.
    """
    row = dict(row)
    name = row.pop("record_name", None)
    sis_id = row.pop("sis_id", None)
    row["record"] = person_label(sis_id) if row["entity"] in PEOPLE else (name or "(no name)")
    if row["reason_code"] in DETAIL_WITHOUT_VALUE:  # the other teachers by id: they are on the page too
        others = ", ".join(re.findall(r"\(([0-9a-f]{24})\)", row["detail"] or "")) or "(unknown)"
        row["detail"] = DETAIL_WITHOUT_VALUE[row["reason_code"]].format(others=others)
    code = REASON_CODES.get(row["reason_code"])
    fix = code.fix if code else ""
    raw = re.fullmatch(r'grade is "(.*)"', row["detail"] or "", re.S) if row["reason_code"] == "GRADE_NOT_NUMERIC" else None
    expected = expected_grade(raw.group(1)) if raw else None
    if expected:
        fix = f'Clever expects "{expected}", not "{raw.group(1)}": correct the grade in the SIS.'
    return {**row, "meaning": code.meaning if code else row["reason_code"], "fix": fix,
            "to_fix_in_sis": "no" if code and not code.to_fix_in_sis else "yes"}


def _grade_rows(now: dict, before: dict | None, low: int | None, high: int | None) -> list[tuple[str, int, int | None]]:
    """The grades the school serves (Clever's low..high grade) plus any grade with students now or last sync.

    A bound that is missing or outside Kindergarten..12 (Clever's "PreKindergarten", "13") counts
    as that end of the range, so a school is never shown fewer grades than it serves.
    """
    low, high = sorted((0 if low is None else min(max(low, 0), 12), 12 if high is None else min(max(high, 0), 12)))
    rows = []
    for grade in GRADES:
        column = f"students_grade_{'k' if grade == 0 else grade}"
        previous = before[column] if before else None
        if low <= grade <= high or now[column] or previous:
            rows.append((grade_label(grade), now[column], previous))
    previous = before["students_other_grades"] if before else None
    if now["students_other_grades"] or previous:
        rows.append(("other grades", now["students_other_grades"], previous))
    return rows


def load_reports(warehouse: Warehouse, district_id: str,
                 school_id: str | None = None) -> tuple[list[SchoolReport], list[dict], list[UnsharedSchool]]:
    """(one report per school, excluded records that name no school in scope, the schools the district
    no longer shares)."""
    validate_district_id(district_id, "school reports")
    if school_id is not None:
        validate_clever_id(school_id, "school", "school reports")
    with warehouse.transaction() as sql:
        d = placeholder(sql.dialect, "d")
        params = {"d": district_id}
        summary = _rows(sql, f"select * from {PUBLISHED_SCHEMA}.school_roster_summary where district_id = {d} "
                             "order by name, school_id", params)
        previous = {}
        if table_columns(sql, BUILD_SCHEMA, "previous_school_roster_summary"):
            previous = {r["school_id"]: r for r in _rows(sql, f"select * from {PREVIOUS_SUMMARY} where district_id = {d}", params)}
        co_label = PERSON_LABEL_SQL.format(sis_id="c.sis_id", clever_id="c.teacher_id")
        co_teachers = (  # a roster published before section_teachers existed has none to show
            f"select st.section_id, string_agg({co_label}, ', ' order by {co_label}) as co_teachers "
            f"from {PUBLISHED_SCHEMA}.section_teachers st join {PUBLISHED_SCHEMA}.teachers c "
            f"on c.district_id = st.district_id and c.teacher_id = st.teacher_id "
            f"where st.district_id = {d} and not st.is_primary group by st.section_id"
            if table_columns(sql, PUBLISHED_SCHEMA, "section_teachers") else
            "select cast(null as varchar) as section_id, cast(null as varchar) as co_teachers where false")
        sections = _rows(sql, f"""
            with enrolled as (
                select section_id, count(*) as enrollments from {PUBLISHED_SCHEMA}.enrollments
                where district_id = {d} group by section_id
            ),
            co_teachers as ({co_teachers})
            select s.school_id, s.section_id, s.name, s.section_number, s.period, s.subject, s.grade, s.course_name,
                   case when t.teacher_id is not null then {PERSON_LABEL_SQL.format(sis_id="t.sis_id", clever_id="t.teacher_id")}
                   end as teacher,
                   co_teachers.co_teachers,
                   coalesce(enrolled.enrollments, 0) as enrollments
            from {PUBLISHED_SCHEMA}.sections s
            left join {PUBLISHED_SCHEMA}.teachers t on t.district_id = s.district_id and t.teacher_id = s.teacher_id
            left join co_teachers on co_teachers.section_id = s.section_id
            left join enrolled on enrolled.section_id = s.section_id
            where s.district_id = {d} order by s.school_id, s.subject, s.grade, s.period, s.name, s.section_id""", params)
        served = {r["school_id"]: (r["low_grade"], r["high_grade"]) for r in _rows(
            sql, f"select school_id, low_grade, high_grade from {PUBLISHED_SCHEMA}.schools where district_id = {d}", params)}
        rejected = [_explained(r) for r in _rows(sql, f"""
            select school_id, entity, record_id, record_name, sis_id, reason_code, action, detail
            from {PUBLISHED_SCHEMA}.rejected_records where district_id = {d}
            order by entity, sis_id, record_name, record_id, reason_code, action""", params)]
        changes, names, teacher_of = _changes(sql, district_id)
        unshared = unshared_schools(sql, district_id)
    reports = []
    by_school: dict[tuple, list[dict]] = defaultdict(list)  # (school, table) → rows: one pass, not one per school
    for change in changes:
        by_school[(change["school_id"], "changes")].append(change)
    for section in sections:
        by_school[(section["school_id"], "sections")].append(section)
    for school_sections in [rows for (_, kind), rows in by_school.items() if kind == "sections"]:
        for section, label in zip(school_sections, told_apart(school_sections)):
            section["label"] = label
    for record in rejected:
        kind = "cleared" if record["action"] != "excluded" else ("to_fix" if record["to_fix_in_sis"] == "yes" else "by_design")
        by_school[(record["school_id"], kind)].append(record)
    for row in summary:
        if school_id and row["school_id"] != school_id:
            continue
        report = SchoolReport(  # stable sorts on the query's order: people first to fix, by design grouped by reason
            row["school_id"], row["name"] or row["school_id"],
            {k: row[k] for k in ("students", "teachers", "sections", "enrollments", "excluded_students", "excluded_sections")},
            _grade_rows(row, previous.get(row["school_id"]), *served.get(row["school_id"], (None, None))),
            by_school[(row["school_id"], "sections")],
            sorted(by_school[(row["school_id"], "to_fix")], key=_entity_rank),
            by_school[(row["school_id"], "cleared")],
            sorted(by_school[(row["school_id"], "by_design")], key=lambda r: r["reason_code"]),
        )
        report.changes = one_line_per_change(by_school[(row["school_id"], "changes")], names, teacher_of)
        report.came_back = _by_entity([c for c in by_school[(row["school_id"], "changes")]
                                       if with_school(c, RESHARED) and c["entity"] != "school"])
        report.counts["excluded_teachers"] = sum(r["entity"] == "teacher" for r in report.excluded)
        report.counts["to_fix"] = len(report.to_fix)
        report.counts["values_to_fix"] = len(report.cleared)
        report.counts["by_design"] = len(report.by_design)
        reports.append(report)
    if school_id and not reports:
        raise ConfigError(f"--school {school_id} is not a published school of district {district_id}.")
    known = {r["school_id"] for r in summary}
    unplaced = [r for r in rejected if r["school_id"] not in known]
    return reports, unplaced, unshared


CHANGE_ORDER = {"student": 0, "enrollment": 1, "teacher": 2, "section": 3, "section_teacher": 4, "admin": 5, "school": 6}
PAIRS = {"enrollment": "student", "section_teacher": "teacher"}  # entities keyed section_id:<person id>
CHANGE_COLUMNS = ["entity", "change", "record_id", "name", "detail", "records", "published_at"]
# The enrollment columns that copy its section's primary teacher: they change when the teacher's record does.
TEACHER_COPIES = {"teacher_first_name", "teacher_last_name", "teacher_email"}


def told_apart(sections: list[dict]) -> list[str]:
    """Each section's name as a page writes it: a name that repeats at the school gets its section number
    ("Tenth Grade English - Hauck - 7 (section 1012-3)"), or its Clever id when the number does not tell
    them apart either (missing, or the same)."""
    names = Counter(s["name"] for s in sections)
    numbers = Counter((s["name"], s["section_number"]) for s in sections)
    labels = []
    for s in sections:
        name = s["name"] or s["section_id"]
        if names[s["name"]] < 2:
            labels.append(name)
        elif s["section_number"] and numbers[(s["name"], s["section_number"])] < 2:
            labels.append(f"{name} (section {s['section_number']})")
        else:
            labels.append(f"{name} (Clever id {s['section_id']})")
    return labels


def _changes(sql: Statements, district_id: str) -> tuple[list[dict], dict[tuple[str, str], str], dict[str, str]]:
    """(the last publish's changes, named; the names by (entity, id); each section's primary teacher).

    Names come from the history tables: a record's version current at the publish, or the one it
    removed (people by SIS id; sections of one name at a school told apart). An enrollment is named
    by its student and section.
    """
    if not table_columns(sql, PUBLISHED_SCHEMA, "roster_changes"):
        return [], {}, {}
    d = placeholder(sql.dialect, "d")
    params = {"d": district_id}
    latest = sql.execute(f"select max(published_at) from {PUBLISHED_SCHEMA}.publishes where district_id = {d}",
                         params).fetchone()[0]
    if latest is None:
        return [], {}, {}
    at = {**params, "t": latest}
    t = placeholder(sql.dialect, "t")
    rows = _rows(sql, f"select entity, change, record_id, school_id, changed_columns, detail, published_at "
                      f"from {PUBLISHED_SCHEMA}.roster_changes where district_id = {d} and published_at = {t}", at)
    current = f"where district_id = {d} and valid_from <= {t} and (valid_to is null or valid_to >= {t}) order by valid_from"
    names: dict[tuple[str, str], str] = {}
    for entity, table, key, label in (("student", "students", "student_id",
                                       PERSON_LABEL_SQL.format(sis_id="sis_id", clever_id="student_id")),
                                      ("teacher", "teachers", "teacher_id",
                                       PERSON_LABEL_SQL.format(sis_id="sis_id", clever_id="teacher_id")),
                                      ("school", "schools", "school_id", "name")):
        if table_columns(sql, PUBLISHED_SCHEMA, f"{table}_history"):
            for record, name in sql.execute(
                    f"select {key}, {label} from {PUBLISHED_SCHEMA}.{table}_history {current}", at).fetchall():
                names[(entity, record)] = name  # the newest version wins (a changed record has two)
    teacher_of: dict[str, str] = {}
    history = table_columns(sql, PUBLISHED_SCHEMA, "sections_history")
    if history:
        number = "section_number" if "section_number" in history else "cast(null as varchar)"  # kept before it existed
        sections = {r["section_id"]: r for r in _rows(
            sql, f"select section_id, school_id, name, {number} as section_number, teacher_id "
                 f"from {PUBLISHED_SCHEMA}.sections_history {current}", at)}
        by_school: dict[str, list[dict]] = defaultdict(list)
        for section in sections.values():
            by_school[section["school_id"]].append(section)
            teacher_of[section["section_id"]] = section["teacher_id"]
        for school_sections in by_school.values():
            for section, label in zip(school_sections, told_apart(school_sections)):
                names[("section", section["section_id"])] = label
    for row in rows:
        if row["entity"] in PAIRS:  # section_id:student_id, section_id:teacher_id
            section, person = row["record_id"].split(":", 1)
            person = names.get((PAIRS[row["entity"]], person), person)
            row["name"] = f"{person} in {names.get(('section', section), section)}"
        else:
            row["name"] = names.get((row["entity"], row["record_id"].split(":")[0]), row["record_id"])
    rows.sort(key=lambda r: (CHANGE_ORDER.get(r["entity"], 9), r["change"], r["name"] or "", r["record_id"]))
    return rows, names, teacher_of


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def one_line_per_change(rows: list[dict], names: dict[tuple[str, str], str], teacher_of: dict[str, str]) -> list[dict]:
    """A school's changes (`roster_changes` rows, ordered), one line per change a person would name.

    The records that changed, came or left only because another record did are counted on its line
    (`records`: how many `roster_changes` rows a line stands for):
    - enrollments whose copy of their teacher's name or email changed: the teacher's line, so a
      teacher's new email is one line, not one per enrollment (a line is made for a teacher of
      another school);
    - enrollments changed by their section (teacher, name, grade): the section's line;
    - enrollments (and section teachers) that came or left with their student (enrolled, withdrawn)
      or their section: that record's line;
    - records that came back with their school (shared again): the school's line.
    Everything else is a line of its own, as `roster_changes` says it.
    """
    own = {(r["entity"], r["record_id"], r["change"]) for r in rows}
    lines: dict[tuple[str, str, str], dict] = {}
    folded: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    sections_of: dict[tuple[str, str, str], set] = defaultdict(set)

    def line(entity: str, record_id: str, change: str, detail: str, published_at) -> tuple[str, str, str]:
        key = (entity, record_id, change)
        lines.setdefault(key, {"entity": entity, "change": change, "record_id": record_id,
                               "name": names.get((entity, record_id), record_id), "detail": detail, "records": 0,
                               "published_at": published_at})
        return key

    for row in rows:
        key, entity = None, row["entity"]
        if entity != "school" and with_school(row, RESHARED) and ("school", row["school_id"], row["change"]) in own:
            key = ("school", row["school_id"], row["change"])
        elif entity == "section_teacher" and row["change"] != "changed" and \
                ("section", row["record_id"].split(":", 1)[0], row["change"]) in own:
            key = ("section", row["record_id"].split(":", 1)[0], row["change"])
        elif entity == "enrollment":
            section, student = row["record_id"].split(":", 1)
            columns = set((row["changed_columns"] or "").split(","))
            if row["change"] == "changed" and columns <= TEACHER_COPIES and teacher_of.get(section):
                what = "; ".join(f"{c.removeprefix('teacher_').replace('_', ' ')} changed" for c in sorted(columns))
                key = line("teacher", teacher_of[section], "changed", what, row["published_at"])
                sections_of[key].add(section)
            elif row["change"] == "changed":
                key = line("section", section, "changed", row["detail"], row["published_at"])
            elif ("student", student, row["change"]) in own:
                key = ("student", student, row["change"])
                sections_of[key].add(section)
            elif ("section", section, row["change"]) in own:
                key = ("section", section, row["change"])
        if key is None:  # a line of its own (first made here, or made above for the records it carries)
            key = line(entity, row["record_id"], row["change"], row["detail"], row["published_at"])
            lines[key].update(name=row["name"], detail=row["detail"])
            lines[key]["records"] += 1
        else:
            folded[key][entity] += 1
    result = []
    for key, said in lines.items():
        with_it = folded.get(key)
        if with_it:
            said["records"] += sum(with_it.values())
            said["detail"] = f"{said['detail']} ({_carried(key, with_it, len(sections_of.get(key, ())))})"
        result.append(said)
    result.sort(key=lambda r: (CHANGE_ORDER.get(r["entity"], 9), r["change"], r["name"] or "", r["record_id"]))
    return result


def _carried(key: tuple[str, str, str], with_it: Counter, sections: int) -> str:
    """What a line carries, in words: "in 75 enrollments of 3 sections", "left 6 sections"."""
    entity, _, change = key
    enrollments = with_it.get("enrollment", 0)
    if entity == "school":
        return f"{counted({e: with_it[e] for e in sorted(with_it, key=lambda e: CHANGE_ORDER.get(e, 9))})} came back with it"
    if entity == "teacher":
        return f"in {_plural(enrollments, 'enrollment')} of {_plural(sections, 'section')}"
    if entity == "student":
        return f"{'joined' if change == 'added' else 'left'} {_plural(sections, 'section')}"
    if entity == "section" and change == "changed":
        return f"and its {_plural(enrollments, 'enrollment')}"
    return f"with {counted(dict(sorted(with_it.items(), key=lambda item: CHANGE_ORDER.get(item[0], 9))))}"


def _sections_of(subjects: Sequence[str], conjunction: str = "and") -> str:
    """ "math and ELA sections", or plain "sections" when the profile keeps no subject."""
    words = subject_list(subjects, conjunction)
    return f"{words} sections" if words else "sections"


def _environment(subjects: Sequence[str]) -> jinja2.Environment:
    """The templates, with the kept sections in words: `kept_sections` ("math and ELA sections"), `kept_sections_or`."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(tally=tally, counted=counted, grade_label=grade_label, kept_sections=_sections_of(subjects),
                       kept_sections_or=_sections_of(subjects, "or"))
    env.filters["first_upper"] = lambda text: text[:1].upper() + text[1:]
    return env


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula


def spreadsheet_safe(value):
    """A text cell that a spreadsheet would run as a formula, with a leading `'` (OWASP's CSV-injection advice).

    Names and SIS values are typed at the district: "=HYPERLINK(...)" in a teacher's name must stay
    text when a liaison opens the CSV. Numbers are written as numbers, untouched.
    """
    return "'" + value if value.__class__ is str and value.startswith(FORMULA_STARTS) else value


def _write_csv(path: Path, rows: list[dict], columns: list[str], as_of: str) -> None:
    """The named columns of each row, then `roster_as_of`: the publish the row shows, on every row (a row
    copied elsewhere keeps its date; a title line would break the CSV for a program). Plain csv.writer:
    DictWriter's per-field checks cost seconds at 1M students."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*columns, "roster_as_of"])
        writer.writerows([*(spreadsheet_safe(row.get(c)) for c in columns), as_of] for row in rows)


def inside(folder: Path, name: str) -> Path:
    """folder/name, refused unless it resolves inside `folder`: a page is never written anywhere else."""
    path = (folder / name).resolve()
    if path.parent != folder.resolve():
        raise RuntimeError(f"A school page's file name would leave the reports folder {folder}; nothing written there.")
    return path


SECTION_COLUMNS = ["section_id", "name", "section_number", "period", "subject", "grade", "course_name", "teacher",
                   "co_teachers", "enrollments"]
EXCLUDED_COLUMNS = ["entity", "action", "to_fix_in_sis", "record", "record_id", "reason_code", "meaning", "detail", "fix"]


PARALLEL_MIN_SCHOOLS = 200  # below this a second process costs more than it saves


@dataclass(frozen=True)
class PageContext:
    """What every page of a district says above its tables."""

    district: str                  # the district's label
    as_of: str                     # "Roster as of December 4, 2026, 7:58 PM PST" (the last publish)
    as_of_iso: str                 # the same instant for the CSVs' roster_as_of, ISO 8601 with its offset
    paused: str | None = None      # Clever pauses the district's syncs (pause_note)
    stale_sis: str | None = None   # Clever has not synced the district's SIS for ROSTER_SIS_STALE_DAYS


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def in_words(moment: datetime, zone: tzinfo, with_time: bool = True) -> str:
    """ "December 4, 2026, 7:58 PM PST": a moment as a liaison reads it, in the district's time zone."""
    local = _aware(moment).astimezone(zone)
    day = f"{local:%B} {local.day}, {local.year}"
    if not with_time:
        return day
    return f"{day}, {local.hour % 12 or 12}:{local:%M} {'AM' if local.hour < 12 else 'PM'} {local.tzname()}"


def page_context(warehouse: Warehouse, district_id: str, district: str, now: datetime | None = None) -> PageContext:
    """The district's last publish ("Roster as of"), Clever's pause and a stale SIS sync, for its pages.

    Times are in ROSTER_SYNC_TIMEZONE: Clever's district object has no time zone, and the nightly sync
    runs in this one, so an installation serving another zone's districts sets it to theirs.
    """
    zone, days = sync_timezone(), sis_stale_days()
    now = now or datetime.now(timezone.utc)
    with warehouse.transaction() as sql:
        have = table_columns(sql, PUBLISHED_SCHEMA, "districts")
        wanted = [c for c in ("published_at", "last_sync", "state", "pause_start", "pause_end") if c in have]
        row = sql.execute(f"select {', '.join(wanted)} from {PUBLISHED_SCHEMA}.districts where district_id = "
                          f"{placeholder(sql.dialect, 'd')}", {"d": district_id}).fetchone() if wanted else None
    facts = dict(zip(wanted, row)) if row else {}
    published = _aware(facts.get("published_at") or now)
    paused = _pause_sentence(facts.get("state"), facts.get("pause_start"), facts.get("pause_end"), now)
    stale = sis_stale_since(facts.get("last_sync"), paused is not None, now, days)
    return PageContext(
        district, f"Roster as of {in_words(published, zone)}", published.astimezone(zone).isoformat(timespec="seconds"),
        paused, None if stale is None else (
            f"{SIS_STALE.format(date=in_words(stale, zone, with_time=False))} (more than {_plural(days, 'day')}): "
            "changes made in the SIS since then are not in this roster. The district's Clever admin can check the "
            "SIS sync in Clever."))


def _write_school_files(folder: Path, page: PageContext, reports: list[SchoolReport], subjects: Sequence[str]) -> None:
    env = _environment(subjects)
    template = env.get_template("school_report.html.j2")
    for report in reports:
        inside(folder, f"{report.file_stem}.html").write_text(template.render(report=report, page=page), encoding="utf-8")
        _write_csv(inside(folder, f"{report.file_stem}_grades.csv"),
                   [{"grade": g, "students": now, "previous_sync": prev} for g, now, prev in report.grades],
                   ["grade", "students", "previous_sync"], page.as_of_iso)
        _write_csv(inside(folder, f"{report.file_stem}_sections.csv"), report.sections, SECTION_COLUMNS, page.as_of_iso)
        _write_csv(inside(folder, f"{report.file_stem}_changes.csv"), report.changes, CHANGE_COLUMNS, page.as_of_iso)
        # the page's order: to fix, values left empty, then by design
        _write_csv(inside(folder, f"{report.file_stem}_excluded.csv"), report.to_fix + report.cleared + report.by_design,
                   EXCLUDED_COLUMNS, page.as_of_iso)


def _write_all_school_files(folder: Path, page: PageContext, reports: list[SchoolReport], subjects: Sequence[str],
                            parallel: bool | None) -> None:
    """Every school's files; a large district's pages are rendered on two cores.

    Rendering is pure Python (Jinja2 and csv hold the GIL), so threads would not help: a forked
    child writes half the schools from the data already in memory (nothing is pickled or
    re-imported) while this process writes the other half. The child touches no database.
    """
    if parallel is None:
        parallel = len(reports) >= PARALLEL_MIN_SCHOOLS
    if not parallel or "fork" not in multiprocessing.get_all_start_methods():
        _write_school_files(folder, page, reports, subjects)
        return
    half = len(reports) // 2
    child = multiprocessing.get_context("fork").Process(
        target=_write_school_files, args=(folder, page, reports[half:], subjects), name="school-pages")
    child.start()
    try:
        _write_school_files(folder, page, reports[:half], subjects)
    finally:
        child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"Writing the second half of district {page.district}'s school pages failed "
                           f"(helper process exit code {child.exitcode}; its error is in the step's stderr).")


SCHOOL_FILE = re.compile(r"school_([0-9a-f]{24})(?:_[a-z]+)?\.(?:html|csv)")


def remove_stale_pages(folder: Path, schools: set[str]) -> int:
    """Delete the pages and CSVs of schools no longer published (unshared, out of scope): a liaison must
    never confirm an old roster. Only files this module names (`school_<id>…`); returns how many."""
    stale = [path for path in folder.glob("school_*")
             if (match := SCHOOL_FILE.fullmatch(path.name)) and match.group(1) not in schools]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _pause_sentence(state: str | None, start: datetime | None, end: datetime | None, now: datetime) -> str | None:
    """The pages' sentence while Clever pauses the district's syncs (None otherwise)."""
    start, end = (None if m is None else _aware(m) for m in (start, end))
    if not clever_paused(state, start, end, now):
        return None
    until = f" until {end:%B} {end.day}, {end.year}" if end else ""  # Clever's pause dates are UTC midnights
    return (f"Clever has paused this district's roster sync{until} (the summer break): the roster below cannot "
            "change until then, and changes made in the SIS meanwhile arrive when the sync resumes.")


def require_published(warehouse: Warehouse, district_id: str) -> None:
    """Refuse a district the roster has never published (a typo, another installation's id): its pages
    would be an empty index, written without a word."""
    with warehouse.transaction() as sql:
        known = bool(table_columns(sql, PUBLISHED_SCHEMA, "districts")) and sql.execute(
            f"select 1 from {PUBLISHED_SCHEMA}.districts where district_id = {placeholder(sql.dialect, 'd')}",
            {"d": district_id}).fetchone() is not None
    if not known:
        raise ConfigError(f"--district {district_id} has no published roster here (not synced yet, or another "
                          "installation's district); `roster-pipeline status` lists the districts.")


def write_reports(warehouse: Warehouse, district_id: str, out_dir: Path, school_id: str | None = None,
                  parallel: bool | None = None, subjects: Sequence[str] | None = None) -> dict:
    """Write the district's pages and CSVs under out_dir/<district_id>/; returns what was written.

    parallel: render on two processes (default: when the district has PARALLEL_MIN_SCHOOLS schools).
    subjects: the subjects the district's sections were kept for, as the pages name them (default:
    the district's `subjects.keep` in the rules profile of `ROSTER_RULES`, or the bundled one).
    """
    with warehouse.held_open():  # three reads, on one open DuckDB file
        reports, unplaced, unshared = load_reports(warehouse, district_id, school_id)
        page = page_context(warehouse, district_id, district_labels(warehouse, [district_id], short=True)[district_id])
    # Notices about the whole district (DEMOGRAPHICS_NOT_SHARED) lead the index; they are no excluded record.
    notices = [u for u in unplaced if u["entity"] == "district"]
    unplaced = [u for u in unplaced if u["entity"] != "district"]
    # A file name is built from the school's id: one that is not a Clever id ("../../x", "a/b") gets no
    # page, named by its place in the district's list (never by the id, which could be anything).
    invalid = [n for n, r in enumerate(reports, 1) if not CLEVER_ID_PATTERN.match(r.school_id)]
    reports = [r for r in reports if CLEVER_ID_PATTERN.match(r.school_id)]
    subjects = kept_subjects(district_id) if subjects is None else tuple(subjects)
    folder = out_dir / district_id  # folders keep the id: names change, ids do not
    folder.mkdir(parents=True, exist_ok=True)
    _write_all_school_files(folder, page, reports, subjects, parallel)
    env = _environment(subjects)
    index = inside(folder, "index.html")
    if school_id is None:  # the index covers the whole district
        # a school no longer published (no longer shared, out of scope) keeps no page: the index says why
        remove_stale_pages(folder, {r.school_id for r in reports})
        totals = {k: sum(r.counts[k] for r in reports) for k in reports[0].counts} if reports else {}
        index.write_text(env.get_template("district_index.html.j2").render(
            page=page, reports=reports, totals=totals, unplaced=unplaced, without_page=len(invalid), notices=notices,
            unshared=unshared, in_words=lambda moment: in_words(moment, sync_timezone(), with_time=False)),
            encoding="utf-8")
    preview = ["| school | students | sections | to fix in the SIS | by design |", "| --- | ---: | ---: | ---: | ---: |"] + [
        f"| {r.name.replace('|', '/')} | {r.counts['students']} | {r.counts['sections']} | {len(r.to_fix)} | {len(r.by_design)} |"
        for r in reports[:10]]
    return {"folder": folder, "index": index, "schools": len(reports), "preview": "\n".join(preview),
            "schools_without_page": invalid,  # positions (1-based, by name) of schools whose id is not a Clever id
            "excluded": sum(len(r.excluded) for r in reports) + sum(u["action"] == "excluded" for u in unplaced)}
