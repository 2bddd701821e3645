"""What the UI shows of a district's mart after a build: counts computed in the warehouse, never a person's values.

Materialization metadata lands in Dagster's event log, which everyone with the UI can read;
names, emails, birth dates, state ids and demographic flags stay behind the warehouse roles.
"""

from roster_pipeline.modeling.project import SqlModel
from roster_pipeline.warehouse.connection import Statements, placeholder, table_columns

PREVIEW_ROWS = 30  # rows per aggregate preview table (groups: grades, schools, subjects)

# Each mart's previews. Each entry: (title, query over `{relation}` filtered by `{mine}`, the district).
AGGREGATE_PREVIEWS: dict[str, list[tuple[str, str]]] = {
    "schools": [("Schools per grade span", "select low_grade, high_grade, count(*) as schools from {relation} "
                 "where {mine} group by low_grade, high_grade order by low_grade, high_grade")],
    "students": [
        ("Students per grade", "select grade, count(*) as students, count(distinct school_id) as schools "
         "from {relation} where {mine} group by grade order by grade"),
        ("Students per school", "select school_id, count(*) as students, min(grade) as lowest_grade, "
         "max(grade) as highest_grade from {relation} where {mine} group by school_id order by school_id"),
    ],
    "teachers": [("Teachers per school", "select school_id, count(*) as teachers from {relation} where {mine} "
                  "group by school_id order by school_id")],
    "sections": [
        ("Sections per subject and grade", "select subject, grade, count(*) as sections, count(distinct teacher_id) "
         "as teachers from {relation} where {mine} group by subject, grade order by subject, grade"),
        ("Sections per school", "select school_id, count(*) as sections from {relation} where {mine} "
         "group by school_id order by school_id"),
    ],
    "section_teachers": [
        ("Sections per number of teachers", "select teachers, count(*) as sections from (select section_id, "
         "count(*) as teachers from {relation} where {mine} group by section_id) as per_section "
         "group by teachers order by teachers"),
        ("Co-teachers per school", "select school_id, count(distinct section_id) as co_taught_sections, count(*) "
         "as co_teacher_links from {relation} where {mine} and not is_primary group by school_id order by school_id"),
    ],
    "enrollments": [
        # Distinct students counted in two hash aggregations: Postgres sorts the whole slice for a
        # count(distinct) (9 s at 1M students). Sections: the sections preview.
        ("Enrollments per subject and grade", "select subject, grade, sum(enrollments) as enrollments, "
         "count(*) as students from (select subject, grade, student_id, count(*) as enrollments from {relation} "
         "where {mine} group by subject, grade, student_id) as per_student group by subject, grade "
         "order by subject, grade"),
        ("Enrollments per school", "select school_id, sum(enrollments) as enrollments, count(*) as students "
         "from (select school_id, student_id, count(*) as enrollments from {relation} where {mine} "
         "group by school_id, student_id) as per_student group by school_id order by school_id"),
    ],
    "demographics": [
        ("Students per flag (share of the district's students)", " union all ".join(
            f"select '{flag}' as flag, sum(case when {flag} then 1 else 0 end) as yes, "
            f"sum(case when not {flag} then 1 else 0 end) as no, sum(case when {flag} is null then 1 else 0 end) "
            f"as not_given, round(100.0 * sum(case when {flag} then 1 else 0 end) / nullif(count(*), 0), 1) "
            f"as yes_percent from {{relation}} where {{mine}}"
            for flag in ("special_education", "frl_eligible", "ell", "section_504", "gifted"))),
        ("Students per FRL status", "select coalesce(frl_status, '(not given)') as frl_status, count(*) as students "
         "from {relation} where {mine} group by frl_status order by 1"),
    ],
    "admins": [("Admins per role", "select role, count(distinct user_id) as admins, count(distinct school_id) as "
                "schools from {relation} where {mine} group by role order by role")],
    "rejected_records": [("Records per entity, action and reason", "select entity, action, reason_code, count(*) as "
                          "records from {relation} where {mine} group by entity, action, reason_code "
                          "order by entity, action, reason_code")],
    "school_roster_summary": [("Per school", "select school_id, name, students, teachers, sections, "
                               "enrollments, excluded_students, excluded_sections from {relation} where {mine} "
                               "order by school_id")],
}


def markdown_table(columns: list[str], rows: list[tuple]) -> str:
    def cell(value) -> str:
        return ("" if value is None else str(value)).replace("|", "/").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows[:PREVIEW_ROWS]]
    if len(rows) > PREVIEW_ROWS:
        lines.append(f"\n({len(rows) - PREVIEW_ROWS} more rows not shown)")
    return "\n".join(lines)


def preview_markdown(sql: Statements, model: SqlModel, district_id: str) -> str:
    """Aggregate Markdown tables of the district's slice, for the UI (see AGGREGATE_PREVIEWS).

    A mart without its own entry gets its rows per school (or its row count): never its values.
    """
    mine = f"district_id = {placeholder(sql.dialect, 'd')}"
    queries = AGGREGATE_PREVIEWS.get(model.name)
    if queries is None:
        per_school = "school_id" in table_columns(sql, model.schema, model.name)
        queries = [("Records per school", "select school_id, count(*) as records from {relation} where {mine} "
                    "group by school_id order by school_id") if per_school else
                   ("Records", "select count(*) as records from {relation} where {mine}")]
    parts = []
    for title, query in queries:
        sql.execute(query.format(relation=model.relation, mine=mine), {"d": district_id})
        rows = [tuple(r) for r in sql.fetchall()]
        parts.append(f"**{title}**\n\n" + (markdown_table(sql.columns, rows) if rows else "(no rows for this district)"))
    return "\n\n".join(parts)


