"""An incremental run and a full refresh of the same data publish the same roster and the same history.

Two installations follow one sandbox district through seeded random school days: one syncs
each day in full, the other from Clever's events (an incremental build of the changed records;
a school is unshared and shared again, a teacher takes a colleague's email;
on the last day the rules change, which the incremental build cannot bound, so it is full and
says why). After every day their roster tables are compared row for row; at the end, their
history (versions with their validity in days), change log and publish counts too. Publish
times differ between the installations, so times are compared as "which day's publish".
"""

from __future__ import annotations

import random

import httpx
import pytest

from roster_pipeline.engine.district import DistrictSync
from roster_pipeline.modeling.rules import DEFAULT_RULES_PATH
from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.server import start_sandbox
from roster_pipeline_tests.fixtures.engine import sync_results
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS, point_at, warehouse_queries, warehouse_query

DAYS = 6
SEED = 19


def ordered(rows) -> list[tuple]:
    return sorted(rows, key=lambda row: tuple("" if v is None else str(v) for v in row))


# Columns that say when (not what): a publish's instant, a run's id, what started it.
WHEN = {"published_at", "valid_from", "valid_to", "run_id", "trigger", "synced_at", "loaded_at"}


def contents(days: list) -> dict[str, list[tuple]]:
    """Every roster table, its times replaced by the number of the day whose publish they are."""
    day_of = {moment: n for n, moment in enumerate(days)}
    found, names = {}, {}
    with warehouse_queries() as query:
        for table, column in query("select table_name, column_name from information_schema.columns "
                                   "where table_schema = 'roster' order by table_name, ordinal_position"):
            names.setdefault(table, []).append(column)
        for table, columns in names.items():
            rows = query(f"select {', '.join(columns)} from roster.{table}")
            found[table] = ordered(tuple(day_of.get(v, "?") if n in WHEN and v is not None else v
                                         for n, v in zip(columns, row)) for row in rows)
    return found


class Installation:
    """One installation's environment (data folder, warehouse), switched to on demand."""

    def __init__(self, name: str, tmp_path, monkeypatch, warehouse: str | None) -> None:
        self.data, self.monkeypatch, self.warehouse = tmp_path / name, monkeypatch, warehouse
        self.publishes: list = []

    def __enter__(self) -> Installation:
        self.monkeypatch.setenv("ROSTER_DATA_DIR", str(self.data))
        if self.warehouse:
            self.monkeypatch.setenv("ROSTER_WAREHOUSE", self.warehouse)
        return self

    def __exit__(self, *_) -> None:
        pass

    def sync(self, **options) -> DistrictSync:
        (done,) = sync_results(**options).values()
        assert done.published, done.roster.failure
        self.publishes.append(warehouse_query("select max(published_at) from roster.publishes")[0][0])
        return done


@pytest.mark.parametrize("twin_warehouses", WAREHOUSE_KINDS, indirect=True)
def test_incremental_days_publish_exactly_what_full_refreshes_publish(tmp_path, monkeypatch, twin_warehouses):
    server = start_sandbox(SandboxData(seed=SEED, districts=1, students=300))
    try:
        point_at(server, tmp_path, monkeypatch)
        monkeypatch.delenv("ROSTER_WAREHOUSE", raising=False)
        full, incremental = (Installation(name, tmp_path, monkeypatch, url)
                             for name, url in zip(("full", "incremental"), twin_warehouses))
        for installation in (full, incremental):
            with installation:
                installation.sync()
        with full:
            school = warehouse_query("select school_id from roster.school_roster_summary order by students limit 1")[0][0]
        pick = random.Random(SEED)
        shared_emails_seen = False
        for day in range(1, DAYS + 1):
            share = pick.choice([0.002, 0.01, 0.02, 0.04])
            httpx.post(f"{server.base_url}/sandbox/advance-day", json={"share": share}, timeout=60).raise_for_status()
            if day in (2, 4):  # a district admin stops sharing a school, then shares it again
                httpx.post(f"{server.base_url}/sandbox/share-school", json={"school": school, "shared": day == 4},
                           timeout=60).raise_for_status()
            if day == DAYS:  # the rules change: science sections are kept from now on
                rules = tmp_path / "rules.toml"
                rules.write_text(DEFAULT_RULES_PATH.read_text().replace(
                    'keep = ["math", "ela"]', 'keep = ["math", "ela", "science"]'))
                monkeypatch.setenv("ROSTER_RULES", str(rules))
            with full:
                full.sync(accept_mass_change=True)
                expected = {t: rows for t, rows in contents(full.publishes).items() if not t.endswith("_history")}
            with incremental:
                done = incremental.sync(incremental=True, accept_mass_change=True)
                got = {t: rows for t, rows in contents(incremental.publishes).items() if not t.endswith("_history")}
                assert done.raw.kind == "incremental" and done.raw.events > 0, (day, done.raw.reason)
                if day < DAYS:
                    assert done.roster.incremental, (day, done.roster.build_reason)
                else:  # a build the changed records cannot bound is full, and says why
                    assert not done.roster.incremental
                    assert "the SQL models or the district's rules changed" in done.roster.build_reason
            shared_emails_seen |= any("TEACHER_EMAIL_DUPLICATE" in row for row in expected["rejected_records"])
            assert got.keys() == expected.keys(), day
            for table in expected:
                assert got[table] == expected[table], (day, share, table)

        with full:
            expected = contents(full.publishes)
        with incremental:
            got = contents(incremental.publishes)
        history = [t for t in expected if t.endswith("_history")] + ["roster_changes", "publishes"]
        assert len(history) >= 9
        for table in history:
            assert got[table] == expected[table], table
        assert shared_emails_seen  # the days covered a teacher taking a colleague's email
        assert len(expected["publishes"]) == DAYS + 1
        assert sum(1 for row in expected["roster_changes"]) > DAYS  # the days really changed the roster
    finally:
        server.shutdown()
        server.server_close()
