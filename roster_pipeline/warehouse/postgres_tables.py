"""Postgres plans that are right at every size: indexes, keys and fresh statistics.

Every table here is bulk-written one district slice at a time, and the next statement reads it
at once. Autovacuum's ANALYZE comes later (if at all, inside the same run), so without help
Postgres plans a 600,000-row join over "1 row" estimates with nested loops and never finishes.
So after each bulk write the writer refreshes the table's statistics when its slice moved them
noticeably, and the tables carry the indexes the models, checks, guard and publish filter and
join on: `district_id` first, then the keys (declared in the models' yml, dbt style, and for the raw
tables in clever/settings.py). DuckDB needs none of this: it has no planner statistics to go
stale, and its zone maps serve the district filters.
"""

from __future__ import annotations

import hashlib

from roster_pipeline.clever.settings import RAW_DATASET, RAW_KEYS
from roster_pipeline.warehouse.connection import Statements, Warehouse, table_columns

# Re-analyze when a district's slice changed size by this share (autovacuum's default threshold
# for a whole table is 10 % + 50 rows; it would analyze later, and never for a small district).
ANALYZE_SHARE, ANALYZE_MIN_ROWS = 0.1, 50


def index_name(table: str, columns: tuple[str, ...], unique: bool = False) -> str:
    """A readable name within Postgres' 63 bytes, the same every time (so `if not exists` works)."""
    name = f"{table}__{'_'.join(columns)}{'__key' if unique else ''}"
    if len(name) > 63:
        name = f"{name[:54]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name


def with_district_index(indexes: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The indexes a table gets: its own, and one on `district_id` unless one of them leads with it
    (every reader filters on the district)."""
    if any(columns[0] == "district_id" for columns in indexes):
        return list(dict.fromkeys(indexes))
    return list(dict.fromkeys([("district_id",), *indexes]))


def ensure_indexes(sql: Statements, schema: str, table: str, indexes: list[tuple[str, ...]]) -> None:
    """Create the missing ones (see with_district_index)."""
    for columns in with_district_index(indexes):
        sql.execute(f"create index if not exists {index_name(table, columns)} on {schema}.{table} ({', '.join(columns)})")


def key_constraint(table: str, key: tuple[str, tuple[str, ...]]) -> str:
    """`constraint <name> ...` for a declared key (kind, columns), as publish adds it and the data
    dictionary shows it. `unique` keys (admins: school_id is NULL for district admins) treat NULLs
    as equal, which a primary key cannot hold."""
    kind, columns = key
    spec = {"primary_key": "primary key", "unique": "unique nulls not distinct"}[kind]
    return f"constraint {index_name(table, columns, unique=True)} {spec} ({', '.join(columns)})"


def ensure_key(sql: Statements, schema: str, table: str, key: tuple[str, tuple[str, ...]] | None) -> None:
    """The published table's declared key, added once (the pandera contract checked it before publish)."""
    if key is None:
        return
    name = index_name(table, key[1], unique=True)
    exists = sql.execute("select count(*) from pg_constraint where conname = %(n)s and conrelid = %(t)s::regclass",
                         {"n": name, "t": f"{schema}.{table}"}).fetchone()[0]
    if not exists:
        sql.execute(f"alter table {schema}.{table} add {key_constraint(table, key)}")


def refresh_statistics(sql: Statements, relation: str, rows_before: int, rows_after: int) -> bool:
    """ANALYZE the table now when this district's slice changed size noticeably; True when it did.

    The planner estimates `district_id = X` from the table's most-common-values list: a district
    that is new to the table (or grew a lot) is estimated at about one row until the next
    ANALYZE, and the checks' joins over it then run as nested loops (a 4,000-row district's
    check took 8 s once 17 districts shared the table). So a slice that appears, disappears or
    changes size by 10 % or more is analyzed at once, inside the writer's transaction (Postgres
    counts the transaction's own rows), so the very next statement is planned on it. An
    unchanged nightly slice costs nothing.
    """
    estimated = sql.execute("select reltuples from pg_class where oid = %(t)s::regclass", {"t": relation}).fetchone()[0]
    if estimated >= 0 and abs(rows_after - rows_before) < ANALYZE_SHARE * max(rows_before, rows_after) + ANALYZE_MIN_ROWS:
        return False
    sql.execute(f"analyze {relation}")
    return True


def reclaim_space(warehouse: Warehouse, rows_rewritten: dict[str, int]) -> list[str]:
    """VACUUM the tables this district's rewrite churned by 10 % or more; returns them.

    Replacing a slice leaves the old rows dead; without a vacuum a large district's tables grow
    by their whole size every night. Autovacuum would reclaim them eventually (if it is on; it is
    off on some servers), so the large rewrites are vacuumed at once, outside any transaction
    (VACUUM cannot run in one). Small districts in large tables are left to autovacuum.
    """
    if warehouse.kind != "postgres" or not rows_rewritten:
        return []
    vacuumed = []
    with warehouse.connect() as conn:
        conn.autocommit = True
        cursor = conn.cursor()
        for relation, rows in rows_rewritten.items():
            cursor.execute("select reltuples from pg_class where oid = to_regclass(%s)", [relation])
            found = cursor.fetchone()
            if found and rows >= ANALYZE_SHARE * max(found[0], 0) and rows > 0:
                cursor.execute(f"vacuum {relation}")
                vacuumed.append(relation)
    return vacuumed


def tune_raw_tables(warehouse: Warehouse, district_id: str, rows_before: dict[str, int]) -> dict[str, int]:
    """After a district's raw load: index the raw tables and refresh the statistics its load moved.

    dlt creates the raw tables (and adds columns) itself, so this runs after every load;
    `rows_before` is the district's rows per raw table before it. Returns the rows after.
    """
    analyzed = {}
    with warehouse.transaction() as sql:
        for table, key in RAW_KEYS.items():
            if not table_columns(sql, RAW_DATASET, table):
                continue  # not loaded yet (a district without such records)
            ensure_indexes(sql, RAW_DATASET, table, [key])
            if len(key) > 2:  # (district, section, student) pairs: Postgres guesses the distinct pairs
                # from each column alone, 6x too few at 30,000 students; teach it the combination.
                sql.execute(f"create statistics if not exists {RAW_DATASET}.{table}__pairs (ndistinct) "
                            f"on {', '.join(key)} from {RAW_DATASET}.{table}")
            rows = sql.execute(f"select count(*) from {RAW_DATASET}.{table} where district_id = %(d)s",
                               {"d": district_id}).fetchone()[0]
            refresh_statistics(sql, f"{RAW_DATASET}.{table}", rows_before.get(table, rows), rows)
            analyzed[f"{RAW_DATASET}.{table}"] = rows
    return analyzed
