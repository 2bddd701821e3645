"""People who keep being themselves when Clever re-issues their id.

Clever gives a student or teacher a new id when their SIS id changes, or when they come back
after being removed for 300 days or more. Without care, the roster would say one person left and
a stranger arrived, and a year of assessment results would no longer join to them. So each
build, after the SQL models and before the checks, every id new to the district is matched
against the people who left: those the build no longer has (gone in this sync) and those who
left earlier (in the history table, no longer current, never linked).

- Same `sis_id`, or else the same `state_id`, with one candidate on each side and nothing
  contradicting it: the same person. The link goes to `roster.identity_links` when the publish
  commits, and the new row carries the `person_key` of the old one (the first id ever seen), on
  `students`/`teachers` and their history, so analysts join across years on `person_key`.
- Two candidates, or a contradiction (another birth date; another school for someone who left in
  this very sync, unless a new school year moves everyone): not linked. The new id stays a new
  person (`person_key` = its own id) and `rejected_records` says IDENTITY_AMBIGUOUS with both
  ids, for as long as the new id is in the roster (`roster_build.identity_ambiguities` keeps it;
  the rejected_records model reads it).

Matching is set-based SQL over the ids that changed; only the few candidate pairs come to Python,
where the one-to-one rule is plain to read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from roster_pipeline.publishing.history import CHANGES, history_table
from roster_pipeline.warehouse.connection import Statements, placeholder, table_columns
from roster_pipeline.warehouse.postgres_tables import ensure_indexes
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA, PUBLISHED_SCHEMA

LINKS = f"{PUBLISHED_SCHEMA}.identity_links"
MATCHED = f"{BUILD_SCHEMA}.identity_matches"  # this build's new links; its publish moves them to LINKS
AMBIGUITIES = f"{BUILD_SCHEMA}.identity_ambiguities"  # read by the rejected_records model
CANDIDATES = "identity_candidates"  # temporary: the build's candidate pairs

# Published table → (entity, id column, compared birth dates).
PEOPLE = {"students": ("student", "student_id", True), "teachers": ("teacher", "teacher_id", False)}

# The links' columns: (column, type, description); the data dictionary shows them.
LINK_COLUMNS = [
    ("district_id", "varchar", "District."),
    ("entity", "varchar", "`student` or `teacher`."),
    ("old_id", "varchar", "The Clever id the person had before."),
    ("new_id", "varchar", "The id Clever issued instead."),
    ("matched_on", "varchar", "`sis_id` or `state_id`: the value both ids shared."),
    ("linked_at", "timestamp with time zone", "The publish that linked them (as in `publishes`)."),
    ("person_key", "varchar", "The person's first id ever seen (the `person_key` of both rows)."),
]
AMBIGUITY_COLUMNS = "district_id varchar, entity varchar, record_id varchar, other_ids varchar, why varchar"


@dataclass(frozen=True)
class Matches:
    """What one build's matching found, per entity: ids linked and ids left unlinked as ambiguous."""

    linked: dict[str, int]
    ambiguous: dict[str, int]


def prepare(sql: Statements) -> None:
    """The links and the ambiguities tables (the rejected_records model reads the latter)."""
    sql.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
    sql.execute(f"create table if not exists {LINKS} ({', '.join(f'{n} {t}' for n, t, _ in LINK_COLUMNS)})")
    sql.execute(f"create table if not exists {MATCHED} ({', '.join(f'{n} {t}' for n, t, _ in LINK_COLUMNS)})")
    sql.execute(f"create table if not exists {AMBIGUITIES} ({AMBIGUITY_COLUMNS})")
    if sql.dialect == "postgres":
        ensure_indexes(sql, PUBLISHED_SCHEMA, "identity_links", [("district_id", "entity", "new_id")])


def _values(sql: Statements, district_id: str) -> tuple[str, dict]:
    return placeholder(sql.dialect, "district_id"), {"district_id": district_id}


def match(sql: Statements, district_id: str, changed: dict[str, str], new_school_year: bool) -> Matches:
    """Link the build's new ids to the people who left, and give every linked row its person_key.

    `changed`: after an incremental build, per table the condition on the rows it replaced (new
    and gone ids are among them). Runs in the caller's transaction, before the checks.
    """
    prepare(sql)
    d, params = _values(sql, district_id)
    sql.execute(f"delete from {MATCHED} where district_id = {d}", params)
    linked: dict[str, int] = {}
    ambiguous: dict[str, int] = {}
    for table, (entity, key, has_birth_date) in PEOPLE.items():
        if not table_columns(sql, BUILD_SCHEMA, table):
            continue
        if table_columns(sql, PUBLISHED_SCHEMA, table):
            pairs = _candidate_pairs(sql, table, entity, key, has_birth_date, params, changed.get(table),
                                     new_school_year)
            links, unclear = _one_to_one(pairs)
            for new_id, (old_id, matched_on, person_key) in links.items():
                sql.execute(f"insert into {MATCHED} (district_id, entity, old_id, new_id, matched_on, person_key) "
                            f"values ({d}, '{entity}', {placeholder(sql.dialect, 'old')}, "
                            f"{placeholder(sql.dialect, 'new')}, '{matched_on}', {placeholder(sql.dialect, 'key')})",
                            {**params, "old": old_id, "new": new_id, "key": person_key})
            for new_id, (others, why) in unclear.items():
                r = placeholder(sql.dialect, "record")
                sql.execute(f"delete from {AMBIGUITIES} where district_id = {d} and entity = '{entity}' "
                            f"and record_id = {r}", {**params, "record": new_id})
                sql.execute(f"insert into {AMBIGUITIES} values ({d}, '{entity}', {r}, "
                            f"{placeholder(sql.dialect, 'others')}, {placeholder(sql.dialect, 'why')})",
                            {**params, "record": new_id, "others": ", ".join(others), "why": why})
            linked[entity], ambiguous[entity] = len(links), len(unclear)
        _apply_person_keys(sql, table, entity, key, params)
    return Matches(linked, ambiguous)


def _stage(sql: Statements, name: str, select: str, params: dict) -> int:
    """A temporary table of the query's rows (analyzed on Postgres, whose autovacuum never does it
    for temporary tables: with a guess of one row, the plans were nested loops); returns its rows."""
    sql.execute(f"drop table if exists {name}")
    sql.execute(f"create temporary table {name} as {select}", params)
    if sql.dialect == "postgres":
        sql.execute(f"analyze {name}")
    return sql.execute(f"select count(*) from {name}").fetchone()[0]


def _candidate_pairs(sql: Statements, table: str, entity: str, key: str, has_birth_date: bool, params: dict,
                     changed: str | None, new_school_year: bool) -> list[tuple]:
    """(new id, old id, matched_on, old person_key, contradiction) for every new id that shares a
    sis_id or state_id with someone who left (in this sync, or earlier and never linked).

    Ids are compared as sets (EXCEPT: hashed or sorted, never row by row), and the two match
    columns are joined separately (an OR condition cannot be hashed).
    """
    d = placeholder(sql.dialect, "district_id")
    build, published, history = f"{BUILD_SCHEMA}.{table}", f"{PUBLISHED_SCHEMA}.{table}", history_table(table)
    narrow = f" and ({changed})" if changed else ""
    build_ids, published_ids = (f"select {key} from {relation} where district_id = {d}{narrow}"
                                for relation in (build, published))
    if not _stage(sql, "identity_new_ids", f"{build_ids} except {published_ids}", params):
        return []  # nobody new: nothing to match (most nights)
    _stage(sql, "identity_gone_ids", f"{published_ids} except {build_ids}", params)
    dob = "birth_date" if has_birth_date else "cast(null as date)"
    values = f"nullif(sis_id, '') as sis_id, nullif(state_id, '') as state_id, {dob} as birth_date, school_id"
    _stage(sql, "identity_new", f"select {key} as id, {values} from {build} as b where district_id = {d} "
                                f"and {key} in (select * from identity_new_ids)", params)
    left = [f"select {key} as id, {values}, coalesce(person_key, {key}) as person_key, true as same_sync "
            f"from {published} where district_id = {d} and {key} in (select * from identity_gone_ids)"]
    if table_columns(sql, PUBLISHED_SCHEMA, f"{table}_history"):  # left earlier: their last version
        left.append(f"""
            select id, sis_id, state_id, birth_date, school_id, person_key, false as same_sync from (
                select {key} as id, {values}, coalesce(person_key, {key}) as person_key,
                       row_number() over (partition by {key} order by valid_from desc) as latest
                from {history} as h
                where district_id = {d} and valid_to is not null
                  and (nullif(sis_id, '') in (select sis_id from identity_new) or
                       nullif(state_id, '') in (select state_id from identity_new))
                  and not exists (select 1 from {published} as p where p.district_id = {d} and p.{key} = h.{key})
                  and not exists (select 1 from {LINKS} as l where l.district_id = {d} and l.entity = '{entity}'
                                  and l.old_id = h.{key})) as versions
            where latest = 1""")
    _stage(sql, "identity_left", " union all ".join(left), params)
    school_differs = "false" if new_school_year else "o.same_sync and n.school_id is distinct from o.school_id"
    matched = [f"""
        select n.id, o.id, '{column}', o.person_key,
               case when n.birth_date <> o.birth_date then 'another birth date'
                    when {school_differs} then 'another school' end
        from identity_new as n join identity_left as o on n.{column} = o.{column}
        where n.id <> o.id"""  # an id that comes back is simply back: nothing was re-issued
               for column in ("sis_id", "state_id")]
    pairs = sql.execute(" union all ".join(matched) + " order by 1, 2, 3").fetchall()
    for name in ("identity_new_ids", "identity_gone_ids", "identity_new", "identity_left"):
        sql.execute(f"drop table if exists {name}")
    unique = {}  # (new, old) matched on both columns: once, on sis_id (sorted first)
    for pair in pairs:
        unique.setdefault(pair[:2], pair)
    return list(unique.values())


def _one_to_one(pairs: list[tuple]) -> tuple[dict[str, tuple[str, str, str]], dict[str, tuple[list[str], str]]]:
    """({new id: (old id, matched_on, person_key)}, {new id: (other ids, why not linked)})."""
    olds_of, news_of = defaultdict(list), defaultdict(set)
    for new_id, old_id, matched_on, person_key, contradiction in pairs:
        olds_of[new_id].append((old_id, matched_on, person_key, contradiction))
        news_of[old_id].add(new_id)
    links, unclear = {}, {}
    for new_id, olds in olds_of.items():
        old_id, matched_on, person_key, contradiction = olds[0]
        if len(olds) > 1:
            unclear[new_id] = ([o[0] for o in olds], f"{len(olds)} earlier ids share its {matched_on}")
        elif len(news_of[old_id]) > 1:
            unclear[new_id] = ([old_id], f"{len(news_of[old_id])} new ids share the {matched_on} of {old_id}")
        elif contradiction:
            unclear[new_id] = ([old_id], f"same {matched_on} as {old_id} but {contradiction}")
        else:
            links[new_id] = (old_id, matched_on, person_key)
    return links, unclear


def _apply_person_keys(sql: Statements, table: str, entity: str, key: str, params: dict) -> None:
    """Every linked row of the build carries its person's first id (the models write their own id)."""
    d = placeholder(sql.dialect, "district_id")
    links = (f"select new_id, person_key from {LINKS} where district_id = {d} and entity = '{entity}' "
             f"union all select new_id, person_key from {MATCHED} where district_id = {d} and entity = '{entity}'")
    sql.execute(f"""
        update {BUILD_SCHEMA}.{table} set person_key = links.person_key
        from ({links}) as links
        where {BUILD_SCHEMA}.{table}.district_id = {d} and {BUILD_SCHEMA}.{table}.{key} = links.new_id
          and {BUILD_SCHEMA}.{table}.person_key is distinct from links.person_key""", params)


def commit_links(sql: Statements, district_id: str, published_at, counts: dict[str, dict[str, int]]) -> int:
    """In the publish's transaction: keep the build's links, and say "Clever id re-issued" in the
    change log instead of "withdrawn" plus "enrolled" (the publish's counts follow). Returns links."""
    if not table_columns(sql, BUILD_SCHEMA, "identity_matches"):  # a publish without matching (no people)
        return 0
    d, params = _values(sql, district_id)
    t = placeholder(sql.dialect, "published_at")
    params["published_at"] = published_at
    links = sql.execute(f"select entity, old_id, new_id, matched_on from {MATCHED} where district_id = {d}",
                        params).fetchall()
    if not links:
        return 0
    sql.execute(f"insert into {LINKS} (district_id, entity, old_id, new_id, matched_on, linked_at, person_key) "
                f"select district_id, entity, old_id, new_id, matched_on, {t}, person_key from {MATCHED} "
                f"where district_id = {d}", params)
    sql.execute(f"delete from {MATCHED} where district_id = {d}", params)
    tables = {entity: table for table, (entity, _, _) in PEOPLE.items()}
    for entity, old_id, new_id, matched_on in links:
        ids = {**params, "old": old_id, "new": new_id}
        o, n = placeholder(sql.dialect, "old"), placeholder(sql.dialect, "new")
        removed = sql.execute(f"select count(*) from {CHANGES} where district_id = {d} and published_at = {t} and "
                              f"entity = '{entity}' and change = 'removed' and record_id = {o}", ids).fetchone()[0]
        sql.execute(f"delete from {CHANGES} where district_id = {d} and published_at = {t} and "
                    f"entity = '{entity}' and change = 'removed' and record_id = {o}", ids)
        added = sql.execute(f"select school_id from {CHANGES} where district_id = {d} and published_at = {t} and "
                            f"entity = '{entity}' and change = 'added' and record_id = {n}", ids).fetchone()
        sql.execute(f"delete from {CHANGES} where district_id = {d} and published_at = {t} and "
                    f"entity = '{entity}' and change = 'added' and record_id = {n}", ids)
        sql.execute(f"insert into {CHANGES} (district_id, published_at, entity, record_id, school_id, change, "
                    f"changed_columns, detail) values ({d}, {t}, '{entity}', {n}, "
                    f"{placeholder(sql.dialect, 'school')}, 'changed', '{entity}_id', "
                    f"{placeholder(sql.dialect, 'detail')})",
                    {**ids, "school": added[0] if added else None,
                     "detail": f"Clever id re-issued (was {old_id}; same {matched_on})"})
        tally = counts.get(tables[entity])
        if tally and "added" in tally:
            tally["added"] -= 1 if added else 0
            tally["removed"] -= removed
            tally["changed"] += 1
    return len(links)

