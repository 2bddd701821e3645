"""Incremental builds: rebuild, check and publish only the records that changed since the last publish.

A nightly full refresh rebuilds a district whole; an events run changes a few hundred records
and should cost about that. So every raw load first notes what it is about to change in
`roster_build.pending_changes` (the raw table and object id, or `*` for a whole refresh),
before loading: a load that fails after the note leaves a harmless extra id, never a change
without its note. The notes stay until a publish commits, in the same transaction, so changes
of runs that failed or were blocked are rebuilt by the next run.

A build is incremental when all of this holds (otherwise it is full, and says why):
- no whole refresh is pending;
- the published version was built from the same SQL project and rules (`fingerprint`);
- every build table already has the model's columns.

It then turns the noted ids into `roster_build.affected_keys` (entity, id): the students,
teachers and sections that changed, the teachers sharing a changed teacher's old or new email,
the sections of changed teachers (co-teachers too), courses and terms, and every record of a
changed school. The SQL models restrict their inputs with `changed()` (macros/incremental.sql)
and replace only the rows their yml's `config.changed_rows` names; the checks and the publish
read those rows only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from roster_pipeline.modeling.project import SqlProject
from roster_pipeline.modeling.rules import DistrictRules, rule_rows
from roster_pipeline.warehouse.connection import Statements, placeholder, table_columns
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA, STAGING_SCHEMA

PENDING = f"{BUILD_SCHEMA}.pending_changes"
AFFECTED_TABLE = "affected_keys"
AFFECTED = f"{BUILD_SCHEMA}.{AFFECTED_TABLE}"
PUBLISHED_BUILDS = f"{BUILD_SCHEMA}.published_builds"
WHOLE = "*"  # a pending row's raw table for "the whole district was reloaded"

# Raw table → the entity whose records its ids are, with its build and staging models and id
# column (the other raw tables are expanded in mark_affected()).
DIRECT = {"students": ("student", "int_students__classified", "stg_clever__students", "student_id"),
          "teachers": ("teacher", "int_teachers__classified", "stg_clever__teachers", "teacher_id"),
          "sections": ("section", "int_sections__classified", "stg_clever__sections", "section_id"),
          "schools": ("school", "int_schools__scoped", "stg_clever__schools", "school_id")}


@dataclass(frozen=True)
class BuildPlan:
    incremental: bool
    reason: str  # why the build is full (empty when incremental)
    fingerprint: str


def _prepare(sql: Statements) -> None:
    sql.execute(f"create schema if not exists {BUILD_SCHEMA}")
    sql.execute(f"create table if not exists {PENDING} (district_id varchar, raw_table varchar, id varchar)")
    sql.execute(f"create table if not exists {AFFECTED} (district_id varchar, entity varchar, id varchar)")
    sql.execute(f"create table if not exists {PUBLISHED_BUILDS} (district_id varchar, fingerprint varchar)")


def note_changes(sql: Statements, district_id: str, ids_by_table: dict[str, list[str]]) -> int:
    """Note the raw objects an events load is about to change (before loading it); returns how many."""
    _prepare(sql)
    d, t, i = (placeholder(sql.dialect, n) for n in ("d", "t", "i"))
    for table, ids in ids_by_table.items():
        if ids:  # one statement per table: the ids as one array parameter
            sql.execute(f"insert into {PENDING} (district_id, raw_table, id) select {d}, {t}, unnest({i})",
                        {"d": district_id, "t": table, "i": list(ids)})
    return sum(len(ids) for ids in ids_by_table.values())


def note_full_refresh(sql: Statements, district_id: str) -> None:
    """Note that the whole district is being reloaded: its next build is full."""
    _prepare(sql)
    p = placeholder(sql.dialect, "d")
    sql.execute(f"delete from {PENDING} where district_id = {p}", {"d": district_id})
    sql.execute(f"insert into {PENDING} (district_id, raw_table, id) values ({p}, '{WHOLE}', null)", {"d": district_id})


def fingerprint(project: SqlProject, district_id: str, rules: DistrictRules, parameters: dict[str, str]) -> str:
    """What a build depends on besides the raw rows: the SQL project's files, the district's rules and the
    models' parameters (the rules' scalars and the district's facts, e.g. whether it shares demographics,
    which decide rows an incremental build would not touch)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in project.sql_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(project.sql_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(repr(sorted(rule_rows(district_id, rules).items())).encode())
    digest.update(repr(sorted(parameters.items())).encode())
    return digest.hexdigest()


def plan_build(sql: Statements, project: SqlProject, district_id: str, rules: DistrictRules,
               parameters: dict[str, str]) -> BuildPlan:
    """Whether the district can be built incrementally, and if not, why (one sentence for the run log)."""
    _prepare(sql)
    current = fingerprint(project, district_id, rules, parameters)
    p = placeholder(sql.dialect, "d")

    def full(reason: str) -> BuildPlan:
        return BuildPlan(False, reason, current)

    if sql.execute(f"select 1 from {PENDING} where district_id = {p} and raw_table = '{WHOLE}' limit 1",
                   {"d": district_id}).fetchone():
        return full("the raw tables were reloaded whole")
    published = sql.execute(f"select fingerprint from {PUBLISHED_BUILDS} where district_id = {p}",
                            {"d": district_id}).fetchone()
    if published is None:
        return full("the district has no published build to start from")
    if published[0] != current:
        return full("the SQL models or the district's rules changed since the last publish (or whether the "
                    "district shares demographics)")
    values = {**parameters, "district_id": district_id}
    for model in project.build_order():
        if model.materialized == "view":
            continue
        rendered = project.render(model, sql.dialect, incremental=project.changed_rows(model) is not None)
        wanted = sql.execute(f"select * from ({rendered.sql}) as model_rows limit 0", values).columns
        if table_columns(sql, model.schema, model.name) != wanted:
            return full(f"the columns of {model.name} changed")
    return BuildPlan(True, "", current)


def mark_affected(sql: Statements, district_id: str) -> dict[str, int]:
    """Add to affected_keys the district's records to rebuild; returns their count per entity.

    Old values come from the build tables, new ones from the staging views. The keys stay until
    a publish: after a run whose publish was blocked, the build tables hold that run's values,
    not the published ones, and the records it affected must be published by the next run too.
    """
    d = placeholder(sql.dialect, "d")
    params = {"d": district_id}

    def add(entity: str, select_ids: str) -> None:
        sql.execute(f"insert into {AFFECTED} (district_id, entity, id) select distinct {d}, '{entity}', id "
                    f"from ({select_ids}) as found where id is not null and id not in "
                    f"(select id from {AFFECTED} where district_id = {d} and entity = '{entity}')", params)

    def pending(*tables: str) -> str:
        listed = ", ".join(f"'{t}'" for t in tables)
        return f"select id from {PENDING} where district_id = {d} and raw_table in ({listed})"

    def affected(entity: str) -> str:
        return f"select id from {AFFECTED} where district_id = {d} and entity = '{entity}'"

    def both(column: str, old: str, new: str, where: str) -> str:
        """The ids whose old (build) or new (staging) row satisfies `where`."""
        return (f"select {column} as id from {BUILD_SCHEMA}.{old} where district_id = {d} and {where} union "
                f"select {column} as id from {STAGING_SCHEMA}.{new} where district_id = {d} and {where}")

    # A user event notes its id in every role table (a lost role deletes that row): a record counts
    # only if it was or is one of the entity's.
    for table, (entity, old, new, column) in DIRECT.items():
        add(entity, f"select id from ({pending(table)}) as noted where id in ({both(column, old, new, 'true')})")
    # A school's scope or grades changed: every record of the school.
    for entity, old, new, column in (DIRECT[t] for t in ("students", "teachers", "sections")):
        add(entity, both(column, old, new, f"school_id in ({affected('school')})"))
    # A teacher's email decides its sharers' exclusion too: every teacher with its old or new email.
    emails = (f"select email from {BUILD_SCHEMA}.int_teachers__classified where district_id = {d} and teacher_id in "
              f"({affected('teacher')}) union select nullif(lower(trim(email_raw)), '') from {STAGING_SCHEMA}."
              f"stg_clever__teachers where district_id = {d} and teacher_id in ({affected('teacher')})")
    add("teacher", f"select teacher_id as id from {BUILD_SCHEMA}.int_teachers__classified where district_id = {d} "
                   f"and email in ({emails}) union select teacher_id from {STAGING_SCHEMA}.stg_clever__teachers "
                   f"where district_id = {d} and nullif(lower(trim(email_raw)), '') in ({emails})")
    # A section shows its teacher, course and term: sections of the changed ones.
    add("section", both("section_id", "int_sections__classified", "stg_clever__sections",
                        f"(teacher_id in ({affected('teacher')}) or course_id in ({pending('courses')}) "
                        f"or term_id in ({pending('terms')}))"))
    # A co-teacher's exclusion decides its link to the section: sections whose teacher list names a
    # changed teacher (a list that changed is a changed section: its pairs are the staging view's alone).
    add("section", f"select section_id as id from {STAGING_SCHEMA}.stg_clever__section_teachers "
                   f"where district_id = {d} and teacher_id in ({affected('teacher')})")
    counts = dict(sql.execute(f"select entity, count(*) from {AFFECTED} where district_id = {d} group by entity",
                              params).fetchall())
    return {entity: int(counts.get(entity, 0)) for entity in ("school", "student", "teacher", "section")}


def changed_condition(spec: dict, dialect: str) -> str:
    """SQL for a model's `config.changed_rows`: the rows whose column holds the id of a changed
    record of the entity (`keys: {entity: column}`); with `entity_column`, a row is of the entity
    that column names, and the entities listed in `whole` are replaced whole (rejected_records).
    Uses the bound parameter `district_id`."""
    d, by = placeholder(dialect, "district_id"), spec.get("entity_column")

    def listed(entity: str, column: str) -> str:
        return f"{column} in (select id from {AFFECTED} where district_id = {d} and entity = '{entity}')"

    terms = [f"({by} = '{e}' and {listed(e, c)})" if by else listed(e, c) for e, c in spec["keys"].items()]
    if spec.get("whole"):
        terms.append(f"{by} in ({', '.join(repr(str(e)) for e in spec['whole'])})")
    return " or ".join(terms)


def changed_filter(rows, affected, spec: dict):
    """The same condition as an Ibis filter on `rows`, `affected` being the district's affected_keys
    (the checks run through Ibis: pandera validates Ibis tables)."""
    by = spec.get("entity_column")
    condition = None
    for entity, column in spec["keys"].items():
        term = rows[column].isin(affected.filter(affected.entity == entity).id)
        term = (rows[by] == entity) & term if by else term
        condition = term if condition is None else condition | term
    if spec.get("whole"):
        condition = condition | rows[by].isin(list(spec["whole"]))
    return rows.filter(condition)


def record_publish(sql: Statements, district_id: str, built_from: str) -> None:
    """In the publish's transaction: the notes it covered are done, and what it was built from."""
    _prepare(sql)
    p, f = placeholder(sql.dialect, "d"), placeholder(sql.dialect, "f")
    for done in (PENDING, AFFECTED, PUBLISHED_BUILDS):
        sql.execute(f"delete from {done} where district_id = {p}", {"d": district_id})
    sql.execute(f"insert into {PUBLISHED_BUILDS} (district_id, fingerprint) values ({p}, {f})",
                {"d": district_id, "f": built_from})
