"""Postgres access roles (FERPA-minded): who may read which roster tables.

- `roster_reader`: the `roster` tables of access class `reader`; nothing of the raw or build schemas.
- `roster_demographics_reader`: what `roster_reader` has, plus the tables of class `demographics`.
- The loader (the user in ROSTER_WAREHOUSE) owns the schemas and tables.

The classes are declared per table (`meta.access` in `dbt_like_sql/marts/_marts.yml`, read by
`SqlProject.access_classes`) and passed in: an allow-list. A table in `roster` that nobody
classified (say a new `student_disabilities`) is granted to nobody, and a grant it had is revoked,
until someone declares its class on purpose. Both roles are NOLOGIN groups: grant them to
people's logins (`grant roster_reader to alice`). Grants are per table, never `ALTER DEFAULT
PRIVILEGES` on the schema; publishing re-applies them for the tables it creates.
"""

from __future__ import annotations

from roster_pipeline.warehouse.connection import Statements, Warehouse
from roster_pipeline.warehouse.dialect import positional_marker
from roster_pipeline.warehouse.schemas import PUBLISHED_SCHEMA

READER = "roster_reader"
DEMOGRAPHICS_READER = "roster_demographics_reader"
ROLE_OF_CLASS = {"reader": READER, "demographics": DEMOGRAPHICS_READER}
UNCLASSIFIED = "unclassified (granted to nobody)"


def ensure_roles(sql: Statements) -> None:
    for role in (READER, DEMOGRAPHICS_READER):
        sql.execute(f"do $$ begin if not exists (select 1 from pg_roles where rolname = '{role}') "
                    f"then create role {role} nologin; end if; end $$")
    sql.execute(f"grant {READER} to {DEMOGRAPHICS_READER}")


def published_tables(sql: Statements) -> list[str]:
    """Every table in schema `roster` now."""
    marker = positional_marker(sql.dialect)
    return [r[0] for r in sql.execute(
        f"select table_name from information_schema.tables where table_schema = {marker} order by table_name",
        [PUBLISHED_SCHEMA]).fetchall()]


def apply_grants(sql: Statements, access: dict[str, str]) -> dict[str, list[str]]:
    """Grant each `roster` table to the role of its class only (idempotent); returns role → tables.

    `access` is table → class (`SqlProject.access_classes`). Every grant is revoked first, so a
    table whose class narrowed, or that lost it, keeps no old grant.
    """
    sql.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
    sql.execute(f"grant usage on schema {PUBLISHED_SCHEMA} to {READER}")
    granted: dict[str, list[str]] = {READER: [], DEMOGRAPHICS_READER: [], UNCLASSIFIED: []}
    for table in published_tables(sql):
        sql.execute(f"revoke all on {PUBLISHED_SCHEMA}.{table} from {READER}, {DEMOGRAPHICS_READER}")
        role = ROLE_OF_CLASS.get(access.get(table, ""))
        if role is None:
            granted[UNCLASSIFIED].append(table)
            continue
        sql.execute(f"grant select on {PUBLISHED_SCHEMA}.{table} to {role}")
        granted[role].append(table)
    return granted


def roles_exist(sql: Statements) -> bool:
    return bool(sql.execute("select count(*) from pg_roles where rolname = %s", [READER]).fetchone()[0])


def setup_grants(warehouse: Warehouse, access: dict[str, str]) -> dict[str, list[str]]:
    """Create the roles if needed and grant them their tables (Postgres warehouses only)."""
    if warehouse.kind != "postgres":
        raise ValueError("Access roles are a Postgres feature; ROSTER_WAREHOUSE points at DuckDB.")
    with warehouse.transaction() as sql:
        ensure_roles(sql)
        return apply_grants(sql, access)
