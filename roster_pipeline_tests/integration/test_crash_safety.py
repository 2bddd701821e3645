"""A sync killed at any moment leaves the published roster whole, and the next sync finishes the job.

Issue 20, section 5. One sandbox district of 20,000 students is followed by two installations:
"clean" syncs each day once, in this process; "killed" runs the real `roster-pipeline sync`
command in its own process group and SIGKILLs it (no handler, no cleanup, as the OOM killer or a
lost node would) at chosen moments of a day's sync: while Clever is paged, while dlt loads, while
the SQL models are built, while the pandera checks run, inside the publish transaction, and while
the analysts' DuckDB copy is written; on the next day, while dlt loads an incremental (events)
sync. The moments are found by watching the killed run's Dagster event log and placing the kill
inside the window the clean installation's run of the same day measured for that phase; a load
is killed 0.1 s after dlt's normalized package appears (the loader's input). The `landed` lines
printed say where each kill really happened. Postgres (the dlt load and the publish) runs with
ROSTER_TEST_POSTGRES_CRASHES=1: with it the file takes about 5 minutes instead of 3.

After every kill, every table of schema `roster` (published marts, `<table>_history`,
`roster_changes`, `publishes`) must equal, all together, either its state before the killed
sync (the old version) or the clean installation's (the new one), never a mix. The kills of a day
follow one another without any cleanup in between (stale dlt packages, the lock file, a half-built
`roster_build`, the killed Dagster run left STARTED in the instance holding its pool slot), and
then one plain sync must succeed and leave exactly what the clean installation has. A kill after
the publish committed leaves the new version; the sync after it publishes again (nothing changed),
so the clean installation syncs once more then too, and both keep the same number of publishes.

Publish times and run ids differ between installations, so times are compared as "which publish".
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg2
import pytest

from roster_pipeline.cli.dagster_home import LOCAL_INSTANCE_YAML
from roster_pipeline.cli.sync import sync
from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.server import start_sandbox
from roster_pipeline_tests.fixtures.services import CLEVER_VARS

STUDENTS = 20_000
SEED = 23
SHARE = 0.01  # of the records a school day changes
# Columns that say when (not what): a publish's instant, a run's id, what started it.
WHEN = {"published_at", "valid_from", "valid_to", "run_id", "trigger", "synced_at", "loaded_at"}
RUN_SECONDS = 180  # a sync that has not reached its kill point (or ended) by then is stuck
# DuckDB takes about 3 minutes of the suite; Postgres (fewer kills, about 1.7 minutes more) when asked for.
WAREHOUSES = ["duckdb", pytest.param("postgres", marks=pytest.mark.skipif(
    os.environ.get("ROSTER_TEST_POSTGRES_CRASHES") != "1",
    reason="ROSTER_TEST_POSTGRES_CRASHES=1 runs the Postgres kills too (the suite's time budget)"))]


# ---- what a warehouse holds ---------------------------------------------------------------------

def connect(url: str):
    """A connection to an installation's warehouse (DuckDB read only: nobody else has it open now)."""
    if url.startswith("duckdb"):
        import duckdb

        return duckdb.connect(url.removeprefix("duckdb:///"), read_only=True)
    return psycopg2.connect(url)


def contents(url: str) -> dict[str, Counter]:
    """Every table of schema `roster` as a multiset of rows, times replaced by the number of the publish they are."""
    conn = connect(url)
    try:
        cursor = conn.cursor()

        def rows(sql: str) -> list[tuple]:
            cursor.execute(sql)
            return cursor.fetchall()

        number = {r[0]: n for n, r in enumerate(rows("select distinct published_at from roster.publishes order by 1"))}
        columns: dict[str, list[str]] = {}
        for table, column in rows("select table_name, column_name from information_schema.columns "
                                  "where table_schema = 'roster' order by table_name, ordinal_position"):
            columns.setdefault(table, []).append(column)
        return {table: Counter(tuple(number.get(v, "?") if n in WHEN and v is not None else v for n, v in zip(names, row))
                               for row in rows(f"select {', '.join(names)} from roster.{table}"))
                for table, names in columns.items()}
    finally:
        conn.close()


def differences(got: dict, expected: dict) -> list[str]:
    return sorted(t for t in got.keys() | expected.keys() if got.get(t) != expected.get(t))


# ---- Dagster event logs: where a run is --------------------------------------------------------

def open_instance(home: Path):
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def kind(entry) -> str | None:
    return entry.dagster_event.event_type_value if entry.dagster_event else None


def materialized(entry) -> str | None:
    if kind(entry) != "ASSET_MATERIALIZATION":
        return None
    return entry.dagster_event.event_specific_data.materialization.asset_key.to_user_string()


# Moments of a district_sync run, each a test on one event-log entry.
MOMENTS = {
    "raw step started": lambda e: kind(e) == "STEP_START" and e.step_key == "clever_raw",
    "a collection paged": lambda e: e.step_key == "clever_raw" and ": done," in (e.user_message or ""),
    "events read": lambda e: "Clever events up to" in (e.user_message or ""),
    "raw loaded": lambda e: kind(e) == "ASSET_MATERIALIZATION" and e.step_key == "clever_raw",
    "models started": lambda e: e.step_key == "roster_models" and " build" in (e.user_message or ""),
    # The roster engine's phase lines (engine/roster.py), forwarded to the run's log as they happen.
    "models built": lambda e: e.step_key == "roster_models" and "SQL models built in" in (e.user_message or ""),
    "contracts checked": lambda e: e.step_key == "roster_models" and "contracts checked in" in (e.user_message or ""),
    "publish committed": lambda e: e.step_key == "roster_models" and ": published in" in (e.user_message or ""),
    "analysts' copy written": lambda e: "analysts' copy written in" in (e.user_message or ""),
    "published": lambda e: materialized(e) == "roster/published",
}


def times(entries, moment: str) -> list[float]:
    return [e.timestamp for e in entries if MOMENTS[moment](e)]


NORMALIZED = "dlt package normalized"  # not an event: a package in dlt's load/normalized folder (the loader's input)


@dataclass
class KillPoint:
    """Kill `delay` seconds after the killed run's `anchor`, the delay placing the kill at
    `fraction` of the clean run's window (`start`, `end`) for the same phase; or, anchored on
    dlt's normalized package (the load begins), `window` seconds after it appears."""

    phase: str
    anchor: str
    window: object  # clean run's entries -> (start, end) epoch seconds; or seconds after NORMALIZED
    fraction: float = 0.5

    def delay(self, clean_entries) -> float:
        if self.anchor == NORMALIZED:
            return self.window
        anchor = times(clean_entries, self.anchor)[0]
        start, end = self.window(clean_entries)
        return max(0.0, start + self.fraction * (end - start) - anchor)


def first(moment):
    return lambda entries: times(entries, moment)[0]


def publish_window(entries) -> tuple[float, float]:
    """The publish transaction: its seconds (the run's metadata) before the engine said it committed."""
    entry = next(e for e in entries if MOMENTS["published"](e))
    seconds = entry.dagster_event.event_specific_data.materialization.metadata["publish_seconds"].value
    end = times(entries, "publish committed")[0]
    return end - seconds, end


FULL_REFRESH_POINTS = [
    KillPoint("paging Clever", "raw step started",
              lambda es: (times(es, "a collection paged")[0], times(es, "a collection paged")[-1]), 0.4),
    KillPoint("dlt load", NORMALIZED, 0.1),
    KillPoint("SQL models", "models started", lambda es: (first("models started")(es), first("models built")(es))),
    KillPoint("pandera checks", "models started",
              lambda es: (first("models built")(es), first("contracts checked")(es))),
    KillPoint("publish transaction", "contracts checked", publish_window),
]
ANALYST_COPY_POINT = KillPoint("analysts' copy", "publish committed",
                               lambda es: (first("publish committed")(es), first("analysts' copy written")(es)))
INCREMENTAL_POINTS = [KillPoint("dlt load (events)", NORMALIZED, 0.1)]
# Postgres (the file's time budget): its own dlt destination and publish transaction.
POSTGRES_POINTS = [point for point in FULL_REFRESH_POINTS if point.phase in ("dlt load", "publish transaction")]


# ---- the two installations -----------------------------------------------------------------------

class Installation:
    """One installation: its data folder, Dagster instance and warehouse."""

    def __init__(self, root: Path, server, warehouse_url: str | None) -> None:
        self.data, self.server = root, server
        self.home = root / "dagster_home"
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "dagster.yaml").write_text(LOCAL_INSTANCE_YAML)
        self.url = warehouse_url or f"duckdb:///{root / 'warehouse.duckdb'}"
        self.env = {**{k: v for k, v in os.environ.items() if k not in CLEVER_VARS}, **server.env(),
                    "ROSTER_DATA_DIR": str(root), "DAGSTER_HOME": str(self.home), "ROSTER_WAREHOUSE": self.url}

    def contents(self) -> dict[str, list[tuple]]:
        return contents(self.url)

    def last_run_entries(self):
        with open_instance(self.home) as instance:
            run = instance.get_runs(limit=1)[0]
            return instance.all_logs(run.run_id)


class Clean(Installation):
    """Syncs in this process (as the other integration tests do), never interrupted."""

    def sync(self, monkeypatch, *options: str) -> None:
        with monkeypatch.context() as patch:
            for name in CLEVER_VARS:
                patch.delenv(name, raising=False)
            for name, value in self.env.items():
                patch.setenv(name, value)
            out = io.StringIO()
            assert sync(out=out, incremental="--incremental" in options, accept_mass_change=True) == 0, out.getvalue()


class Killed(Installation):
    """Runs `roster-pipeline sync` as its own process group, to completion or until killed."""

    def start(self, *options: str) -> subprocess.Popen:
        self.log = (self.data / f"sync-{time.monotonic_ns()}.log").open("w")
        return subprocess.Popen([sys.executable, "-m", "roster_pipeline.cli", "sync", "--accept-mass-change", *options],
                                env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def pending(self) -> list[str]:
        """dlt's packages not loaded yet (extracted, or normalized: the loader's input)."""
        return [f"{stage}/{p.name}" for stage in ("normalize/extracted", "load/normalized")
                for p in (self.data / "dlt").glob(f"clever_*/{stage}/*")]

    def output(self) -> str:
        return Path(self.log.name).read_text()

    def sync(self, *options: str, process: subprocess.Popen | None = None) -> None:
        process = process or self.start(*options)
        assert process.wait(timeout=RUN_SECONDS) == 0, self.output()[-4000:]

    def kill_at(self, point: KillPoint, clean_entries, *options: str) -> str:
        """SIGKILL a sync at `point`; where it was then (its last event, dlt's pending packages)."""
        delay = point.delay(clean_entries)
        with open_instance(self.home) as instance:
            known = {r.dagster_run.run_id for r in instance.get_run_records()}
            process = self.start(*options)
            stale = set(self.pending())  # a killed run's packages, until this run discards them
            deadline, run_id, cursor, anchored_at, entries = time.monotonic() + RUN_SECONDS, None, None, None, []
            try:
                while True:
                    assert process.poll() is None, f"{point.phase}: the sync ended before its kill point\n" + self.output()[-4000:]
                    assert time.monotonic() < deadline, f"{point.phase}: never reached {point.anchor}\n" + self.output()[-4000:]
                    if run_id is None:
                        new = [r.dagster_run.run_id for r in instance.get_run_records(limit=3) if r.dagster_run.run_id not in known]
                        run_id = new[0] if new else None
                    if point.anchor == NORMALIZED:
                        loading = [p for p in self.pending() if p.startswith("load/") and p not in stale]
                        anchored_at = time.time() if loading else None
                    elif run_id is not None:
                        connection = instance.get_records_for_run(run_id, cursor=cursor)
                        cursor = connection.cursor
                        entries += [r.event_log_entry for r in connection.records]
                        anchored_at = next((e.timestamp for e in entries if MOMENTS[point.anchor](e)), None)
                    if anchored_at is not None:
                        break
                    time.sleep(0.02)
                time.sleep(max(0.0, anchored_at + delay - time.time()))
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            assert process.returncode == -signal.SIGKILL, f"{point.phase}: the sync ended first\n" + self.output()[-4000:]
            entries = instance.all_logs(run_id)
            status = instance.get_run_by_id(run_id).status.value
        last = next(e for e in reversed(entries) if e.dagster_event is None or kind(e) != "LOGS_CAPTURED")
        pending = self.pending()
        if point.anchor == NORMALIZED:  # the kill interrupted dlt's load, not anything after it
            assert pending, f"{point.phase}: dlt had finished loading before the kill"
        return (f"{point.phase}: killed {delay:.2f}s after '{point.anchor}'; run {status}, last event "
                f"{kind(last) or 'log'} {(last.user_message or '')[:70]!r}; dlt pending: {pending or 'none'}")


def kill_through_a_day(killed: Killed, clean: Clean, monkeypatch, points: list[KillPoint], *options: str) -> list[str]:
    """Kill `killed`'s sync of the day at each point in turn, then sync it once; it must end where `clean` is."""
    clean.sync(monkeypatch, *options)
    clean_entries = clean.last_run_entries()
    new = clean.contents()
    landed, now = [], killed.contents()
    for point in points:
        old = now
        landed.append(killed.kill_at(point, clean_entries, *options))
        now = killed.contents()
        versions = [name for name, version in (("old", old), ("new", new)) if now == version]
        assert versions, (f"{landed[-1]}\na mix of versions: tables unlike the old one "
                          f"{differences(now, old)}, unlike the new one {differences(now, new)}")
        if versions == ["new"]:  # the publish had committed: the next sync publishes (the same) again
            clean.sync(monkeypatch, *options)
            new = clean.contents()
        landed[-1] += f" -> {versions[0]} version"
    killed.sync(*options)
    unlike = differences(killed.contents(), new)
    assert not unlike, f"after the kills, the next sync differs from a clean one in {unlike}"
    assert not list(killed.data.glob(".*.tmp*")), "a killed analysts' copy was left behind"
    return landed


@pytest.mark.parametrize("twin_warehouses", WAREHOUSES, indirect=True)
def test_a_sync_killed_at_any_moment_leaves_one_whole_version_and_the_next_sync_finishes_it(
        tmp_path, monkeypatch, twin_warehouses):
    server = start_sandbox(SandboxData(seed=SEED, districts=1, students=STUDENTS))
    try:
        killed = Killed(tmp_path / "killed", server, twin_warehouses[0])
        clean = Clean(tmp_path / "clean", server, twin_warehouses[1])
        started = time.monotonic()
        first_sync = killed.start()  # day 0, both installations at once (no timings needed yet)
        clean.sync(monkeypatch)
        killed.sync(process=first_sync)
        assert killed.contents() == clean.contents()  # the comparison holds between two clean installations

        httpx.post(f"{server.base_url}/sandbox/advance-day", json={"share": SHARE}, timeout=120).raise_for_status()
        if twin_warehouses[0] is not None:
            landed = kill_through_a_day(killed, clean, monkeypatch, POSTGRES_POINTS)
        else:
            landed = kill_through_a_day(killed, clean, monkeypatch, [*FULL_REFRESH_POINTS, ANALYST_COPY_POINT])
            httpx.post(f"{server.base_url}/sandbox/advance-day", json={"share": SHARE}, timeout=120).raise_for_status()
            landed += kill_through_a_day(killed, clean, monkeypatch, INCREMENTAL_POINTS, "--incremental")
        print("\n".join(["", *landed, f"{time.monotonic() - started:.0f}s"]))
    finally:
        server.shutdown()
        server.server_close()
