"""Publish a checked district into schema `roster`, atomically, without touching other districts."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from roster_pipeline.modeling.project import SqlProject
from roster_pipeline.publishing import history, identities
from roster_pipeline.publishing.history import TableHistory
from roster_pipeline.warehouse.connection import Statements, Warehouse, add_missing_columns, placeholder, table_columns
from roster_pipeline.warehouse.postgres_tables import ensure_indexes, ensure_key, refresh_statistics
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA, PUBLISHED_SCHEMA

PREVIOUS_SUMMARY = f"{BUILD_SCHEMA}.previous_school_roster_summary"  # the reports' "previous sync"


def snapshot_previous_summary(sql: Statements, district_id: str) -> None:
    """Keep the district's published per-school counts before a publish replaces them (for "previous sync")."""
    if not table_columns(sql, PUBLISHED_SCHEMA, "school_roster_summary"):
        return
    p = placeholder(sql.dialect, "d")
    if table_columns(sql, BUILD_SCHEMA, "previous_school_roster_summary") != table_columns(
            sql, PUBLISHED_SCHEMA, "school_roster_summary"):  # first publish, or the summary's columns changed
        sql.execute(f"drop table if exists {PREVIOUS_SUMMARY}")
        sql.execute(f"create table {PREVIOUS_SUMMARY} as select * from {PUBLISHED_SCHEMA}.school_roster_summary limit 0")
    sql.execute(f"delete from {PREVIOUS_SUMMARY} where district_id = {p}", {"d": district_id})
    names = ", ".join(table_columns(sql, BUILD_SCHEMA, "previous_school_roster_summary"))
    sql.execute(f"insert into {PREVIOUS_SUMMARY} ({names}) select {names} from {PUBLISHED_SCHEMA}.school_roster_summary "
                f"where district_id = {p}", {"d": district_id})


def _replace_changed_rows(sql: Statements, table: str, names: str, params: dict,
                          changed: str | None = None) -> tuple[int, int]:
    """Postgres: delete the district's published rows that changed or left, insert the new versions
    (`publish_gone` and `publish_new`, see history.stage_differences); returns (deleted, inserted).

    Replacing the whole slice every night left a dead copy of every row (a 1M-student district's
    tables doubled until a vacuum, and stayed twice their size); touching only what changed
    keeps them their size. Rows are compared whole (every column, NULLs equal) through the md5
    of their text, which Postgres can hash-join; EXCEPT ALL keeps duplicates exact. `changed`
    (an incremental build's condition) narrows the rows looked at to those it replaced.
    """
    published = f"{PUBLISHED_SCHEMA}.{table}"
    sql.execute(f"""
        delete from {published} as p
        using (select distinct md5(row({names})::text) as fingerprint from {history.GONE}) as gone
        where p.district_id = %(district_id)s and {f"({changed}) and " if changed else ""}
              md5(row({', '.join(f'p.{c}' for c in names.split(', '))})::text) = gone.fingerprint""", params)
    deleted = sql.cursor.rowcount
    sql.execute(f"insert into {published} ({names}) select {names} from {history.NEW}", params)
    return deleted, sql.cursor.rowcount


@dataclass(frozen=True)
class TablePublish:
    """One table of a publish: what the project's yml says of it, read once before the publish
    starts, and the rows an incremental build replaced."""

    table: str
    changed_sql: str | None = None  # an incremental build's condition on the rows it replaced; None: compared whole
    key: tuple[str, tuple[str, ...]] | None = None  # the declared key (kind, columns): Postgres adds it once
    indexes: tuple[tuple[str, ...], ...] = ()  # the analysts' indexes (Postgres)
    history: TableHistory | None = None  # None: the table keeps no history


@dataclass(frozen=True)
class PublishPlan:
    """The tables to publish, in order, and the project they come from (the publish log's columns,
    the history trimmed and the grants cover all of its tables with history, published now or not)."""

    project: SqlProject
    tables: tuple[TablePublish, ...]


@dataclass(frozen=True)
class PublishResult:
    """What a publish did, returned rather than written into the caller's dicts."""

    counts: dict[str, dict[str, int]]  # table → its rows now (`rows`) and, with history, records added/removed/changed
    rewritten: dict[str, int]  # published relation → rows its publish deleted on Postgres (for the vacuum after it)
    seconds: dict[str, float]  # `publish_seconds`, and the part of them the history took (`history_seconds`)


def publish_plan(project: SqlProject, tables: list[str], changed_sql: dict[str, str] | None = None) -> PublishPlan:
    """The plan of publishing `tables` of `project`; `changed_sql`, after an incremental build, per
    table the SQL condition on the rows it replaced (a table without one is compared whole)."""
    planned = []
    for table in tables:
        doc = project.docs.get(table, {})
        planned.append(TablePublish(table, (changed_sql or {}).get(table), doc.get("key"),
                                    tuple(doc.get("indexes", [])), history.table_history(project, table)))
    return PublishPlan(project, tuple(planned))


def _ensure_keys_and_indexes(sql: Statements, planned: TablePublish, columns: list[str]) -> None:
    """The published table's declared key and the analysts' indexes (no-op once they exist)."""
    key, table = planned.key, planned.table
    ensure_key(sql, PUBLISHED_SCHEMA, table, key if key and set(key[1]) <= set(columns) else None)
    ensure_indexes(sql, PUBLISHED_SCHEMA, table, [i for i in planned.indexes if set(i) <= set(columns)])


class Stopwatch:
    """Seconds spent inside `running()` blocks: what the history costs a publish (shown in its metadata)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    @contextmanager
    def running(self):
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds += time.monotonic() - started


def publish_district(sql: Statements, district_id: str, plan: PublishPlan, publish: history.Publish | None = None,
                     retention_days: int | None = None) -> PublishResult:
    """Swap the district's rows of every planned table in the caller's transaction, with their history.

    A reader sees the previous complete version of the district or the new one, never a mix
    (both DuckDB and Postgres give readers a snapshot of committed data); the history, the change
    log and the `publishes` row commit with it or not at all. Returns the counts, the rows
    rewritten and the seconds (see PublishResult); `retention_days` trims the history older.
    """
    project = plan.project
    publish = publish or history.Publish(datetime.now(timezone.utc))
    started, keeping_history = time.monotonic(), Stopwatch()
    mine = f"district_id = {placeholder(sql.dialect, 'district_id')}"
    params = {"district_id": district_id, "published_at": publish.published_at}
    sql.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
    with keeping_history.running():
        history.prepare(sql, project)
    last_publish = _last_publish(sql, district_id) or publish.published_at
    snapshot_previous_summary(sql, district_id)
    with keeping_history.running():  # read before the schools are replaced: which left or came back with their school
        history.stage_school_sharing(sql, history.school_sharing(sql, district_id))
    counts: dict[str, dict[str, int]] = {}
    rewritten: dict[str, int] = {}
    for planned in plan.tables:
        table, where, kept = planned.table, planned.changed_sql, planned.history
        build, published = f"{BUILD_SCHEMA}.{table}", f"{PUBLISHED_SCHEMA}.{table}"
        columns = table_columns(sql, BUILD_SCHEMA, table)
        created = _match_columns(sql, table, columns)
        if sql.dialect == "postgres" and not created:
            _ensure_keys_and_indexes(sql, planned, columns)
        names = ", ".join(columns)
        empty = not sql.execute(f"select exists (select 1 from {published} where {mine})", params).fetchone()[0]
        tracked = kept is not None and set(kept.key) <= set(columns)  # a table without its key columns has no versions
        first = empty  # the district's first rows in this table: nothing to compare with
        if tracked:
            with keeping_history.running():
                new_history = history.ensure_history_table(sql, kept)
                remembered = history.has_history(sql, table, params)
                first = empty and not remembered
                if not empty and not remembered:
                    history.seed_history(sql, table, names, {**params, "since": last_publish},
                                         placeholder(sql.dialect, "since"))
        if not first and sql.dialect == "postgres":  # the publish replaces only what differs
            history.stage_differences(sql, table, build, names, params, where)
        elif not first and tracked:  # DuckDB swaps the slice whole: the differences are the history's alone
            with keeping_history.running():
                history.stage_differences(sql, table, build, names, params, where)
        deleted = inserted = 0
        if sql.dialect == "postgres" and first:
            sql.execute(f"insert into {published} ({names}) select {names} from {build} where {mine}", params)
            inserted = sql.cursor.rowcount
        elif sql.dialect == "postgres":
            deleted, inserted = _replace_changed_rows(sql, table, names, params, where)
        else:  # DuckDB: no MVCC bloat to avoid, and a plain swap of the slice (or its changed rows) is its fastest write
            replaced = f"{mine} and ({where})" if where else mine
            sql.execute(f"delete from {published} where {replaced}", params)
            sql.execute(f"insert into {published} ({names}) select {names} from {build} where {replaced}", params)
        if sql.dialect == "postgres" and created:
            # A new table's first slice (a new installation) is indexed after it is written: one
            # sorted build per index instead of millions of single inserts (1M students: the
            # enrollments publish took 30 s with its three indexes in place).
            _ensure_keys_and_indexes(sql, planned, columns)
        if table == "districts":  # the one column a model cannot know: when this publish happened
            sql.execute(f"update {PUBLISHED_SCHEMA}.districts set published_at = "
                        f"{placeholder(sql.dialect, 'published_at')} where {mine}", params)
        counts[table] = {"rows": sql.execute(f"select count(*) from {published} where {mine}", params).fetchone()[0]}
        if tracked:
            with keeping_history.running():
                history.record_versions(sql, kept, names, params, first)
                if new_history:  # indexed once filled: one sorted build, as for a new published table
                    history.index_history_table(sql, kept)
                counts[table].update(history.count_changes(sql, kept, params, first))
                if kept.entity and not first:
                    history.record_changes(sql, kept, columns, params)
        history.drop_differences(sql)
        if sql.dialect == "postgres":
            rewritten[published] = deleted  # dead rows a vacuum can reclaim
            rows = counts[table]["rows"]
            refresh_statistics(sql, published, rows - inserted + deleted, rows)
    history.drop_school_sharing(sql)
    with keeping_history.running():
        identities.commit_links(sql, district_id, publish.published_at, counts)
        history.record_publish(sql, project, district_id, publish, counts)
        history.trim(sql, project, district_id, publish, retention_days)
    if sql.dialect == "postgres":
        from roster_pipeline.warehouse.grants import apply_grants, roles_exist

        if roles_exist(sql):  # a table created just now gets its readers too, in the same transaction
            apply_grants(sql, project.access_classes)
    return PublishResult(counts, rewritten, {"publish_seconds": round(time.monotonic() - started, 3),
                                             "history_seconds": round(keeping_history.seconds, 3)})


def _match_columns(sql: Statements, table: str, columns: list[str]) -> bool:
    """Create the published table, or follow the model's columns; True when it was created now."""
    published = table_columns(sql, PUBLISHED_SCHEMA, table)
    if not published:
        sql.execute(f"create table {PUBLISHED_SCHEMA}.{table} as select * from {BUILD_SCHEMA}.{table} limit 0")
        return True
    add_missing_columns(sql, (BUILD_SCHEMA, table), (PUBLISHED_SCHEMA, table))  # a model gained a column
    for column in [c for c in published if c not in columns]:  # renamed or removed by the model
        sql.execute(f"alter table {PUBLISHED_SCHEMA}.{table} drop column {column}")
    return False


def _last_publish(sql: Statements, district_id: str):
    """When the district was last published (roster.districts), or None."""
    if "published_at" not in table_columns(sql, PUBLISHED_SCHEMA, "districts"):
        return None
    row = sql.execute(f"select published_at from {PUBLISHED_SCHEMA}.districts where district_id = "
                      f"{placeholder(sql.dialect, 'd')}", {"d": district_id}).fetchone()
    return row[0] if row else None


def published_summary(warehouse: Warehouse, district_ids: list[str]) -> tuple[dict, dict]:
    """({district: {table: rows}}, {(district, reason_code, action): rows}) from schema `roster`."""
    counts: dict[str, dict[str, int]] = {}
    reasons: dict[tuple[str, str, str], int] = {}
    with warehouse.transaction() as sql:
        tables = [r[0] for r in sql.execute(
            "select table_name from information_schema.tables where table_schema = "
            f"{placeholder(sql.dialect, 's')}", {"s": PUBLISHED_SCHEMA}).fetchall()]
        for table in sorted(tables):
            for district_id, rows in sql.execute(
                    f"select district_id, count(*) from {PUBLISHED_SCHEMA}.{table} group by district_id").fetchall():
                if district_id in district_ids:
                    counts.setdefault(district_id, {})[table] = rows
        if "rejected_records" in tables:
            for district_id, reason, action, rows in sql.execute(
                    f"select district_id, reason_code, action, count(*) from {PUBLISHED_SCHEMA}.rejected_records "
                    "group by district_id, reason_code, action").fetchall():
                if district_id in district_ids:
                    reasons[(district_id, reason, action)] = rows
    return counts, reasons


def published_district_names(warehouse: Warehouse, district_ids: list[str]) -> dict[str, str]:
    """District id → name, from the published `roster.districts` (districts never published are absent)."""
    names: dict[str, str] = {}
    with warehouse.transaction() as sql:
        if table_columns(sql, PUBLISHED_SCHEMA, "districts"):
            p = placeholder(sql.dialect, "d")
            for district_id in district_ids:
                row = sql.execute(f"select name from {PUBLISHED_SCHEMA}.districts where district_id = {p}",
                                  {"d": district_id}).fetchone()
                if row and row[0]:
                    names[district_id] = row[0]
    return names


def district_labels(warehouse: Warehouse, district_ids: list[str], *, short: bool = False) -> dict[str, str]:
    """How people see a district: "Riverside Unified (6a1f…)", or the id alone before its first publish.

    `short` abbreviates the id for page titles; command lines keep it whole so it can be pasted
    into `--district`.
    """
    names = published_district_names(warehouse, district_ids)
    shown = {d: f"{d[:4]}…" if short else d for d in district_ids}
    return {d: f"{names[d]} ({shown[d]})" if d in names else d for d in district_ids}
