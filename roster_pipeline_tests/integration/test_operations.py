"""Operating districts: a blocked sync reaches a webhook once a night (a failing webhook harms
nothing), `status` shows it, and `approve` publishes it after showing where the change is.

The receivers are real local HTTP servers; the sync is a real sync of a sandbox district; the
sensor is the project's run-failure sensor, evaluated on the failed run as the daemon would.
"""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from dagster import DagsterInstance

from roster_pipeline.cli.sync import sync
from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.server import start_sandbox
from roster_pipeline_tests.fixtures.operations import Receiver, evaluate_sensor, latest_freshness
from roster_pipeline_tests.fixtures.warehouses import point_at, warehouse_query


@pytest.fixture
def district(tmp_path, monkeypatch):
    server = start_sandbox(SandboxData(seed=11, districts=1, students=500))
    point_at(server, tmp_path, monkeypatch)
    monkeypatch.delenv("ROSTER_WAREHOUSE", raising=False)
    yield server
    server.shutdown()
    server.server_close()


def test_a_blocked_publish_is_alerted_once_a_night_shown_by_status_and_approved(district, monkeypatch, caplog, capsys):
    from roster_pipeline.cli import main

    caplog.set_level(logging.DEBUG)
    assert sync(out=io.StringIO()) == 0
    district_id, name = warehouse_query("select district_id, name from roster.districts")[0]
    school_id = warehouse_query("select school_id from roster.school_roster_summary order by students desc limit 1")[0][0]
    people = [f"{first} {last}" for first, last in warehouse_query("select first_name, last_name from roster.students")]
    httpx.post(f"{district.base_url}/sandbox/share-school", json={"school": school_id, "shared": False},
               timeout=60).raise_for_status()

    failing = Receiver(status=503)
    monkeypatch.setenv("ROSTER_ALERT_WEBHOOK_URL", failing.url)
    out = io.StringIO()
    assert sync(out=out) == 1  # blocked by the mass-change guard; the webhook plays no part in the sync
    with DagsterInstance.get() as instance:
        assert evaluate_sensor(instance) is None  # a failing webhook: no exception out of the sensor
        assert len(failing.bodies) == 3  # bounded retries on 503

        receiver = Receiver()
        monkeypatch.setenv("ROSTER_ALERT_WEBHOOK_URL", receiver.url)
        evaluate_sensor(instance)  # not delivered before, so it is sent now
        assert sync(out=io.StringIO()) == 1  # blocked again the same night
        evaluate_sensor(instance)
    (message,) = receiver.bodies  # once a night per district
    text = message["text"]
    assert message["problem"] == "blocked" and message["district_id"] == district_id
    assert f"{name} ({district_id}): publish blocked" in text
    assert "mass_change_guard failed" in text and "students removed" in text
    assert f"roster-pipeline approve --district {district_id}" in text and "roster/accept_mass_change=true" in text
    assert not [person for person in people if person in text] and "@" not in text  # ids and counts only
    assert "secret-path-token" not in caplog.text + out.getvalue()  # the URL is a credential

    # status: one line per district saying it is blocked, and why, by school.
    capsys.readouterr()
    assert main(["status"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{name}: BLOCKED: 1 school, students -") and len(line) <= 200
    assert f"see status --district {district_id}; published " in line
    assert "events cursor" in line and "Clever: " in line and "secret-path-token" not in line
    assert main(["status", "--district", district_id]) == 0
    details = capsys.readouterr().out
    assert "  students: " in details and "students removed (100%)" in details
    assert main(["status", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["blocked"] and listed["district_id"] == district_id and listed["events_cursor_age_hours"] < 1

    # approve: shows the per-school summary, asks (a script must say --yes), then publishes.
    assert main(["approve", "--all-blocked"]) == 2  # no terminal to ask on: one sentence
    assert "add --yes" in capsys.readouterr().err
    assert main(["approve", "--district", district_id, "--yes"]) == 0
    said = capsys.readouterr().out
    assert "1 district(s) blocked by the mass-change guard" in said and "students removed (100%)" in said
    assert warehouse_query("select count(*) from roster.students where school_id = ?", [school_id]) == [(0,)]
    assert main(["status", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert not listed["blocked"] and listed["last_run"] == "success"
    assert main(["approve", "--all-blocked", "--yes"]) == 0
    assert "No blocked district to approve." in capsys.readouterr().out


def test_no_webhook_means_no_alert_and_a_malformed_one_is_one_sentence(district, monkeypatch):
    from roster_pipeline.settings import ConfigError, OperationsSettings

    monkeypatch.setenv("ROSTER_MASS_CHANGE_SHARE", "0.001")
    monkeypatch.setenv("ROSTER_MASS_CHANGE_MIN_ROWS", "1")
    assert sync(out=io.StringIO()) == 0
    httpx.post(f"{district.base_url}/sandbox/advance-day", json={"share": 0.05}, timeout=60).raise_for_status()
    assert sync(out=io.StringIO()) == 1
    with DagsterInstance.get() as instance:
        skipped = evaluate_sensor(instance)
    assert "ROSTER_ALERT_WEBHOOK_URL is not set" in skipped.skip_message
    with pytest.raises(ConfigError) as error:
        OperationsSettings.from_env({"ROSTER_ALERT_WEBHOOK_URL": "hooks.slack.com/services/T000/B000/XXXX"})
    assert "ROSTER_ALERT_WEBHOOK_URL" in str(error.value) and "XXXX" not in str(error.value)


def test_the_freshness_check_goes_red_with_the_last_failure_and_green_after_a_publish(district, monkeypatch):
    import time

    from roster_pipeline.definitions import build_definitions

    def judge(instance):  # the daily_freshness schedule's run
        assert build_definitions().resolve_job_def("district_freshness").execute_in_process(instance=instance).success
        return latest_freshness(instance)

    assert sync(out=io.StringIO()) == 0
    (district_id,) = warehouse_query("select district_id from roster.districts")[0]
    with DagsterInstance.get() as instance:
        fresh = judge(instance)
        assert fresh.passed and fresh.partition == district_id and "Published " in fresh.description

        monkeypatch.setenv("ROSTER_FRESHNESS_HOURS", "0.0003")  # about a second
        monkeypatch.setenv("ROSTER_MASS_CHANGE_SHARE", "0.001")  # and the next sync is blocked
        monkeypatch.setenv("ROSTER_MASS_CHANGE_MIN_ROWS", "1")
        time.sleep(1.5)
        httpx.post(f"{district.base_url}/sandbox/advance-day", json={"share": 0.05}, timeout=60).raise_for_status()
        assert sync(out=io.StringIO()) == 1
        stale = judge(instance)
        assert not stale.passed and "over the 0.0003 h limit (ROSTER_FRESHNESS_HOURS)" in stale.description
        assert "The last failed run: check roster/" in stale.description and ":mass_change_guard failed" in stale.description
        assert stale.metadata["last_publish"].value.endswith("+00:00") and "last_failure" in stale.metadata  # ISO

        monkeypatch.setenv("ROSTER_FRESHNESS_HOURS", "26")
        assert sync(accept_mass_change=True, out=io.StringIO()) == 0
        assert judge(instance).passed


def test_a_district_clever_paused_says_so_everywhere_and_skips_the_nightly_refresh(district, tmp_path, capsys):
    from datetime import datetime, timezone

    from dagster import build_schedule_context

    from roster_pipeline.cli import main
    from roster_pipeline.defs.automation.schedules import build_nightly_schedule
    from roster_pipeline.defs.resources import CleverResource, WarehouseResource
    from roster_pipeline.settings import data_dir, warehouse_url

    httpx.post(f"{district.base_url}/sandbox/pause", json={"paused": True, "pause_end": "2027-08-16T00:00:00.000Z"},
               timeout=60).raise_for_status()
    assert sync(out=io.StringIO()) == 0
    (district_id, state, pause_end), = warehouse_query("select district_id, state, pause_end from roster.districts")
    assert state == "paused" and pause_end.year == 2027

    capsys.readouterr()
    assert main(["status"]) == 0
    assert "Clever: paused until 2027-08-16" in capsys.readouterr().out
    index = (tmp_path / "data" / "reports" / district_id / "index.html").read_text()
    assert "Sync paused." in index and "until August 16, 2027" in index

    env = district.env()
    resources = {"clever": CleverResource(oauth_tokens_url=env["CLEVER_OAUTH_TOKENS_URL"],
                                          client_id=env["CLEVER_CLIENT_ID"], client_secret=env["CLEVER_CLIENT_SECRET"]),
                 "warehouse": WarehouseResource(url=warehouse_url(), dlt_dir=str(data_dir() / "dlt"))}
    nightly = build_nightly_schedule("0 0 * * *", "UTC", batch_size=25)
    with DagsterInstance.get() as instance, build_schedule_context(
            instance=instance, resources=resources, scheduled_execution_time=datetime.now(timezone.utc)) as context:
        assert list(nightly(context)) == []  # nothing to refresh tonight

    httpx.post(f"{district.base_url}/sandbox/pause", json={"paused": False}, timeout=60).raise_for_status()
    assert sync(incremental=True, out=io.StringIO()) == 0  # the events bring the end of the pause
    assert warehouse_query("select state from roster.districts") == [("success",)]
    assert "Sync paused." not in (tmp_path / "data" / "reports" / district_id / "index.html").read_text()
