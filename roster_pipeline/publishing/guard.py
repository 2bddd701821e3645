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
A school that left or came back with its sharing is said so ("school no longer shared", "school
shared again"), in the words of `roster_changes` and the school pages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from roster_pipeline.modeling.record_keys import RECORD_KEYS, record_id
from roster_pipeline.publishing.history import school_sharing
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
    schools: tuple = ()  # over the limit: the district's schools beyond it (schools_beyond), by id

    @property
    def change(self) -> int:
        return self.new - (self.published or 0)


def judge_all(sql: Statements, district_id: str, settings: MassChangeSettings, approved: bool,
              new_school_year: bool = False) -> list[Verdict]:
    """The guard's verdicts on every guarded table, read in the caller's transaction; the per-school
    counts are read once for all of them."""
    per_school: dict[str, dict] = {}
    return [judge(sql, table, district_id, settings, approved, new_school_year, per_school) for table in GUARDED_TABLES]


def judge(sql: Statements, table: str, district_id: str, settings: MassChangeSettings,
          approved: bool, new_school_year: bool = False, per_school: dict[str, dict] | None = None) -> Verdict:
    """The guard's verdict on one table, read in the caller's transaction (a new school year, see
    school_year.py, is not blocked: the year turning changes everything at once). `per_school` caches
    school_changes by table across the tables of one judgement (judge_all)."""
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
        return Verdict(table, None, new, False, f"first publish of the district: {new:,} {table}, not guarded")
    change = new - published
    share = abs(change) / published if published else float(bool(change))
    over = share > settings.share and abs(change) >= settings.min_rows
    what = (f"{table}: {published:,} published, {new:,} now ({change:+,d}, {share:.0%}); "
            f"limit {settings.share:.0%} and {settings.min_rows:,} rows")
    if not over:
        return Verdict(table, published, new, False, f"{what}: within the limit")
    removed = changed_records(sql, table, district_id, PUBLISHED_SCHEMA, BUILD_SCHEMA)
    added = changed_records(sql, table, district_id, BUILD_SCHEMA, PUBLISHED_SCHEMA)
    what += f"; {removed[0]:,} records removed, {added[0]:,} added"
    per_school = {} if per_school is None else per_school
    sharing = None
    for other in GUARDED_TABLES:
        if other not in per_school:
            sharing = school_sharing(sql, district_id) if sharing is None else sharing
            per_school[other] = school_changes(sql, other, district_id, sharing)
    named = schools_beyond(per_school, settings)
    where = concentration(per_school[table], table, named)
    if where:
        what += f". {where}"
    if approved or new_school_year:
        why = "approved for this run" if approved else "published as a new school year"
        return Verdict(table, published, new, False, f"{what}: above the limit, {why}", removed, added, named)
    return Verdict(table, published, new, True,
                   f"{what}: publish blocked. If the change is real, approve it with "
                   f"`roster-pipeline sync --district {district_id} --accept-mass-change`.", removed, added, named)


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



@dataclass(frozen=True)
class SchoolChange:
    """One school's records of one table: published (before), checked build (after), and what moved."""

    name: str
    before: int
    after: int
    removed: int
    added: int
    sharing: str | None = None  # the school is no longer shared, or shared again (history.school_sharing)

    @property
    def moved(self) -> int:
        return max(self.removed, self.added)

    @property
    def share(self) -> float:
        """Against the larger of before and after, so a school that comes back (0 → 573) moved 100 %, not 57,300 %."""
        return self.moved / max(self.before, self.after, 1)

    def beyond(self, settings: MassChangeSettings) -> bool:
        """Moved like a table that the guard blocks: more than the share *and* at least the rows."""
        return self.share > settings.share and self.moved >= settings.min_rows

    def sentence(self, table: str) -> str:
        if self.removed and not self.added:
            counts = f"{self.removed:,} of {self.before:,} {table} removed"
        elif self.added and not self.removed:
            counts = f"{self.added:,} {table} added to {self.before:,}"
        else:
            counts = f"{self.removed:,} of {self.before:,} {table} removed, {self.added:,} added"
        return f"{self.name}: {counts} ({self.share:.0%}){f', {self.sharing}' if self.sharing else ''}"


def school_changes(sql: Statements, table: str, district_id: str, sharing: dict[str, str] | None = None) -> dict:
    """school id → SchoolChange for every school with records of `table` before or after (empty for a
    table without schools); `sharing`: history.school_sharing, read here when not given."""
    if "school_id" not in table_columns(sql, BUILD_SCHEMA, table):
        return {}
    keys = ", ".join(["school_id", *RECORD_KEYS[table]])
    mine = f"district_id = {placeholder(sql.dialect, 'd')}"

    def counted(query: str) -> dict:
        return dict(sql.execute(f"select school_id, count(*) from ({query}) as rows group by school_id",
                                {"d": district_id}).fetchall())

    def gone(before: str, after: str) -> dict:
        return counted(f"select {keys} from {before}.{table} where {mine} except select {keys} from {after}.{table} "
                       f"where {mine}")

    before, after = (counted(f"select school_id from {schema}.{table} where {mine}")
                     for schema in (PUBLISHED_SCHEMA, BUILD_SCHEMA))
    removed, added = gone(PUBLISHED_SCHEMA, BUILD_SCHEMA), gone(BUILD_SCHEMA, PUBLISHED_SCHEMA)
    names = {}  # the published name of a school that left, else the new one
    for schema in (BUILD_SCHEMA, PUBLISHED_SCHEMA):
        if table_columns(sql, schema, "schools"):
            names.update(sql.execute(f"select school_id, name from {schema}.schools where {mine}",
                                     {"d": district_id}).fetchall())
    sharing = school_sharing(sql, district_id) if sharing is None else sharing
    return {school: SchoolChange(names.get(school) or school or "(no school)", before.get(school, 0),
                                 after.get(school, 0), removed.get(school, 0), added.get(school, 0),
                                 sharing.get(school))
            for school in set(before) | set(after)}


def schools_beyond(changes: dict[str, dict], settings: MassChangeSettings) -> tuple:
    """The schools that moved beyond the guard's limit in any table (`changes`: table → school_changes),
    the most moved first: every table's sentence names these same schools, so they never contradict."""
    moved: dict = {}
    for per_school in changes.values():
        for school, change in per_school.items():
            if change.beyond(settings):
                moved[school] = 0
    for per_school in changes.values():
        for school, change in per_school.items():
            if school in moved:
                moved[school] += change.moved
    return tuple(sorted(moved, key=lambda school: (-moved[school], str(school))))


def _percent_bound(share: float) -> str:
    """The true bound of `share`, never rounded down: "did not change", "less than 1 %", "at most 13 %"."""
    if share == 0:
        return "did not change"
    if share < 0.01:
        return "changed by less than 1 %"
    return f"changed by at most {math.ceil(share * 100 - 1e-9)} %"


def concentration(per_school: dict, table: str, named: tuple) -> str:
    """Where a mass change is, per school, in one sentence: "Lincoln High: 480 of 520 students removed
    (92%); Adams Elementary: 40 of 40 students removed (100%); the 10 other schools changed by less
    than 1 %; a change of these schools' sharing or of their SIS export is the likely cause." `named`
    are the district's schools beyond the limit (schools_beyond); each is named where its records moved."""
    if not per_school or not any(change.moved for change in per_school.values()):
        return ""
    here = [school for school in named if school in per_school and per_school[school].moved]
    shown, unshown = here[:IDS_SHOWN], here[IDS_SHOWN:]
    parts = [per_school[school].sentence(table) for school in shown]
    if unshown:
        parts.append(f"{len(unshown)} more schools beyond the limit, by up to "
                     f"{max(per_school[school].share for school in unshown):.0%}")
    others = [change for school, change in per_school.items() if school not in here]
    if others:
        most = max(change.share for change in others)
        which = "other " if here else ""
        parts.append(f"{'no school moved beyond the limit: ' if not here else ''}the {len(others)} {which}"
                     f"school{'s' if len(others) != 1 else ''} {_percent_bound(most)}")
        total = sum(change.moved for change in per_school.values())
        if here and sum(per_school[school].moved for school in here) >= 0.8 * total and most < 0.05:
            export = "" if all(per_school[school].sharing for school in here) else (  # their sharing did change
                " or of its SIS export" if len(here) == 1 else " or of their SIS export")
            parts.append(f"a change of the school's sharing{export} is the likely cause" if len(here) == 1
                         else f"a change of these schools' sharing{export} is the likely cause")
    return "; ".join(parts)
