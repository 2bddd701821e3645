"""Build one SQL model for one district in the warehouse (DuckDB or Postgres).

Views are (re)created whole. Table models hold one slice per district: the slice is deleted
and re-inserted in one transaction, and the insert keeps only rows of the district being built,
so a model that forgot its district filter still cannot touch another district.
"""

from __future__ import annotations

from roster_pipeline.modeling.incremental import changed_condition
from roster_pipeline.modeling.project import SqlModel, SqlProject
from roster_pipeline.warehouse.connection import Statements, placeholder, table_columns
from roster_pipeline.warehouse.dialect import create_work_table, support_functions
from roster_pipeline.warehouse.postgres_tables import ensure_indexes, refresh_statistics
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA, STAGING_SCHEMA


def prepare_schemas(sql: Statements) -> None:
    for schema in (STAGING_SCHEMA, BUILD_SCHEMA):
        sql.execute(f"create schema if not exists {schema}")
    for statement in support_functions(sql.dialect):  # what the macros' Postgres versions call
        sql.execute(statement)


def build_model(sql: Statements, project: SqlProject, model: SqlModel, district_id: str,
                parameters: dict[str, str], deleted: dict[str, int] | None = None,
                incremental: bool = False) -> int:
    """Build `model` for one district inside the caller's transaction; returns the district's rows in it.

    `deleted`, when given, receives the rows of the district's previous slice that were deleted.
    `incremental`: replace only the model's `changed_rows` (the records listed in
    roster_build.affected_keys, see incremental.py); a model without them is rebuilt whole.
    """
    changed = project.changed_rows(model) if incremental else None
    rendered = project.render(model, sql.dialect, incremental=changed is not None)
    values = {**parameters, "district_id": district_id}
    missing = [p for p in rendered.parameters if p not in values]
    if missing:
        raise ValueError(f"{model.path.name} uses parameters nobody provides: {missing}")
    if model.materialized == "view":
        sql.execute(f"create or replace view {model.relation} as {rendered.sql}")
        return 0
    query = f"select * from ({rendered.sql}) as model_rows"
    mine = f"district_id = {placeholder(sql.dialect, 'district_id')}"
    if changed is not None:
        mine = f"{mine} and ({changed_condition(changed, sql.dialect)})"
    wanted = sql.execute(f"{query} limit 0", values).columns
    if "district_id" not in wanted:
        raise ValueError(f"{model.path.name} must return a district_id column")
    created = table_columns(sql, model.schema, model.name) != wanted
    if created and changed is not None:
        raise ValueError(f"{model.path.name}: its build table must be rebuilt whole (its columns changed)")
    if created:
        # A new model, or its columns changed: the build table (a work area) is recreated.
        sql.execute(f"drop table if exists {model.relation}")
        sql.execute(create_work_table(sql.dialect, model.relation, f"{query} limit 0"), values)
    elif sql.dialect == "postgres":  # the indexes the next models join on (no-op once they exist)
        ensure_indexes(sql, model.schema, model.name, build_indexes(project, model))
    sql.execute(f"delete from {model.relation} where {mine}", values)
    previous = sql.cursor.rowcount  # (the row counts serve Postgres' statistics and vacuum only)
    if deleted is not None and sql.dialect == "postgres":
        deleted[model.relation] = previous  # dead rows a vacuum can reclaim
    sql.execute(f"insert into {model.relation} {query} where {mine}", values)
    if created and sql.dialect == "postgres":  # a new table is indexed once written (one sorted build each)
        ensure_indexes(sql, model.schema, model.name, build_indexes(project, model))
    if changed is not None:  # the rows replaced, not the slice: count the slice for the metadata
        inserted = sql.cursor.rowcount
        rows = sql.execute(f"select count(*) from {model.relation} where district_id = "
                           f"{placeholder(sql.dialect, 'district_id')}", values).fetchone()[0]
        if sql.dialect == "postgres":
            refresh_statistics(sql, model.relation, previous, inserted)
        return rows
    rows = sql.execute(f"select count(*) from {model.relation} where {mine}", values).fetchone()[0]
    if sql.dialect == "postgres":
        refresh_statistics(sql, model.relation, previous, rows)
    return rows


def build_indexes(project: SqlProject, model: SqlModel) -> list[tuple[str, ...]]:
    """A build table's indexes besides `district_id` (which every reader filters on): an
    intermediate model's yml `config.indexes`, which the next models join on.

    Not its key, and not a mart's indexes (those serve the analysts, on the published table): the
    checks and the publish read a district's whole slice, and keeping more indexes current cost
    10-25 % of writing the largest slices.
    """
    return list(project.docs.get(model.name, {}).get("indexes", [])) if model.layer == "intermediate" else []
