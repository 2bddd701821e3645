"""School confirmation reports: one self-contained HTML page (and CSV files) per school.

After each publish a school liaison confirms the school's roster. The page shows what was
loaded (students per grade against the previous sync, the math and ELA sections with teacher,
period and enrollment count) and, most important, every excluded student, section and teacher
with the reason in plain words and the fix to make in the SIS. A district index links the
schools. Everything is read from the published `roster` tables, so the page says exactly what
analysts see; the pages carry their CSS inline and load nothing from the internet.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from roster_pipeline.publish import PREVIOUS_SUMMARY
from roster_pipeline.reason_codes import REASON_CODES
from roster_pipeline.settings import ConfigError, data_dir, validate_district_id
from roster_pipeline.sql_models import BUILD_SCHEMA, PUBLISHED_SCHEMA, placeholder
from roster_pipeline.sql_runner import table_columns
from roster_pipeline.warehouse import Statements, Warehouse

TEMPLATES = Path(__file__).resolve().parent / "templates"
GRADES = ["k", *map(str, range(1, 13))]


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
    counts: dict[str, int]                      # students, teachers, sections, enrollments, excluded_*
    grades: list[tuple[str, int, int | None]]   # (grade label, now, previous sync or None)
    sections: list[dict] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)
    cleared: list[dict] = field(default_factory=list)  # fields left empty (invalid email, birth date)

    @property
    def file_stem(self) -> str:
        return f"school_{self.school_id}"


def _rows(sql: Statements, query: str, params: dict) -> list[dict]:
    sql.execute(query, params)
    columns = sql.columns
    return [dict(zip(columns, row)) for row in sql.fetchall()]


def _explained(row: dict) -> dict:
    code = REASON_CODES.get(row["reason_code"])
    return {**row, "meaning": code.meaning if code else row["reason_code"], "fix": code.fix if code else ""}


def load_reports(warehouse: Warehouse, district_id: str, school_id: str | None = None) -> tuple[list[SchoolReport], list[dict]]:
    """(one report per school, excluded records that name no school in scope)."""
    validate_district_id(district_id, "--district")
    with warehouse.transaction() as sql:
        d = placeholder(sql.dialect, "d")
        params = {"d": district_id}
        summary = _rows(sql, f"select * from {PUBLISHED_SCHEMA}.school_roster_summary where district_id = {d} "
                             "order by school_name, school_id", params)
        previous = {}
        if table_columns(sql, BUILD_SCHEMA, "previous_school_roster_summary"):
            previous = {r["school_id"]: r for r in _rows(sql, f"select * from {PREVIOUS_SUMMARY} where district_id = {d}", params)}
        sections = _rows(sql, f"""
            with enrolled as (
                select section_id, count(*) as enrollments from {PUBLISHED_SCHEMA}.enrollments
                where district_id = {d} group by section_id
            )
            select s.school_id, s.section_id, s.name, s.period, s.subject, s.grade, s.course_name,
                   t.first_name || ' ' || t.last_name as teacher, t.email as teacher_email,
                   coalesce(enrolled.enrollments, 0) as enrollments
            from {PUBLISHED_SCHEMA}.sections s
            left join {PUBLISHED_SCHEMA}.teachers t on t.district_id = s.district_id and t.teacher_id = s.teacher_id
            left join enrolled on enrolled.section_id = s.section_id
            where s.district_id = {d} order by s.school_id, s.subject, s.grade, s.period, s.name, s.section_id""", params)
        rejected = [_explained(r) for r in _rows(sql, f"""
            select school_id, entity, record_id, record_name, reason_code, action, detail
            from {PUBLISHED_SCHEMA}.rejected_records where district_id = {d}
            order by entity, record_name, record_id, reason_code, action""", params)]
    reports = []
    by_school: dict[tuple, list[dict]] = defaultdict(list)  # (school, table) → rows: one pass, not one per school
    for section in sections:
        by_school[(section["school_id"], "sections")].append(section)
    for record in rejected:
        by_school[(record["school_id"], "excluded" if record["action"] == "excluded" else "cleared")].append(record)
    for row in summary:
        if school_id and row["school_id"] != school_id:
            continue
        before = previous.get(row["school_id"])
        grades = [(("K" if g == "k" else g), row[f"students_grade_{g}"], before[f"students_grade_{g}"] if before else None)
                  for g in GRADES]
        grades.append(("other", row["students_other_grades"], before["students_other_grades"] if before else None))
        report = SchoolReport(
            row["school_id"], row["school_name"] or row["school_id"],
            {k: row[k] for k in ("students", "teachers", "sections", "enrollments", "excluded_students", "excluded_sections")},
            grades,
            by_school[(row["school_id"], "sections")],
            by_school[(row["school_id"], "excluded")],
            by_school[(row["school_id"], "cleared")],
        )
        report.counts["excluded_teachers"] = sum(r["entity"] == "teacher" for r in report.excluded)
        reports.append(report)
    if school_id and not reports:
        raise ConfigError(f"--school {school_id} is not a published school of district {district_id}.")
    known = {r["school_id"] for r in summary}
    unplaced = [r for r in rejected if r["school_id"] not in known]
    return reports, unplaced


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """The named columns of each row (plain csv.writer: DictWriter's per-field checks cost seconds at 1M students)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([row.get(c) for c in columns] for row in rows)


SECTION_COLUMNS = ["section_id", "name", "period", "subject", "grade", "course_name", "teacher", "teacher_email", "enrollments"]
EXCLUDED_COLUMNS = ["entity", "record_name", "record_id", "reason_code", "meaning", "detail", "fix"]


PARALLEL_MIN_SCHOOLS = 200  # below this a second process costs more than it saves


def _write_school_files(folder: Path, district_id: str, reports: list[SchoolReport]) -> None:
    env = _environment()
    template = env.get_template("school_report.html.j2")
    for report in reports:
        (folder / f"{report.file_stem}.html").write_text(
            template.render(report=report, district_id=district_id), encoding="utf-8")
        _write_csv(folder / f"{report.file_stem}_grades.csv",
                   [{"grade": g, "students": now, "previous_sync": prev} for g, now, prev in report.grades],
                   ["grade", "students", "previous_sync"])
        _write_csv(folder / f"{report.file_stem}_sections.csv", report.sections, SECTION_COLUMNS)
        _write_csv(folder / f"{report.file_stem}_excluded.csv", report.excluded + report.cleared, [*EXCLUDED_COLUMNS[:1], "action", *EXCLUDED_COLUMNS[1:]])


def _write_all_school_files(folder: Path, district_id: str, reports: list[SchoolReport], parallel: bool | None) -> None:
    """Every school's files; a large district's pages are rendered on two cores.

    Rendering is pure Python (Jinja2 and csv hold the GIL), so threads would not help: a forked
    child writes half the schools from the data already in memory (nothing is pickled or
    re-imported) while this process writes the other half. The child touches no database.
    """
    if parallel is None:
        parallel = len(reports) >= PARALLEL_MIN_SCHOOLS
    if not parallel or "fork" not in multiprocessing.get_all_start_methods():
        _write_school_files(folder, district_id, reports)
        return
    half = len(reports) // 2
    child = multiprocessing.get_context("fork").Process(
        target=_write_school_files, args=(folder, district_id, reports[half:]), name="school-pages")
    child.start()
    try:
        _write_school_files(folder, district_id, reports[:half])
    finally:
        child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"Writing the second half of district {district_id}'s school pages failed "
                           f"(helper process exit code {child.exitcode}; its error is in the step's stderr).")


def write_reports(warehouse: Warehouse, district_id: str, out_dir: Path, school_id: str | None = None,
                  parallel: bool | None = None) -> dict:
    """Write the district's pages and CSVs under out_dir/<district_id>/; returns what was written.

    parallel: render on two processes (default: when the district has PARALLEL_MIN_SCHOOLS schools).
    """
    reports, unplaced = load_reports(warehouse, district_id, school_id)
    folder = out_dir / district_id
    folder.mkdir(parents=True, exist_ok=True)
    _write_all_school_files(folder, district_id, reports, parallel)
    env = _environment()
    index = folder / "index.html"
    if school_id is None:  # the index covers the whole district
        totals = {k: sum(r.counts[k] for r in reports) for k in reports[0].counts} if reports else {}
        index.write_text(env.get_template("district_index.html.j2").render(
            district_id=district_id, reports=reports, totals=totals, unplaced=unplaced), encoding="utf-8")
    preview = ["| school | students | sections | excluded |", "| --- | ---: | ---: | ---: |"] + [
        f"| {r.name.replace('|', '/')} | {r.counts['students']} | {r.counts['sections']} | {len(r.excluded)} |"
        for r in reports[:10]]
    return {"folder": folder, "index": index, "schools": len(reports), "preview": "\n".join(preview),
            "excluded": sum(len(r.excluded) for r in reports) + sum(u["action"] == "excluded" for u in unplaced)}

