"""A new school year: at rollover every section, many enrollments and many students change at once.

That is the year turning, not a broken export, so the mass-change guard lets it through (a mass
change inside a school year still blocks), and the publish records why. A publish starts a new
school year when
- the new data's sections all belong to terms that start after every term of the published
  version (each publish records the latest term start of its sections in `roster.publishes`), or
- ROSTER_SCHOOL_YEAR_START (month-day, default 07-01) has passed since the district's last publish.
A district's first publish is not one (the guard exempts it anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from roster_pipeline.warehouse.connection import Statements, placeholder, table_columns
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA, PUBLISHED_SCHEMA, STAGING_SCHEMA


@dataclass(frozen=True)
class SchoolYear:
    """What a publish knows about its school year."""

    latest_term_start: date | None  # the latest start of the terms of the district's sections now
    new_year: str | None = None  # why this publish starts a new school year (None: it does not)


def term_starts(sql: Statements, district_id: str) -> list[date]:
    """Start dates of the terms the district's sections (all of them, kept or not) belong to."""
    if not table_columns(sql, BUILD_SCHEMA, "int_sections__classified"):
        return []
    rows = sql.execute(
        f"select distinct t.start_date from {BUILD_SCHEMA}.int_sections__classified s "
        f"join {STAGING_SCHEMA}.stg_clever__terms t on t.district_id = s.district_id and t.term_id = s.term_id "
        f"where s.district_id = {placeholder(sql.dialect, 'd')}", {"d": district_id}).fetchall()
    starts = []
    for (text,) in rows:
        try:
            starts.append(date.fromisoformat(str(text)[:10]))
        except (TypeError, ValueError):  # a term without a readable start date says nothing about the year
            continue
    return starts


def last_year_start(year_start: tuple[int, int], now: datetime) -> datetime:
    """The latest ROSTER_SCHOOL_YEAR_START at or before `now` (midnight UTC)."""
    month, day = year_start
    boundary = datetime(now.year, month, day, tzinfo=timezone.utc)
    return boundary if boundary <= now else boundary.replace(year=now.year - 1)


def school_year(sql: Statements, district_id: str, year_start: tuple[int, int], now: datetime) -> SchoolYear:
    """This publish's school year, read in the publish's transaction (before it writes)."""
    starts = term_starts(sql, district_id)
    latest = max(starts) if starts else None
    if "latest_term_start" not in table_columns(sql, PUBLISHED_SCHEMA, "publishes"):
        last = None
    else:
        last = sql.execute(f"select published_at, latest_term_start from {PUBLISHED_SCHEMA}.publishes "
                           f"where district_id = {placeholder(sql.dialect, 'd')} order by published_at desc limit 1",
                           {"d": district_id}).fetchone()
    if last is None:
        return SchoolYear(latest)
    published_at, previous_latest = last
    published_at = published_at if published_at.tzinfo else published_at.replace(tzinfo=timezone.utc)
    if starts and previous_latest is not None and min(starts) > previous_latest:
        return SchoolYear(latest, f"new school year: every section's term starts on or after {min(starts)}, after "
                                  f"every term of the published roster (the latest began {previous_latest})")
    boundary = last_year_start(year_start, now)
    if published_at < boundary:
        return SchoolYear(latest, f"new school year: {boundary:%m-%d} (ROSTER_SCHOOL_YEAR_START) has passed since the "
                                  f"last publish on {published_at:%Y-%m-%d}")
    return SchoolYear(latest)


def per_school_counts(sql: Statements, district_id: str, limit: int = 20) -> str:
    """The new year's roster by school, in counts: "Lincoln Elementary 293 students, 20 sections; …"."""
    rows = sql.execute(f"select name, students, sections from {BUILD_SCHEMA}.school_roster_summary "
                       f"where district_id = {placeholder(sql.dialect, 'd')} order by students desc, name limit {limit + 1}",
                       {"d": district_id}).fetchall()
    shown = "; ".join(f"{name} {students} students, {sections} sections" for name, students, sections in rows[:limit])
    return shown + ("; …" if len(rows) > limit else "")
