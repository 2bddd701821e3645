"""Where DuckDB's SQL and Postgres' differ, for the SQL the pipeline writes in Python: one function
per construct, so the rest of the code writes one statement for both warehouses.

The SQL models have the same layer as dispatched macros (`dbt_like_sql/macros/dialect.sql`:
`duckdb__name` and `postgres__name`); `postgres_functions` creates what their Postgres versions call.
What differs in *what* is done (Postgres' indexes, statistics, vacuum and grants; DuckDB's
readers' copies) is not SQL text: the callers choose it, next to the reason
(roster_pipeline_tests/unit/test_dialect.py lists those choices and fails on any other branch).
"""

from __future__ import annotations

from roster_pipeline.warehouse.schemas import BUILD_SCHEMA

DUCKDB, POSTGRES = "duckdb", "postgres"
DIALECTS = (DUCKDB, POSTGRES)


def _pick(dialect: str, *, duckdb, postgres):
    """The `dialect`'s version of something; an unknown dialect is an error, never silently one of them."""
    if dialect == DUCKDB:
        return duckdb
    if dialect == POSTGRES:
        return postgres
    raise ValueError(f"unknown SQL dialect {dialect!r}: one of {', '.join(DIALECTS)}")


def placeholder(dialect: str, name: str) -> str:
    """A named bound parameter's marker (`$name` in DuckDB, `%(name)s` in psycopg2)."""
    return _pick(dialect, duckdb=f"${name}", postgres=f"%({name})s")


def positional_marker(dialect: str) -> str:
    """A positional bound parameter's marker (the drivers' DB-API paramstyles)."""
    return _pick(dialect, duckdb="?", postgres="%s")


def bound_parameters(dialect: str, sql: str, parameters: dict | list) -> dict | list:
    """The parameters to send with `sql`: DuckDB refuses named ones the statement does not use
    (psycopg2 ignores them), so callers may pass one dict to many statements."""
    if dialect == DUCKDB and isinstance(parameters, dict):
        return {k: v for k, v in parameters.items() if placeholder(dialect, k) in sql}
    return parameters


def regex_match(dialect: str, expr: str, pattern: str) -> str:
    """True when `expr` matches the regular expression `pattern` (both SQL expressions)."""
    return _pick(dialect, duckdb=f"regexp_matches({expr}, {pattern})", postgres=f"({expr} ~ {pattern})")


def create_work_table(dialect: str, relation: str, query: str) -> str:
    """`create table ... as` for a work area every run rebuilds. Postgres: unlogged, as such a
    table needs no write-ahead log (about half the cost of writing a large district's slice);
    after a server crash it is simply empty."""
    return f"create {_pick(dialect, duckdb='', postgres='unlogged ')}table {relation} as {query}"


_POSTGRES_BIRTH_DATE = f"""
create or replace function {BUILD_SCHEMA}.try_parse_birth_date(value text) returns date
language plpgsql immutable parallel safe as $fn$
declare
    parts text[];
    y int; m int; d int;
begin
    value := trim(value);
    if value ~ '^[0-9]{{1,2}}/[0-9]{{1,2}}/[0-9]{{4}}$' then
        parts := string_to_array(value, '/');
        y := parts[3]::int; m := parts[1]::int; d := parts[2]::int;
    elsif value ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$' then
        parts := string_to_array(value, '-');
        y := parts[1]::int; m := parts[2]::int; d := parts[3]::int;
    else
        return null;
    end if;
    -- Not a calendar date (February 30, month 13, year 0): tested, not caught, because an
    -- exception block costs a subtransaction per row (2.4 s more per million students).
    if y < 1 or m not between 1 and 12 or d not between 1 and
            extract(day from make_date(y, m, 1) + interval '1 month - 1 day') then
        return null;
    end if;
    return make_date(y, m, d);
end;
$fn$;
"""

_POSTGRES_TIMESTAMP = f"""
create or replace function {BUILD_SCHEMA}.try_parse_timestamptz(value text) returns timestamp with time zone
language plpgsql stable as $fn$
begin
    return nullif(trim(value), '')::timestamp with time zone;
exception when others then
    return null;
end;
$fn$;
"""


def support_functions(dialect: str) -> list[str]:
    """The statements creating the functions the dialect's macros call: Postgres has no `try_strptime`
    or `try_cast`, so `postgres__parse_birth_date` and `postgres__parse_timestamp` call these."""
    return _pick(dialect, duckdb=[], postgres=[_POSTGRES_BIRTH_DATE, _POSTGRES_TIMESTAMP])
