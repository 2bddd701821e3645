"""The warehouse remembers: "as of" any publish returns that day's roster exactly, and
roster_changes lists exactly the differences between consecutive publishes.

Sandbox school days (withdrawals, enrollments, email changes, moved sections, with their Clever
events) are synced alternately in full and incrementally, on DuckDB and on Postgres.
"""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.server import start_sandbox
from roster_pipeline_tests.fixtures.engine import sync
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS, point_at, warehouse_queries, warehouse_query

# Each table with history, its record key, and the entity roster_changes names (None: not detailed).
HISTORY = {"schools": (["school_id"], "school"), "students": (["student_id"], "student"),
           "teachers": (["teacher_id"], "teacher"), "sections": (["section_id"], "section"),
           "enrollments": (["section_id", "student_id"], "enrollment"),
           "section_teachers": (["section_id", "teacher_id"], "section_teacher"),
           "admins": (["user_id", "role", "school_id"], "admin"), "demographics": (["student_id"], None)}


class SchoolDays:
    """A one-district sandbox's controls: advance a school day, change a school's sharing."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def __call__(self, share: float = 0.03) -> None:
        httpx.post(f"{self.base_url}/sandbox/advance-day", json={"share": share}, timeout=60).raise_for_status()

    def share_school(self, school_id: str, shared: bool) -> int:
        reply = httpx.post(f"{self.base_url}/sandbox/share-school", json={"school": school_id, "shared": shared},
                           timeout=60).raise_for_status()
        return sum(reply.json()["records"].values())


@pytest.fixture
def school_days(tmp_path, monkeypatch, warehouse_env):
    """A one-district sandbox with its controls, and an installation pointed at it."""
    server = start_sandbox(SandboxData(seed=11, districts=1, students=500))
    point_at(server, tmp_path, monkeypatch)
    yield SchoolDays(server.base_url)
    server.shutdown()
    server.server_close()


def columns(table: str, query=warehouse_query) -> list[str]:
    return [r[0] for r in query(
        "select column_name from information_schema.columns where table_schema = 'roster' and table_name = ? "
        "order by ordinal_position", [table])]


def ordered(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=lambda row: tuple("" if v is None else str(v) for v in row))


def current(tables=tuple(HISTORY), moment=None) -> dict[str, list[tuple]]:
    """Each table's current rows, or (with `moment`) its rows as of then by the documented as-of query;
    in one transaction (a DuckDB open per query would cost more than the queries)."""
    found = {}
    with warehouse_queries() as query:
        for table in tables:
            names = ", ".join(columns(table, query))
            found[table] = ordered(query(f"select {names} from roster.{table}") if moment is None else query(
                f"select {names} from roster.{table}_history where valid_from <= ? and (valid_to is null or valid_to > ?)",
                [moment, moment]))
    return found


def last_publish():
    return warehouse_query("select max(published_at) from roster.publishes")[0][0]


def expected_changes(before: dict, after: dict) -> list[tuple[str, str, str]]:
    """(entity, record_id, change) for every record added, removed or changed between two days' tables."""
    found = []
    for table, (key, entity) in HISTORY.items():
        if entity is None:
            continue
        names = columns(table)

        def by_key(rows):
            return {":".join("" if row[names.index(k)] is None else str(row[names.index(k)]) for k in key): row
                    for row in rows}

        old, new = by_key(before[table]), by_key(after[table])
        found += [(entity, k, "added") for k in new.keys() - old.keys()]
        found += [(entity, k, "removed") for k in old.keys() - new.keys()]
        found += [(entity, k, "changed") for k in new.keys() & old.keys() if new[k] != old[k]]
    return sorted(found)


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_as_of_each_publish_is_that_days_roster_and_the_change_log_is_exactly_the_difference(school_days):
    days = []
    for day in range(6):  # the first sync, then five school days: full and incremental alternately
        if day:
            school_days()
        out = io.StringIO()
        assert sync(incremental=day % 2 == 1, out=out) == 0, out.getvalue()
        days.append((last_publish(), current()))

    assert len({moment for moment, _ in days}) == 6
    for moment, tables in days:
        as_of = current(moment=moment)
        for table in HISTORY:
            assert as_of[table] == tables[table], (table, moment)

    first = days[0][0]
    assert warehouse_query("select count(*) from roster.roster_changes where published_at = ?", [first]) == [(0,)]
    changed_days = 0
    for (_, before), (moment, after) in zip(days, days[1:]):
        logged = sorted(warehouse_query("select entity, record_id, change from roster.roster_changes "
                                        "where published_at = ?", [moment]))
        assert logged == expected_changes(before, after), moment
        changed_days += bool(logged)
    assert changed_days >= 4  # the days really changed the roster

    # Plain sentences, no personal values; demographics are counted, never detailed.
    details = dict(((e, c), d) for e, c, d in warehouse_query(
        "select entity, change, min(detail) from roster.roster_changes group by entity, change"))
    assert details.get(("student", "removed")) == "withdrawn" and details.get(("enrollment", "added")) == "joined the section"
    assert not warehouse_query("select * from roster.roster_changes where entity not in "
                               "('school', 'student', 'teacher', 'section', 'enrollment', 'section_teacher', 'admin')")
    emails = {r[0] for r in warehouse_query("select email from roster.teachers_history where email is not null")}
    assert not [d for (d,) in warehouse_query("select detail from roster.roster_changes") if any(e in d for e in emails)]
    publishes = warehouse_query("select students_added, students_removed, students_changed, demographics_added, "
                                "demographics_removed from roster.publishes order by published_at")
    assert len(publishes) == 6 and publishes[0][0] == len(days[0][1]["students"]) and publishes[0][1] == 0
    assert warehouse_query("select max(published_at) from roster.districts") == [(days[-1][0],)]


def test_a_blocked_publish_writes_no_history_and_its_approval_records_the_change_once(school_days, monkeypatch):
    out = io.StringIO()
    assert sync(out=out) == 0, out.getvalue()

    def written() -> tuple:
        return tuple(warehouse_query(f"select count(*) from roster.{t}")[0][0]
                     for t in ("students_history", "enrollments_history", "roster_changes", "publishes"))

    before, tables_before = written(), current()
    monkeypatch.setenv("ROSTER_MASS_CHANGE_SHARE", "0.001")  # any change is a mass change
    monkeypatch.setenv("ROSTER_MASS_CHANGE_MIN_ROWS", "1")
    school_days(0.05)
    assert sync(out=io.StringIO()) == 1  # blocked by the guard
    assert written() == before

    assert sync(accept_mass_change=True, out=io.StringIO()) == 0
    moment = last_publish()
    logged = sorted(warehouse_query("select entity, record_id, change from roster.roster_changes "
                                    "where published_at = ?", [moment]))
    assert logged and logged == expected_changes(tables_before, current())
    after_approval = written()
    assert after_approval[3] == before[3] + 1
    assert sync(out=io.StringIO()) == 0  # nothing new: a publish that changes nothing writes no version or change
    assert written()[:3] == after_approval[:3]


def test_a_blocked_mass_change_says_which_school_it_is_in(school_days):
    """An unshared school: the guard names the school, its share, the other schools' calm, and the likely cause."""
    assert sync(out=io.StringIO()) == 0
    school_id, name = warehouse_query("select school_id, name from roster.school_roster_summary "
                                      "order by students desc limit 1")[0]
    assert school_days.share_school(school_id, False) > 100
    out = io.StringIO()
    assert sync(out=out) == 1
    said = out.getvalue()
    assert f"{name}: " in said and "students removed" in said and "likely cause" in said, said


def test_changes_reach_the_school_pages_and_history_is_trimmed_and_forgotten(school_days, tmp_path, monkeypatch):
    import duckdb

    from roster_pipeline.cli import main

    assert sync(out=io.StringIO()) == 0
    school_days(0.05)
    assert sync(out=io.StringIO()) == 0
    (district,) = warehouse_query("select district_id from roster.districts")[0]
    moment = last_publish()
    changed = warehouse_query("select school_id, count(*) from roster.roster_changes where published_at = ? "
                              "group by school_id order by 2 desc", [moment])
    school, count = changed[0]

    # The school's page lists the last sync's changes in plain words, with the CSV beside it.
    folder = tmp_path / "data" / "reports" / district
    page = (folder / f"school_{school}.html").read_text()
    # One line per change: a line stands for the roster_changes rows it carries (`records`), and
    # the page, its CSV and the index count the same lines "since the last sync".
    rows = list(csv.DictReader(io.StringIO((folder / f"school_{school}_changes.csv").read_text())))
    assert list(rows[0]) == ["entity", "change", "record_id", "name", "detail", "records", "published_at",
                             "roster_as_of"]
    assert sum(int(row["records"]) for row in rows) == count
    assert "Changes since the last sync" in page and f"{len(rows)} changes since the last sync" in page
    assert "changes since the last sync" in (folder / "index.html").read_text()

    # The analysts' DuckDB file has the history too.
    with duckdb.connect(str(tmp_path / "data" / "warehouse_for_analysts.duckdb"), read_only=True) as analysts:
        assert analysts.execute("select count(*) from roster.students_history").fetchone()[0] > 0

    # Retention: versions replaced more than ROSTER_HISTORY_RETENTION_DAYS ago go at the next publish.
    closed = warehouse_query("select count(*) from roster.students_history where valid_to is not null")[0][0]
    assert closed > 0
    warehouse_query("update roster.students_history set valid_to = valid_to - interval '40 days' where valid_to is not null")
    open_before = warehouse_query("select count(*) from roster.students_history where valid_to is null")[0][0]
    monkeypatch.setenv("ROSTER_HISTORY_RETENTION_DAYS", "30")
    assert sync(out=io.StringIO()) == 0
    assert warehouse_query("select count(*) from roster.students_history where valid_to is not null") == [(0,)]
    assert warehouse_query("select count(*) from roster.students_history where valid_to is null") == [(open_before,)]

    # forget --district removes the district's history, change log and publishes too.
    assert main(["forget", "--district", district, "--yes"]) == 0
    for table in ("students_history", "enrollments_history", "demographics_history", "roster_changes", "publishes"):
        assert warehouse_query(f"select count(*) from roster.{table}") == [(0,)], table
