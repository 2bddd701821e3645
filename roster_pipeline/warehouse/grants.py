"""Postgres access roles (FERPA-minded): who may read which roster tables.

- `roster_reader`: every `roster` table except `demographics` and `demographics_history`; nothing of
  the raw or build schemas.
- `roster_demographics_reader`: what `roster_reader` has, plus both.
- The loader (the user in ROSTER_WAREHOUSE) owns the schemas and tables.

Both roles are NOLOGIN groups: grant them to people's logins (`grant roster_reader to alice`).
Grants are per table, never `ALTER DEFAULT PRIVILEGES` on the schema, so a table added later
(say a new demographic one) is private until someone grants it on purpose; publishing re-applies
these grants for the tables it creates.
"""

from __future__ import annotations

from roster_pipeline.warehouse.connection import Statements, Warehouse
from roster_pipeline.warehouse.schemas import PUBLISHED_SCHEMA

READER = "roster_reader"
DEMOGRAPHICS_READER = "roster_demographics_reader"
RESTRICTED_TABLES = {"demographics", "demographics_history"}


def ensure_roles(sql: Statements) -> None:
    for role in (READER, DEMOGRAPHICS_READER):
        sql.execute(f"do $$ begin if not exists (select 1 from pg_roles where rolname = '{role}') "
                    f"then create role {role} nologin; end if; end $$")
    sql.execute(f"grant {READER} to {DEMOGRAPHICS_READER}")


def apply_grants(sql: Statements) -> dict[str, list[str]]:
    """Grant the roles their tables (idempotent); returns role → tables granted."""
    sql.execute(f"create schema if not exists {PUBLISHED_SCHEMA}")
    tables = [r[0] for r in sql.execute(
        "select table_name from information_schema.tables where table_schema = %s order by table_name",
        [PUBLISHED_SCHEMA]).fetchall()]
    sql.execute(f"grant usage on schema {PUBLISHED_SCHEMA} to {READER}")
    granted: dict[str, list[str]] = {READER: [], DEMOGRAPHICS_READER: []}
    for table in tables:
        role = DEMOGRAPHICS_READER if table in RESTRICTED_TABLES else READER
        sql.execute(f"grant select on {PUBLISHED_SCHEMA}.{table} to {role}")
        granted[role].append(table)
    return granted


def roles_exist(sql: Statements) -> bool:
    return bool(sql.execute("select count(*) from pg_roles where rolname = %s", [READER]).fetchone()[0])


def setup_grants(warehouse: Warehouse) -> dict[str, list[str]]:
    """Create the roles if needed and grant them their tables (Postgres warehouses only)."""
    if warehouse.kind != "postgres":
        raise ValueError("Access roles are a Postgres feature; ROSTER_WAREHOUSE points at DuckDB.")
    with warehouse.transaction() as sql:
        ensure_roles(sql)
        return apply_grants(sql)
