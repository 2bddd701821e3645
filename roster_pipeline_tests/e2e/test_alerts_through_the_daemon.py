"""Alerts fire for every failed or blocked district run, however it was launched (issue 28, part 1).

The real `dagster-daemon` runs the project's schedule and sensors against a sandbox of three
districts, each blocked by a school that stops being shared, once through each way a district run
starts: the nightly schedule's `district_batch` (launched by the daemon, its districts run in that
run's process), a `roster-pipeline sync` in a terminal of its own, and the events sensor's
incremental batch. The webhook is a real local receiver. Each blocked district gives exactly one
message; a district blocked a second time the same night gives none.

Nothing here calls a sensor function: before this, the district runs of batches and of the CLI
carried no code-location origin, and the daemon never showed them to the alerts sensor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.scheduler.instigation import InstigatorType

from roster_pipeline.cli import main
from roster_pipeline.cli.dagster_home import ensure_dagster_home
from roster_pipeline.defs.constants import DISTRICT_BATCH_JOB, DISTRICT_SYNC_JOB, PARTITION_TAG, TRIGGER_TAG
from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.server import start_sandbox
from roster_pipeline_tests.fixtures.operations import Receiver
from roster_pipeline_tests.fixtures.warehouses import point_at, warehouse_query

PROJECT = Path(__file__).resolve().parents[2]
WAIT = 180  # seconds for one thing the daemon does (a tick, a queued run's start, a batch)


def near_midnight_zone() -> str:
    """A fixed-offset zone where it is about midnight now: the alerts' night (noon to noon) cannot
    turn over while the test runs."""
    hour = datetime.now(timezone.utc).hour
    offset = -hour if hour <= 12 else 24 - hour  # local = UTC + offset ≈ 0h; Etc/GMT's sign is reversed
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def wait_for(what: str, condition, timeout: float = WAIT, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(1)
    tail = log.read_text()[-4000:] if log and log.exists() else ""
    raise AssertionError(f"{what}: not within {timeout:.0f}s\n{tail}")


def alert_ticks(instance) -> list:
    """The alerts sensor's finished ticks, as the daemon recorded them."""
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == "district_alerts":
            return [t for t in instance.get_ticks(state.instigator_origin_id, state.selector_id)
                    if t.status.value in ("SUCCESS", "SKIPPED", "FAILURE")]
    return []


def school_of(district_id: str) -> str:
    return warehouse_query("select school_id from roster.school_roster_summary where district_id = ? "
                           "order by students desc limit 1", [district_id])[0][0]


@pytest.fixture
def districts(tmp_path, monkeypatch):
    server = start_sandbox(SandboxData(seed=28, districts=3, students=150))
    point_at(server, tmp_path, monkeypatch)
    monkeypatch.delenv("ROSTER_WAREHOUSE", raising=False)  # the DuckDB default, in the data folder
    monkeypatch.setenv("ROSTER_MASS_CHANGE_MIN_ROWS", "5")  # a school of a small district is a mass change
    monkeypatch.setenv("ROSTER_SYNC_TIMEZONE", near_midnight_zone())
    monkeypatch.setenv("ROSTER_EVENTS_INTERVAL_SECONDS", "30")
    monkeypatch.setenv("ROSTER_DISCOVERY_INTERVAL_SECONDS", "300")
    monkeypatch.setenv("ROSTER_SYNC_CRON", "0 0 * * *")  # set to the minute after the daemon's start, below
    monkeypatch.setenv("ROSTER_ALERT_WEBHOOK_ALLOW_PRIVATE", "true")  # the receiver is on this machine
    receiver = Receiver()
    monkeypatch.setenv("ROSTER_ALERT_WEBHOOK_URL", receiver.url)
    home = ensure_dagster_home()  # the CLI's local instance, which the daemon shares through DAGSTER_HOME
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    yield server, receiver
    receiver.shutdown()
    receiver.server_close()
    server.shutdown()
    server.server_close()


def start_daemon(log: Path) -> subprocess.Popen:
    def default_signals():  # a process started from a background job may inherit ignored SIGINT/SIGTERM
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    daemon = Path(sys.executable).parent / "dagster-daemon"
    with log.open("wb") as out:
        return subprocess.Popen([str(daemon), "run", "-w", str(PROJECT / "workspace.yaml")], env=dict(os.environ),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=default_signals)


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def cli_sync(district_id: str) -> subprocess.CompletedProcess:
    """`roster-pipeline sync --district X` in a process of its own, as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "roster_pipeline.cli", "sync", "--district", district_id],
                          capture_output=True, text=True, env=dict(os.environ), timeout=300)


def test_every_blocked_district_run_is_alerted_once_however_it_was_launched(districts, tmp_path):
    server, receiver = districts
    control = lambda path, **body: httpx.post(f"{server.base_url}/sandbox/{path}", json=body,  # noqa: E731
                                              timeout=60).raise_for_status()
    assert main(["sync"]) == 0  # every district published once: the baseline the guard compares with
    scheduled, terminal, evented = sorted(d for (d,) in warehouse_query("select district_id from roster.districts"))
    for district_id in (scheduled, terminal):  # only the third district's changes reach the events sensor
        control("events-enabled", district=district_id, enabled=False)
    control("share-school", school=school_of(scheduled), shared=False)

    # The daemon starts early in a minute: its alerts sensor has looked once before the schedule's
    # first tick (at the next minute) launches the nightly batch.
    while 60 - time.time() % 60 < 45:
        time.sleep(1)
    night_at = datetime.now(ZoneInfo(os.environ["ROSTER_SYNC_TIMEZONE"])) + timedelta(minutes=1)
    os.environ["ROSTER_SYNC_CRON"] = f"{night_at.minute} {night_at.hour} * * *"  # once, at the next minute
    log = tmp_path / "daemon.log"
    daemon = start_daemon(log)
    try:
        with DagsterInstance.get() as instance:
            wait_for("the alerts sensor's first tick", lambda: alert_ticks(instance), log=log)

            # 1. The nightly schedule's batch: its first district is blocked, inside the batch's process.
            batch = wait_for("the scheduled batch's end", lambda: [
                r for r in instance.get_runs(RunsFilter(job_name=DISTRICT_BATCH_JOB, tags={TRIGGER_TAG: "schedule"}))
                if r.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)], log=log)[0]
            assert batch.status == DagsterRunStatus.FAILURE  # one district of it was blocked
            wait_for("the scheduled batch's alert", lambda: receiver.bodies, log=log)
            assert [(m["district_id"], m["problem"]) for m in receiver.bodies] == [(scheduled, "blocked")]
            (blocked_run,) = instance.get_runs(RunsFilter(
                job_name=DISTRICT_SYNC_JOB, statuses=[DagsterRunStatus.FAILURE], tags={PARTITION_TAG: scheduled}))
            assert blocked_run.run_id in receiver.bodies[0]["fix"]
            # The UI's job page lists it: it asks for the job's runs with the code location's label.
            label = batch.remote_job_origin.repository_origin.get_label()
            listed = instance.get_runs(RunsFilter(job_name=DISTRICT_SYNC_JOB, tags={".dagster/repository": label}))
            assert blocked_run.run_id in {r.run_id for r in listed}

            # 2. A terminal's sync.
            control("share-school", school=school_of(terminal), shared=False)
            result = cli_sync(terminal)
            assert result.returncode == 1, result.stdout + result.stderr
            wait_for("the CLI sync's alert", lambda: len(receiver.bodies) == 2, log=log)
            assert (receiver.bodies[1]["district_id"], receiver.bodies[1]["problem"]) == (terminal, "blocked")

            # 3. The events sensor's incremental batch.
            control("share-school", school=school_of(evented), shared=False)
            events_batch = wait_for("the events batch's end", lambda: [
                r for r in instance.get_runs(RunsFilter(job_name=DISTRICT_BATCH_JOB, tags={TRIGGER_TAG: "events"}))
                if r.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)], log=log)[0]
            assert events_batch.status == DagsterRunStatus.FAILURE
            wait_for("the events batch's alert", lambda: len(receiver.bodies) == 3, log=log)
            assert (receiver.bodies[2]["district_id"], receiver.bodies[2]["problem"]) == (evented, "blocked")

            # 4. Blocked again the same night: the sensor sees it and sends nothing.
            result = cli_sync(scheduled)
            assert result.returncode == 1, result.stdout + result.stderr
            (again,) = [r for r in instance.get_run_records(RunsFilter(
                job_name=DISTRICT_SYNC_JOB, statuses=[DagsterRunStatus.FAILURE], tags={PARTITION_TAG: scheduled}))
                if r.dagster_run.run_id != blocked_run.run_id]
            wait_for("an alerts tick after the second failure",
                     lambda: any(t.timestamp > again.end_time + 1 for t in alert_ticks(instance)), log=log)
    finally:
        running = log.stat().st_size
        stop(daemon)
    assert [(m["district_id"], m["problem"]) for m in receiver.bodies] == [
        (scheduled, "blocked"), (terminal, "blocked"), (evented, "blocked")]
    output = log.read_bytes()
    before, after = output[:running].decode(errors="replace"), output[running:].decode(errors="replace")
    assert "secret-path-token" not in before + after  # the webhook URL is a credential
    assert "Traceback" not in before, before[-4000:]
    # The stop's SIGINT may reach a code server the daemon is still starting (it loads the
    # definitions): its interruption is the stop, not an error. Any other traceback is.
    assert not [tb for tb in after.split("Traceback (most recent call last):")[1:]
                if "DagsterExecutionInterruptedError" not in tb and "KeyboardInterrupt" not in tb], after[-4000:]
