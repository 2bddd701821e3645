"""The mass-change guard: a district's new version may not shrink or grow a table abruptly.

A roster that suddenly loses half its students is far more often a broken SIS export or a
sharing mistake than a real change, and publishing it would take classes away from teachers.
The guard compares the checked build with the published version and blocks the publish when a
table changes by more than ROSTER_MASS_CHANGE_SHARE *and* by at least ROSTER_MASS_CHANGE_MIN_ROWS
rows (so a tiny district's normal churn never trips it). A district's first publish is exempt.
An operator approves a real change with `roster-pipeline approve --district ID` (or `sync --district
ID --accept-mass-change`, or the run tag `roster/accept_mass_change=true` in the UI's launchpad).
A new school year (school_year.py) is let through without approval.

Over the limit, the verdict names the removed and added records by id (the first few, and how
many): the check's metadata is in Dagster's event log, so ids and counts, never personal values.
"""

from __future__ import annotations

from dataclasses import dataclass

from roster_pipeline.modeling.contract_check import RECORD_KEYS, record_id
from roster_pipeline.settings import MassChangeSettings
from roster_pipeline.warehouse.connection import Statements, placeholder, table_columns
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA, PUBLISHED_SCHEMA

GUARDED_TABLES = ("students", "teachers", "sections", "enrollments")
IDS_SHOWN = 10


@dataclass(frozen=True)
class Verdict:
    table: str
    published: int | None  # None: the district was never published
    new: int
    blocked: bool
    message: str
    removed: tuple[int, tuple[str, ...]] | None = None  # over the limit: (records removed, the first ids)
    added: tuple[int, tuple[str, ...]] | None = None

    @property
    def change(self) -> int:
        return self.new - (self.published or 0)


def judge(sql: Statements, table: str, district_id: str, settings: MassChangeSettings,
          approved: bool, new_school_year: bool = False) -> Verdict:
    """The guard's verdict on one table, read in the caller's transaction (a new school year, see
    school_year.py, is not blocked: the year turning changes everything at once)."""
    mine = f"district_id = {placeholder(sql.dialect, 'd')}"
    new = sql.execute(f"select count(*) from {BUILD_SCHEMA}.{table} where {mine}", {"d": district_id}).fetchone()[0]
    published = None
    if table_columns(sql, PUBLISHED_SCHEMA, table):
        # The district counts as published once any of its tables has rows there.
        ever = sql.execute(f"select count(*) from {PUBLISHED_SCHEMA}.schools where {mine}", {"d": district_id}).fetchone()[0] \
            if table_columns(sql, PUBLISHED_SCHEMA, "schools") else 0
        if ever:
            published = sql.execute(f"select count(*) from {PUBLISHED_SCHEMA}.{table} where {mine}",
                                    {"d": district_id}).fetchone()[0]
    if published is None:
        return Verdict(table, None, new, False, f"first publish of the district: {new} {table}, not guarded")
    change = new - published
    share = abs(change) / published if published else (float("inf") if change else 0.0)
    over = share > settings.share and abs(change) >= settings.min_rows
    what = (f"{table}: {published} published, {new} now ({change:+d}, {share:.0%}); "
            f"limit {settings.share:.0%} and {settings.min_rows} rows")
    if not over:
        return Verdict(table, published, new, False, f"{what}: within the limit")
    removed = changed_records(sql, table, district_id, PUBLISHED_SCHEMA, BUILD_SCHEMA)
    added = changed_records(sql, table, district_id, BUILD_SCHEMA, PUBLISHED_SCHEMA)
    what += f"; {removed[0]} records removed, {added[0]} added"
    where = concentration(sql, table, district_id)
    if where:
        what += f". {where}"
    if approved or new_school_year:
        why = "approved for this run" if approved else "published as a new school year"
        return Verdict(table, published, new, False, f"{what}: above the limit, {why}", removed, added)
    return Verdict(table, published, new, True,
                   f"{what}: publish blocked. If the change is real, approve it with "
                   f"`roster-pipeline sync --district {district_id} --accept-mass-change`.", removed, added)


def without_approval_hint(message: str) -> str:
    """A blocking verdict's sentence up to its ": publish blocked. If the change is real, …" ending
    (for the places that say once, their own way, how to approve)."""
    return message.split(": publish blocked")[0]


def changed_records(sql: Statements, table: str, district_id: str, before: str, after: str) -> tuple[int, tuple[str, ...]]:
    """How many of the district's records are in `before`.table and not in `after`.table, and the first ids."""
    keys = ", ".join(RECORD_KEYS[table])
    mine = f"district_id = {placeholder(sql.dialect, 'd')}"
    gone = (f"select {keys} from {before}.{table} where {mine} "
            f"except select {keys} from {after}.{table} where {mine}")
    count = sql.execute(f"select count(*) from ({gone}) as gone", {"d": district_id}).fetchone()[0]
    ids = sql.execute(f"select * from ({gone}) as gone order by {keys} limit {IDS_SHOWN}", {"d": district_id}).fetchall()
    return int(count), tuple(record_id(row) for row in ids)


def concentration(sql: Statements, table: str, district_id: str) -> str:
    """Where a mass change is, per school, in one sentence: "Lincoln High: 480 of 520 students removed
    (92 %); the 11 other schools changed by < 2 %; a change of the school's sharing or of its SIS
    export is the likely cause." Empty for a table without schools."""
    if "school_id" not in table_columns(sql, BUILD_SCHEMA, table):
        return ""
    keys = ", ".join(["school_id", *RECORD_KEYS[table]])
    mine = f"district_id = {placeholder(sql.dialect, 'd')}"

    def per_school(before: str, after: str) -> dict:
        rows = sql.execute(f"select school_id, count(*) from (select {keys} from {before}.{table} where {mine} "
                           f"except select {keys} from {after}.{table} where {mine}) as gone group by school_id",
                           {"d": district_id}).fetchall()
        return {school: count for school, count in rows}

    removed, added = per_school(PUBLISHED_SCHEMA, BUILD_SCHEMA), per_school(BUILD_SCHEMA, PUBLISHED_SCHEMA)
    published = dict(sql.execute(f"select school_id, count(*) from {PUBLISHED_SCHEMA}.{table} where {mine} "
                                 "group by school_id", {"d": district_id}).fetchall())
    names = {}  # the published name of a school that left, else the new one
    for schema in (BUILD_SCHEMA, PUBLISHED_SCHEMA):
        if table_columns(sql, schema, "schools"):
            names.update(sql.execute(f"select school_id, name from {schema}.schools where {mine}",
                                     {"d": district_id}).fetchall())
    schools = set(published) | set(added)

    def moved(school) -> int:
        return removed.get(school, 0) + added.get(school, 0)

    def share(school) -> float:
        return moved(school) / max(published.get(school, 0), 1)

    top = max(schools, key=lambda school: (moved(school), str(school)), default=None)
    if top is None or not moved(top):
        return ""
    name = names.get(top) or top or "(no school)"
    parts = [f"{name}: {removed.get(top, 0)} of {published.get(top, 0)} {table} removed"
             + (f", {added[top]} added" if added.get(top) else "") + f" ({share(top):.0%})"]
    others = [school for school in schools if school != top]
    if others:
        most = max(share(school) for school in others)
        parts.append(f"the {len(others)} other school{'s' if len(others) != 1 else ''} changed by "
                     + ("< 1 %" if most < 0.01 else f"at most {most:.0%}"))
        if moved(top) >= 0.8 * sum(moved(school) for school in schools) and most < 0.05:
            parts.append("a change of the school's sharing or of its SIS export is the likely cause")
    return "; ".join(parts)
