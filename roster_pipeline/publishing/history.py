"""The roster's memory: every version of every record, and a change log per publish.

Clever keeps no history (its events reach back 30 days at most), yet assessment results must be
attributed to the roster as it was on test day. So each publish, in its own transaction, also
writes what changed, dbt-snapshot style:

- `roster.<table>_history`: every column of the current table plus `valid_from` (the publish
  that made the version current) and `valid_to` (the publish that replaced or removed it; NULL
  while current). "As of T" is `valid_from <= T and (valid_to is null or valid_to > T)`.
- `roster.roster_changes`: one row per record added, removed or changed, with the changed
  columns and one plain sentence (no demographics: those are counted, never detailed; a flag
  such as a section's `teacher_from_list` is said in words). A record
  that left or came back with its school says so ("school no longer shared", "school shared
  again"): a district that stops sharing a school did not withdraw its 1,140 students.
- `roster.publishes`: one row per publish with rows added/removed/changed per entity, and the
  approval that overrode the mass-change guard, if any (how, and the verdict it overrode).

The diff is set-based SQL in the warehouse: the district's published rows that are not in the
new build (`gone`) and the build's rows that are not published (`new`), compared whole (EXCEPT
ALL), then matched by key. A quiet night writes nothing; a full refresh and an incremental run of
the same data write the same history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from roster_pipeline.modeling.project import SqlProject
from roster_pipeline.warehouse.connection import Statements, add_missing_columns, placeholder, table_columns
from roster_pipeline.warehouse.postgres_tables import ensure_indexes
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA, PUBLISHED_SCHEMA

CHANGES = f"{PUBLISHED_SCHEMA}.roster_changes"
PUBLISHES = f"{PUBLISHED_SCHEMA}.publishes"
GONE, NEW = "publish_gone", "publish_new"  # the district's differences for one table (temporary tables)
SHARING = "publish_school_sharing"  # the schools whose sharing changed in this publish (temporary table)
COUNTED = ("added", "removed", "changed")

# The change log's columns: (column, type, description); the data dictionary shows them.
CHANGES_COLUMNS = [
    ("district_id", "varchar", "District."),
    ("published_at", "timestamp with time zone", "The publish that made the change (as in `publishes`)."),
    ("entity", "varchar", "`school`, `student`, `teacher`, `section`, `enrollment`, `section_teacher` or `admin`."),
    ("record_id", "varchar", "The record's key values joined by `:` (empty text for NULL): `section_id:student_id` "
                             "for an enrollment, `section_id:teacher_id` for a section's teacher, "
                             "`user_id:role:school_id` for an admin."),
    ("school_id", "varchar", "The record's school (the new one for a move)."),
    ("change", "varchar", "`added`, `removed` or `changed`."),
    ("changed_columns", "varchar", "For `changed`: the columns whose value changed, comma-separated."),
    ("detail", "varchar", "One plain sentence, e.g. \"grade 4 → 5\", \"moved to Lincoln Elementary\", \"withdrawn\"; "
                          "a record that left or came back with its school (and the school itself): \"school no "
                          "longer shared\", \"school shared again\"; a section whose Clever `teacher` is empty: "
                          "\"primary teacher taken from the section's teacher list\"."),
]


def history_tables(project: SqlProject) -> dict[str, str | None]:
    """The published tables that keep history (`meta.history` in the marts' yml) → the entity
    roster_changes names their records by (None: versions and counts only, never detailed)."""
    return {name: doc["meta"]["history"].get("entity") for name, doc in project.docs.items()
            if (doc.get("meta") or {}).get("history") is not None}


def publishes_columns(project: SqlProject) -> list[tuple[str, str, str]]:
    """The publish log's columns: who published when, and per table with history the records
    added, removed and changed."""
    counts = [(f"{table}_{what}", "bigint", f"{table.capitalize()} {what} by this publish.")
              for table in history_tables(project) for what in COUNTED]
    return [("district_id", "varchar", "District."),
            ("published_at", "timestamp with time zone", "When (the same instant in every table the publish wrote; "
                                                         "`districts.published_at` is the latest)."),
            ("run_id", "varchar", "The Dagster run that published."),
            ("trigger", "varchar", "What started the run: schedule, discovery, events or manual."), *counts,
            ("latest_term_start", "date", "The latest start date of the terms the district's sections belonged to."),
            ("new_school_year", "varchar", "Why this publish started a new school year (the mass-change guard let "
                                           "it through); empty otherwise."),
            ("approved", "boolean", "True when the mass-change guard would have blocked this publish and an "
                                    "approval let it through (the guard was overridden)."),
            ("approved_how", "varchar", "How it was approved: `command` (`roster-pipeline approve` or `sync "
                                        "--accept-mass-change`) or `tag` (a launch with the run tag "
                                        "`roster/accept_mass_change=true`, e.g. in the UI); empty when not approved."),
            ("overridden_verdict", "varchar", "The guard's sentences the approval overrode, one per table over the "
                                              "limit (counts, record ids and school names); empty when not approved.")]


# Plain words for a record that appeared or left, per entity.
ADDED = {"school": "added to the roster", "student": "enrolled", "teacher": "added to the roster",
         "section": "added to the roster", "enrollment": "joined the section", "admin": "added to the roster",
         "section_teacher": "added to the section's teachers"}
REMOVED = {"school": "no longer in the roster", "student": "withdrawn", "teacher": "no longer in the roster",
           "section": "no longer in the roster", "enrollment": "left the section", "admin": "no longer in the roster",
           "section_teacher": "no longer one of the section's teachers"}
# Boolean columns said in words, not as "<column> changed": (when it became true, when it became false).
FLAGS = {"teacher_from_list": ("primary teacher taken from the section's teacher list",
                               "primary teacher given by Clever's teacher field again"),
         "is_primary": ("now the section's primary teacher", "no longer the section's primary teacher")}
ADDED_WITH = ("teacher_from_list",)  # flags an added record's sentence also says when true
# What happened to a school's sharing, said of the school and of every record that left or came with it.
UNSHARED, RESHARED = "school no longer shared", "school shared again"


@dataclass(frozen=True)
class Publish:
    """One publish: when (the same instant in every table it writes), by which run, started by what."""

    published_at: datetime
    run_id: str = ""
    trigger: str = ""
    latest_term_start: date | None = None
    new_school_year: str | None = None  # why it starts a new school year (publishing/school_year.py)
    approved_how: str | None = None  # "command" or "tag": an approval overrode the guard (None: nothing overridden)
    overridden_verdict: str | None = None  # the guard's sentences that approval overrode


def history_table(table: str) -> str:
    return f"{PUBLISHED_SCHEMA}.{table}_history"


def record_key(project: SqlProject, table: str) -> list[str]:
    """The columns that name one record of the table within a district (its declared key)."""
    return [c for c in project.docs[table]["key"][1] if c != "district_id"]


def nullable_key_columns(project: SqlProject, table: str) -> set[str]:
    """The key columns that may be NULL: those of a `unique` key (not a primary key) without `not_null`."""
    kind, columns = project.docs[table]["key"]
    if kind == "primary_key":
        return set()
    docs = project.docs[table]["columns"]
    return {c for c in columns if not any(t.name == "not_null" for t in docs.get(c, {}).get("data_tests", []))}


@dataclass(frozen=True)
class TableHistory:
    """What the marts' yml says of one table that keeps history, read once per publish: the
    functions below take this instead of the table, its key and its entity one by one."""

    table: str
    key: tuple[str, ...]  # the columns naming one record within a district (record_key)
    nullable: frozenset[str]  # the key columns compared NULL = NULL (nullable_key_columns)
    entity: str | None  # what roster_changes calls its records; None: versions and counts only

    @property
    def build(self) -> str:
        return f"{BUILD_SCHEMA}.{self.table}"


def table_history(project: SqlProject, table: str) -> TableHistory | None:
    """The table's history facts, or None when it keeps no history."""
    kept = history_tables(project)
    if table not in kept:
        return None
    return TableHistory(table, tuple(record_key(project, table)), frozenset(nullable_key_columns(project, table)),
                        kept[table])


def prepare(sql: Statements, project: SqlProject) -> None:
    for relation, columns in ((CHANGES, CHANGES_COLUMNS), (PUBLISHES, publishes_columns(project))):
        sql.execute(f"create table if not exists {relation} ({', '.join(f'{n} {t}' for n, t, _ in columns)})")
        have = table_columns(sql, *relation.split("."))
        for name, kind, _ in columns:  # a log written by an earlier version gains the columns added since
            if name not in have:
                sql.execute(f"alter table {relation} add column {name} {kind}")
    if sql.dialect == "postgres":
        ensure_indexes(sql, PUBLISHED_SCHEMA, "roster_changes", [("district_id", "published_at"),
                                                                 ("district_id", "school_id")])
        ensure_indexes(sql, PUBLISHED_SCHEMA, "publishes", [("district_id", "published_at")])


def ensure_history_table(sql: Statements, history: TableHistory) -> bool:
    """Create `<table>_history` or add the columns the current table gained (a dropped column stays:
    the versions that had it keep its values); True when it was created now (index it once filled:
    see index_history_table)."""
    table = history.table
    kept = table_columns(sql, PUBLISHED_SCHEMA, f"{table}_history")
    if not kept:
        sql.execute(f"create table {history_table(table)} as select *, cast(null as timestamp with time zone) as "
                    f"valid_from, cast(null as timestamp with time zone) as valid_to from {PUBLISHED_SCHEMA}.{table} "
                    "limit 0")
    elif "person_key" in add_missing_columns(sql, (PUBLISHED_SCHEMA, table), (PUBLISHED_SCHEMA, f"{table}_history")):
        # versions kept before identities were linked: each person is still known by their only id
        sql.execute(f"update {history_table(table)} set person_key = {history.key[0]}")
    if kept:
        index_history_table(sql, history)
    return not kept


def index_history_table(sql: Statements, history: TableHistory) -> None:
    """Postgres: versions are found by district and key (no-op once the index exists)."""
    if sql.dialect == "postgres":
        ensure_indexes(sql, PUBLISHED_SCHEMA, f"{history.table}_history", [("district_id", *history.key, "valid_from")])


def stage_differences(sql: Statements, table: str, build: str, names: str, params: dict,
                      changed: str | None = None) -> None:
    """`publish_gone`: the district's published rows the build no longer has (removed, or an old
    version); `publish_new`: the build's rows not yet published (added, or a new version).
    `changed`: an incremental build's condition on the rows it replaced (the others are equal)."""
    published, mine = f"{PUBLISHED_SCHEMA}.{table}", f"district_id = {placeholder(sql.dialect, 'district_id')}"
    if changed:
        mine = f"{mine} and ({changed})"
    for name, first, second in ((GONE, published, build), (NEW, build, published)):
        sql.execute(f"drop table if exists {name}")
        sql.execute(f"create temporary table {name} as select {names} from {first} where {mine} "
                    f"except all select {names} from {second} where {mine}", params)
        if sql.dialect == "postgres":  # autovacuum never analyzes temporary tables: without this the
            sql.execute(f"analyze {name}")  # joins below were nested loops (1M students: 221 s for a 1 % day)


def school_sharing(sql: Statements, district_id: str) -> dict[str, str]:
    """The district's schools whose sharing changed between the published roster and the build:
    school id → UNSHARED (published, and gone from the schools Clever serves: not merely out of the
    rules' scope) or RESHARED (in the build, not published, and its last removal was UNSHARED).
    Read before the publish replaces anything (the guard reads it too)."""
    served = next((t for t in ("int_schools__scoped", "schools") if table_columns(sql, BUILD_SCHEMA, t)), None)
    if served is None or not table_columns(sql, PUBLISHED_SCHEMA, "schools"):
        return {}
    mine, params = f"district_id = {placeholder(sql.dialect, 'd')}", {"d": district_id}

    def schools(relation: str) -> set[str]:
        return {r[0] for r in sql.execute(f"select school_id from {relation} where {mine}", params).fetchall()}

    published = schools(f"{PUBLISHED_SCHEMA}.schools")
    if not published:  # the district's first publish: nothing was shared before
        return {}
    sharing = {school: UNSHARED for school in published - schools(f"{BUILD_SCHEMA}.{served}")}
    back = schools(f"{BUILD_SCHEMA}.schools") - published if table_columns(sql, BUILD_SCHEMA, "schools") else set()
    if back and table_columns(sql, PUBLISHED_SCHEMA, "roster_changes"):
        last_removal = dict(sql.execute(
            f"select record_id, detail from (select record_id, detail, row_number() over (partition by record_id "
            f"order by published_at desc) as n from {CHANGES} where {mine} and entity = 'school' and change = 'removed') "
            "as removals where n = 1", params).fetchall())
        sharing |= {school: RESHARED for school in back if last_removal.get(school) == UNSHARED}
    return sharing


def stage_school_sharing(sql: Statements, sharing: dict[str, str]) -> None:
    """`publish_school_sharing` (school_id, detail): what record_changes says of the records that left or
    came back with these schools."""
    sql.execute(f"drop table if exists {SHARING}")
    sql.execute(f"create temporary table {SHARING} (school_id varchar, detail varchar)")
    for school, detail in sharing.items():
        sql.execute(f"insert into {SHARING} (school_id, detail) values ({placeholder(sql.dialect, 's')}, "
                    f"{placeholder(sql.dialect, 'detail')})", {"s": school, "detail": detail})


def drop_school_sharing(sql: Statements) -> None:
    sql.execute(f"drop table if exists {SHARING}")


def drop_differences(sql: Statements) -> None:
    for name in (GONE, NEW):
        sql.execute(f"drop table if exists {name}")


def _same_key(key: tuple[str, ...], left: str, right: str, nullable: frozenset[str]) -> str:
    """Key equality that a hash join or an index can use; a nullable key column (admins: the
    school_id of district admins) compares NULL equal to NULL."""
    return " and ".join(f"coalesce({left}.{c}, '') = coalesce({right}.{c}, '')" if c in nullable
                        else f"{left}.{c} = {right}.{c}" for c in key)


def seed_history(sql: Statements, table: str, names: str, params: dict, since: str) -> None:
    """A district published before history existed: its current rows become versions valid from
    its last publish (`since`, an SQL expression), so "as of" answers from then on."""
    sql.execute(f"insert into {history_table(table)} ({names}, valid_from, valid_to) select {names}, {since}, null "
                f"from {PUBLISHED_SCHEMA}.{table} where district_id = {placeholder(sql.dialect, 'district_id')}", params)


def has_history(sql: Statements, table: str, params: dict) -> bool:
    return sql.execute(f"select count(*) from {history_table(table)} where district_id = "
                       f"{placeholder(sql.dialect, 'district_id')}", params).fetchone()[0] > 0


def record_versions(sql: Statements, history: TableHistory, names: str, params: dict, first: bool) -> None:
    """Close the versions that changed or left, open the new ones (the whole build on a first publish)."""
    t, mine = placeholder(sql.dialect, "published_at"), f"district_id = {placeholder(sql.dialect, 'district_id')}"
    versions = history_table(history.table)
    if first:
        sql.execute(f"insert into {versions} ({names}, valid_from, valid_to) select {names}, {t}, null "
                    f"from {history.build} where {mine}", params)
        return
    sql.execute(f"update {versions} set valid_to = {t} where {mine} and valid_to is null and exists "
                f"(select 1 from {GONE} where {_same_key(history.key, GONE, versions, history.nullable)})", params)
    sql.execute(f"insert into {versions} ({names}, valid_from, valid_to) select {names}, {t}, null from {NEW}", params)


def count_changes(sql: Statements, history: TableHistory, params: dict, first: bool) -> dict[str, int]:
    """Records added, removed and changed (a key in both `gone` and `new`)."""
    if first:
        added = sql.execute(f"select count(*) from {history.build} where district_id = "
                            f"{placeholder(sql.dialect, 'district_id')}", params).fetchone()[0]
        return {"added": added, "removed": 0, "changed": 0}
    same_key = _same_key(history.key, "g", "n", history.nullable)
    row = sql.execute(f"""
        select count(case when g.present is null then 1 end), count(case when n.present is null then 1 end),
               count(case when g.present and n.present then 1 end)
        from (select *, true as present from {GONE}) as g
        full outer join (select *, true as present from {NEW}) as n on {same_key}""").fetchone()
    return dict(zip(COUNTED, (int(v) for v in row)))


def _literal(text: str) -> str:
    """A constant sentence as an SQL string ("the section's teachers": its quote doubled)."""
    return "'" + text.replace("'", "''") + "'"


def _detail(entity: str, compared: list[str], has_school: bool) -> str:
    """SQL for the change's plain sentence: "grade 4 → 5", "moved to Lincoln Elementary", "withdrawn";
    a record that left or came back with its school: the school's sharing (`sharing.detail`)."""
    phrases = []
    for column in compared:
        differs = f"g.{column} is distinct from n.{column}"
        if column == "grade":
            said = ("'grade ' || coalesce(cast(g.grade as varchar), '(none)') || ' → ' || "
                    "coalesce(cast(n.grade as varchar), '(none)')")
        elif column == "school_id" and has_school:
            said = "'moved to ' || coalesce(moved_to.name, n.school_id, '(no school)')"
        elif column in FLAGS:
            said = f"case when n.{column} then {_literal(FLAGS[column][0])} else {_literal(FLAGS[column][1])} end"
        else:  # the column's name, never its value (names, emails: personal data stay in the tables)
            said = f"'{column.replace('_', ' ')} changed'"
        phrases.append(f"case when {differs} then {said} end")
    changed = f"concat_ws('; ', {', '.join(phrases)})" if phrases else "''"
    with_school = "sharing.detail, " if has_school else ""
    # "added to the roster; primary teacher taken from the section's teacher list"; a record back with its
    # school says only "school shared again", as every record that came with it
    added = _literal(ADDED[entity])
    notes = [f"case when n.{c} then {_literal(FLAGS[c][0])} end" for c in ADDED_WITH if c in compared]
    if notes:
        added = f"concat_ws('; ', {added}, {', '.join(notes)})"
    return (f"case when g.present is null then coalesce({with_school}{added}) "
            f"when n.present is null then coalesce({with_school}{_literal(REMOVED[entity])}) else {changed} end")


def record_changes(sql: Statements, history: TableHistory, columns: list[str], params: dict) -> None:
    """One `roster_changes` row per record added, removed or changed in this publish (a table with
    an entity); a moved record is named by its new school in the build."""
    entity, key, build_schools = history.entity, history.key, f"{BUILD_SCHEMA}.schools"
    compared = [c for c in columns if c not in key and c != "district_id"]
    has_school = "school_id" in columns
    changed_columns = ", ".join(f"case when g.{c} is distinct from n.{c} then '{c}' end" for c in compared) or "null"
    record_id = "concat_ws(':', " + ", ".join(f"coalesce(n.{c}, g.{c}, '')" for c in key) + ")"
    school = "coalesce(n.school_id, g.school_id)" if has_school else "null"
    schools_join = (f"left join {build_schools} as moved_to on moved_to.district_id = {placeholder(sql.dialect, 'district_id')} "
                    "and moved_to.school_id = n.school_id "
                    # only an added or removed record's school: one side is absent (see stage_school_sharing)
                    f"left join {SHARING} as sharing on sharing.school_id = coalesce(n.school_id, g.school_id) "
                    "and (g.present is null or n.present is null)") if has_school else ""
    sql.execute(f"""
        insert into {CHANGES} (district_id, published_at, entity, record_id, school_id, change, changed_columns, detail)
        select {placeholder(sql.dialect, 'district_id')}, {placeholder(sql.dialect, 'published_at')}, '{entity}',
               {record_id}, {school},
               case when g.present is null then 'added' when n.present is null then 'removed' else 'changed' end,
               case when g.present and n.present then concat_ws(',', {changed_columns}) end,
               {_detail(entity, compared, has_school)}
        from (select *, true as present from {GONE}) as g
        full outer join (select *, true as present from {NEW}) as n on {_same_key(key, 'g', 'n', history.nullable)}
        {schools_join}""", params)


def record_publish(sql: Statements, project: SqlProject, district_id: str, publish: Publish,
                   counts: dict[str, dict[str, int]]) -> None:
    columns = ["district_id", "published_at", "run_id", "trigger", "latest_term_start", "new_school_year",
               "approved", "approved_how", "overridden_verdict"]
    values = {"district_id": district_id, "published_at": publish.published_at, "run_id": publish.run_id,
              "trigger": publish.trigger, "latest_term_start": publish.latest_term_start,
              "new_school_year": publish.new_school_year, "approved": publish.approved_how is not None,
              "approved_how": publish.approved_how, "overridden_verdict": publish.overridden_verdict}
    for table in history_tables(project):
        for what in COUNTED:
            columns.append(f"{table}_{what}")
            values[f"{table}_{what}"] = counts.get(table, {}).get(what, 0)
    markers = ", ".join(placeholder(sql.dialect, c) for c in columns)
    sql.execute(f"insert into {PUBLISHES} ({', '.join(columns)}) values ({markers})", values)


def trim(sql: Statements, project: SqlProject, district_id: str, publish: Publish,
         retention_days: int | None) -> None:
    """ROSTER_HISTORY_RETENTION_DAYS: forget versions (and change rows) older than the agreement allows."""
    if retention_days is None:
        return
    params = {"district_id": district_id, "published_at": publish.published_at, "days": retention_days}
    mine, t = f"district_id = {placeholder(sql.dialect, 'district_id')}", placeholder(sql.dialect, "published_at")
    cutoff = (f"{t} - cast({placeholder(sql.dialect, 'days')} as integer) * interval '1 day'")
    for table in history_tables(project):
        if table_columns(sql, PUBLISHED_SCHEMA, f"{table}_history"):
            sql.execute(f"delete from {history_table(table)} where {mine} and valid_to < {cutoff}", params)
    sql.execute(f"delete from {CHANGES} where {mine} and published_at < {cutoff}", params)
