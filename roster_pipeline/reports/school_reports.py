"""School confirmation reports: one self-contained HTML page (and CSV files) per school.

After each publish a school liaison confirms the school's roster. The page leads with what
the school must fix in the SIS (each record with the reason in plain words and the fix), then
shows what was loaded (students per grade of the grades the school serves, against the previous
sync; the sections of the subjects the district's rules profile keeps, with teacher, period and
enrollment count). Records kept out by design (a subject or grade the vendor does not process)
need no fix, so they are only counted, in a collapsed list at the end; the reason codes'
`to_fix_in_sis` column decides which is which. A district index links the schools, and names the
schools the district stopped sharing in the last sync (each page then says only that: its roster
and CSVs are gone with the sharing); a school shared again says so on its page. A school no longer
published has no page or CSV left behind, stale. Changes use `roster_changes`' words ("school no longer
shared", "school shared again"), as the mass-change guard does. Everything
is read from the published `roster` tables, so the page says exactly what analysts see; the
pages carry their CSS inline and load nothing from the internet.

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
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import jinja2

from roster_pipeline.clever.pause import clever_paused
from roster_pipeline.modeling.reason_codes import REASON_CODES
from roster_pipeline.modeling.rules import RulesProfile
from roster_pipeline.publishing.history import RESHARED, UNSHARED
from roster_pipeline.publishing.publish import PREVIOUS_SUMMARY, district_labels
from roster_pipeline.settings import CLEVER_ID_PATTERN, ConfigError, data_dir, validate_clever_id, validate_district_id
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
    changes: list[dict] = field(default_factory=list)    # what the last sync changed (roster_changes)
    week: dict[str, int] = field(default_factory=dict)   # changes of the last 7 days: added, removed, changed

    @property
    def came_back(self) -> dict[str, int]:
        """Per entity, the records that came back with the school in the last sync (it is shared again)."""
        return _by_entity([c for c in self.changes if c["detail"] == RESHARED and c["entity"] != "school"])

    @property
    def file_stem(self) -> str:
        return f"school_{self.school_id}"

    @property
    def excluded(self) -> list[dict]:
        return self.to_fix + self.by_design


@dataclass
class UnsharedSchool:
    """A school the district stopped sharing in the last sync: no page any more, a line on the index."""

    school_id: str
    name: str
    removed: dict[str, int]  # per entity, the records that left with it


def _by_entity(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in sorted(rows, key=lambda r: CHANGE_ORDER.get(r["entity"], 9)):
        counts[row["entity"]] = counts.get(row["entity"], 0) + 1
    return counts


def unshared_schools(changes: list[dict]) -> list[UnsharedSchool]:
    """The schools the last publish removed because the district no longer shares them, with what left with them."""
    gone = {c["school_id"]: c["name"] for c in changes if c["entity"] == "school" and c["detail"] == UNSHARED}
    return sorted((UnsharedSchool(school, name or school, _by_entity(
        [c for c in changes if c["school_id"] == school and c["detail"] == UNSHARED and c["entity"] != "school"]))
        for school, name in gone.items()), key=lambda s: (s.name, s.school_id))


def counted(counts: dict[str, int]) -> str:
    """ "573 students, 24 teachers, 1 section" (the templates' words for records per entity)."""
    return ", ".join(f"{n:,} {entity}{'' if n == 1 else 's'}" for entity, n in counts.items()) or "no records"


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
    """(one report per school, excluded records that name no school in scope, the schools no longer
    shared since the last sync)."""
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
        sections = _rows(sql, f"""
            with enrolled as (
                select section_id, count(*) as enrollments from {PUBLISHED_SCHEMA}.enrollments
                where district_id = {d} group by section_id
            )
            select s.school_id, s.section_id, s.name, s.period, s.subject, s.grade, s.course_name,
                   case when t.teacher_id is not null then {PERSON_LABEL_SQL.format(sis_id="t.sis_id", clever_id="t.teacher_id")}
                   end as teacher,
                   coalesce(enrolled.enrollments, 0) as enrollments
            from {PUBLISHED_SCHEMA}.sections s
            left join {PUBLISHED_SCHEMA}.teachers t on t.district_id = s.district_id and t.teacher_id = s.teacher_id
            left join enrolled on enrolled.section_id = s.section_id
            where s.district_id = {d} order by s.school_id, s.subject, s.grade, s.period, s.name, s.section_id""", params)
        served = {r["school_id"]: (r["low_grade"], r["high_grade"]) for r in _rows(
            sql, f"select school_id, low_grade, high_grade from {PUBLISHED_SCHEMA}.schools where district_id = {d}", params)}
        rejected = [_explained(r) for r in _rows(sql, f"""
            select school_id, entity, record_id, record_name, sis_id, reason_code, action, detail
            from {PUBLISHED_SCHEMA}.rejected_records where district_id = {d}
            order by entity, sis_id, record_name, record_id, reason_code, action""", params)]
        changes, week = _changes(sql, district_id)
    reports = []
    by_school: dict[tuple, list[dict]] = defaultdict(list)  # (school, table) → rows: one pass, not one per school
    for change in changes:
        by_school[(change["school_id"], "changes")].append(change)
    for section in sections:
        by_school[(section["school_id"], "sections")].append(section)
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
        report.changes = by_school[(row["school_id"], "changes")]
        report.week = week.get(row["school_id"], {})
        report.counts["excluded_teachers"] = sum(r["entity"] == "teacher" for r in report.excluded)
        report.counts["to_fix"] = len(report.to_fix)
        report.counts["values_to_fix"] = len(report.cleared)
        report.counts["by_design"] = len(report.by_design)
        reports.append(report)
    if school_id and not reports:
        raise ConfigError(f"--school {school_id} is not a published school of district {district_id}.")
    known = {r["school_id"] for r in summary}
    unplaced = [r for r in rejected if r["school_id"] not in known]
    return reports, unplaced, unshared_schools(changes)


CHANGE_ORDER = {"student": 0, "enrollment": 1, "teacher": 2, "section": 3, "admin": 4, "school": 5}
CHANGE_COLUMNS = ["entity", "change", "record_id", "name", "detail", "published_at"]


def _changes(sql: Statements, district_id: str) -> tuple[list[dict], dict[str, dict[str, int]]]:
    """(the last publish's changes, named; per school the changes of the 7 days before it).

    Names come from the history tables: a record's version current at the publish, or the one it
    removed (people by SIS id). An enrollment is named by its student and section.
    """
    if not table_columns(sql, PUBLISHED_SCHEMA, "roster_changes"):
        return [], {}
    d = placeholder(sql.dialect, "d")
    params = {"d": district_id}
    latest = sql.execute(f"select max(published_at) from {PUBLISHED_SCHEMA}.publishes where district_id = {d}",
                         params).fetchone()[0]
    if latest is None:
        return [], {}
    at = {**params, "t": latest}
    t = placeholder(sql.dialect, "t")
    week: dict[str, dict[str, int]] = defaultdict(dict)
    for school, change, count in sql.execute(
            f"select school_id, change, count(*) from {PUBLISHED_SCHEMA}.roster_changes where district_id = {d} "
            f"and published_at > {t} - interval '7 days' group by school_id, change", at).fetchall():
        week[school][change] = count
    rows = _rows(sql, f"select entity, change, record_id, school_id, detail, published_at "
                      f"from {PUBLISHED_SCHEMA}.roster_changes where district_id = {d} and published_at = {t}", at)
    names: dict[tuple[str, str], str] = {}
    for entity, table, key, label in (("student", "students", "student_id",
                                       PERSON_LABEL_SQL.format(sis_id="sis_id", clever_id="student_id")),
                                      ("teacher", "teachers", "teacher_id",
                                       PERSON_LABEL_SQL.format(sis_id="sis_id", clever_id="teacher_id")),
                                      ("section", "sections", "section_id", "name"), ("school", "schools", "school_id", "name")):
        if table_columns(sql, PUBLISHED_SCHEMA, f"{table}_history"):
            for record, name in sql.execute(
                    f"select {key}, {label} from {PUBLISHED_SCHEMA}.{table}_history where district_id = {d} "
                    f"and valid_from <= {t} and (valid_to is null or valid_to >= {t})", at).fetchall():
                names[(entity, record)] = name
    for row in rows:
        if row["entity"] == "enrollment":
            section, student = row["record_id"].split(":", 1)
            row["name"] = f"{names.get(('student', student), student)} in {names.get(('section', section), section)}"
        else:
            row["name"] = names.get((row["entity"], row["record_id"].split(":")[0]), row["record_id"])
    rows.sort(key=lambda r: (CHANGE_ORDER.get(r["entity"], 9), r["change"], r["name"] or "", r["record_id"]))
    return rows, dict(week)


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


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """The named columns of each row (plain csv.writer: DictWriter's per-field checks cost seconds at 1M students)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([spreadsheet_safe(row.get(c)) for c in columns] for row in rows)


def inside(folder: Path, name: str) -> Path:
    """folder/name, refused unless it resolves inside `folder`: a page is never written anywhere else."""
    path = (folder / name).resolve()
    if path.parent != folder.resolve():
        raise RuntimeError(f"A school page's file name would leave the reports folder {folder}; nothing written there.")
    return path


SECTION_COLUMNS = ["section_id", "name", "period", "subject", "grade", "course_name", "teacher", "enrollments"]
EXCLUDED_COLUMNS = ["entity", "action", "to_fix_in_sis", "record", "record_id", "reason_code", "meaning", "detail", "fix"]


PARALLEL_MIN_SCHOOLS = 200  # below this a second process costs more than it saves


def _write_school_files(folder: Path, district: str, reports: list[SchoolReport], subjects: Sequence[str],
                        paused: str | None = None) -> None:
    env = _environment(subjects)
    template = env.get_template("school_report.html.j2")
    for report in reports:
        inside(folder, f"{report.file_stem}.html").write_text(
            template.render(report=report, district=district, paused=paused), encoding="utf-8")
        _write_csv(inside(folder, f"{report.file_stem}_grades.csv"),
                   [{"grade": g, "students": now, "previous_sync": prev} for g, now, prev in report.grades],
                   ["grade", "students", "previous_sync"])
        _write_csv(inside(folder, f"{report.file_stem}_sections.csv"), report.sections, SECTION_COLUMNS)
        _write_csv(inside(folder, f"{report.file_stem}_changes.csv"), report.changes, CHANGE_COLUMNS)
        # the page's order: to fix, values left empty, then by design
        _write_csv(inside(folder, f"{report.file_stem}_excluded.csv"), report.to_fix + report.cleared + report.by_design,
                   EXCLUDED_COLUMNS)


def _write_all_school_files(folder: Path, district: str, reports: list[SchoolReport], subjects: Sequence[str],
                            parallel: bool | None, paused: str | None = None) -> None:
    """Every school's files; a large district's pages are rendered on two cores.

    Rendering is pure Python (Jinja2 and csv hold the GIL), so threads would not help: a forked
    child writes half the schools from the data already in memory (nothing is pickled or
    re-imported) while this process writes the other half. The child touches no database.
    """
    if parallel is None:
        parallel = len(reports) >= PARALLEL_MIN_SCHOOLS
    if not parallel or "fork" not in multiprocessing.get_all_start_methods():
        _write_school_files(folder, district, reports, subjects, paused)
        return
    half = len(reports) // 2
    child = multiprocessing.get_context("fork").Process(
        target=_write_school_files, args=(folder, district, reports[half:], subjects, paused), name="school-pages")
    child.start()
    try:
        _write_school_files(folder, district, reports[:half], subjects, paused)
    finally:
        child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"Writing the second half of district {district}'s school pages failed "
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


def pause_note(warehouse: Warehouse, district_id: str) -> str | None:
    """The pages' sentence while Clever pauses the district's syncs (None otherwise)."""
    with warehouse.transaction() as sql:
        if "pause_end" not in table_columns(sql, PUBLISHED_SCHEMA, "districts"):
            return None
        row = sql.execute(f"select state, pause_start, pause_end from {PUBLISHED_SCHEMA}.districts "
                          f"where district_id = {placeholder(sql.dialect, 'd')}", {"d": district_id}).fetchone()
    if row is None:
        return None
    state, start, end = (row[0], *(m if m is None or m.tzinfo else m.replace(tzinfo=timezone.utc) for m in row[1:]))
    if not clever_paused(state, start, end, datetime.now(timezone.utc)):
        return None
    until = f" until {end:%B} {end.day}, {end.year}" if end else ""
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
    reports, unplaced, unshared = load_reports(warehouse, district_id, school_id)
    # A file name is built from the school's id: one that is not a Clever id ("../../x", "a/b") gets no
    # page, named by its place in the district's list (never by the id, which could be anything).
    invalid = [n for n, r in enumerate(reports, 1) if not CLEVER_ID_PATTERN.match(r.school_id)]
    reports = [r for r in reports if CLEVER_ID_PATTERN.match(r.school_id)]
    subjects = kept_subjects(district_id) if subjects is None else tuple(subjects)
    district = district_labels(warehouse, [district_id], short=True)[district_id]
    paused = pause_note(warehouse, district_id)
    folder = out_dir / district_id  # folders keep the id: names change, ids do not
    folder.mkdir(parents=True, exist_ok=True)
    _write_all_school_files(folder, district, reports, subjects, parallel, paused)
    env = _environment(subjects)
    index = inside(folder, "index.html")
    if school_id is None:  # the index covers the whole district
        remove_stale_pages(folder, {r.school_id for r in reports})
        notice = env.get_template("school_unshared.html.j2")
        unshared = [school for school in unshared if CLEVER_ID_PATTERN.match(school.school_id)]  # as pages above
        for school in unshared:  # its page now says only that it is no longer shared
            inside(folder, f"school_{school.school_id}.html").write_text(
                notice.render(school=school, district=district), encoding="utf-8")
        totals = {k: sum(r.counts[k] for r in reports) for k in reports[0].counts} if reports else {}
        index.write_text(env.get_template("district_index.html.j2").render(
            district=district, reports=reports, totals=totals, unplaced=unplaced, paused=paused,
            without_page=len(invalid), unshared=unshared), encoding="utf-8")
    preview = ["| school | students | sections | to fix in the SIS | by design |", "| --- | ---: | ---: | ---: | ---: |"] + [
        f"| {r.name.replace('|', '/')} | {r.counts['students']} | {r.counts['sections']} | {len(r.to_fix)} | {len(r.by_design)} |"
        for r in reports[:10]]
    return {"folder": folder, "index": index, "schools": len(reports), "preview": "\n".join(preview),
            "schools_without_page": invalid,  # positions (1-based, by name) of schools whose id is not a Clever id
            "excluded": sum(len(r.excluded) for r in reports) + sum(u["action"] == "excluded" for u in unplaced)}

