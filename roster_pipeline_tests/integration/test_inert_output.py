"""What we send out is inert, and no slow webhook holds the night (issue 27: 5, 3 "The webhook", 4 "A school id with /").

District, school, section and teacher names are SIS values anyone at a district can type. They
reach a Slack channel (alerts), a liaison's spreadsheet (the school CSVs) and the operator's
terminal (`sync`, `status`): there they stay text. A webhook receiver that answers one byte at
a time costs an alert its deadline, not the night, and a school id that is not a Clever id costs
that school its page, not the district its reports.
"""

from __future__ import annotations

import csv
import fcntl
import io
import logging
import time
from pathlib import Path

from pydantic import SecretStr

from roster_pipeline.cli import main
from roster_pipeline.cli.sync import sync
from roster_pipeline.operations.alerts import Alert, post_alert
from roster_pipeline_tests.fixtures.dirty_district import DISTRICT_ID, S1, S2, oid, school
from roster_pipeline_tests.fixtures.operations import Receiver
from roster_pipeline_tests.fixtures.warehouses import warehouse_query

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TERMINAL_NAME = "Evil\x1b[2J\x1b]0;pwned\x07 Unified\x9b31m"


def synced(expected: int = 0) -> str:
    out = io.StringIO()
    assert sync(out=out) == expected, out.getvalue()
    return out.getvalue()


def rename(district, kind: str, object_id: str, **fields) -> None:
    obj = next(o for o in district.objects[kind] if o["id"] == object_id)
    district.upsert(kind, {**obj, **fields})


def test_an_alert_cannot_mention_the_channel_or_disguise_a_link():
    receiver = Receiver()
    alert = Alert(DISTRICT_ID, "<!channel> <https://evil.example|Click here> & Co", "blocked",
                  "students: <!here> <https://evil.example/steal|Lincoln Elementary>: 40 students removed (100%)",
                  "run `roster-pipeline approve`.")
    assert post_alert(SecretStr(receiver.url), alert, deadline=5)
    (body,) = receiver.bodies
    text = body["text"]
    assert "<!channel>" not in text and "<!here>" not in text and "<http" not in text and "<" not in text
    assert "&lt;!channel&gt; &lt;https://evil.example|Click here&gt; &amp; Co" in text  # shown, as text
    assert f"({DISTRICT_ID}): publish blocked." in text and "`roster-pipeline approve`" in text


def test_a_dripping_webhook_costs_one_alert_its_deadline(caplog):
    receiver = Receiver(drip_seconds=0.5)  # answers, then one header byte every 0.5 s, for ever
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        delivered = post_alert(SecretStr(receiver.url), Alert(DISTRICT_ID, "Drip", "failed", "reason", "fix"),
                               timeout=10, deadline=2)
    elapsed = time.monotonic() - started
    receiver.shutdown()
    receiver.server_close()
    assert not delivered and elapsed < 3, elapsed
    assert "not delivered within 2s" in caplog.text and "secret-path-token" not in caplog.text


def test_a_webhook_host_resolving_to_a_metadata_address_is_not_posted_to(caplog):
    # 2852039166 is 169.254.169.254 written as one number: no IP literal to the settings, but the
    # resolver reads it as the cloud metadata address; the send refuses it before connecting.
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        delivered = post_alert(SecretStr("https://2852039166/hooks/secret-path-token"),
                               Alert(DISTRICT_ID, None, "failed", "reason", "fix"), timeout=5, deadline=10)
    assert not delivered and time.monotonic() - started < 1
    assert "ROSTER_ALERT_WEBHOOK_URL's host resolves to a link-local address" in caplog.text
    assert "secret-path-token" not in caplog.text and "2852039166" not in caplog.text


def test_hostile_names_stay_text_in_spreadsheets_and_on_the_terminal(dirty, capsys):
    district, data = dirty
    rename(district, "district", DISTRICT_ID, name=TERMINAL_NAME)
    rename(district, "school", S1, name='=HYPERLINK("https://evil.example","Lincoln")')
    rename(district, "section", oid("section", 1), name="+1 Math K - P1")
    rename(district, "section", oid("section", 4), name="-2+3 Math 12 - P1")
    teacher = next(o for o in district.objects["teacher"] if o["id"] == oid("teacher", 1))
    rename(district, "teacher", teacher["id"], name={"first": "@SUM(A1:A9)", "last": "Lopez"})
    student = next(o for o in district.objects["student"] if o["id"] == oid("student", 4))  # excluded: grade "Other"
    rename(district, "student", student["id"], name={"first": "=cmd|' /C calc'!A0", "last": "\tTab"})

    said = synced()
    assert "\x1b" not in said and "\x07" not in said and "\x9b" not in said
    assert f"district Evil Unified31m ({DISTRICT_ID}): ok" in said
    capsys.readouterr()
    assert main(["status"]) == 0
    status = capsys.readouterr().out
    assert "\x1b" not in status and "\x07" not in status and f"Evil Unified31m ({DISTRICT_ID}): published" in status

    cells = []
    for path in sorted((data / "reports" / DISTRICT_ID).glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            cells += [cell for row in list(csv.reader(handle))[1:] for cell in row]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
    for written in ("'+1 Math K - P1", "'-2+3 Math 12 - P1"):
        assert written in cells  # kept, as text
    # People are named by SIS id in the pages (their names stay in the warehouse): no formula of theirs at all.
    assert not [c for c in cells if "@SUM" in c or "calc" in c] and "SIS id STU4" in cells
    assert "Kindergarten" in cells and "1" in cells  # plain values untouched


def test_a_school_id_that_is_not_a_clever_id_costs_that_school_its_page_only(dirty, tmp_path):
    district, data = dirty
    for n, bad_id in ((3, "../../evil"), (4, "a/b")):
        district.upsert("school", {**school(n, f"Bad Id School {n}", "1", "5"), "id": bad_id})
    synced()  # the reports step succeeds
    folder = data / "reports" / DISTRICT_ID
    assert {r for (r,) in warehouse_query("select school_id from roster.schools")} >= {"../../evil", "a/b"}
    assert (folder / f"school_{S1}.html").exists() and (folder / f"school_{S2}.html").exists()
    assert "2 schools have no page:" in (folder / "index.html").read_text()
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".csv"):
            assert path.parent == folder and (path.name == "index.html" or path.name.startswith(f"school_{PREFIX}")), path


PREFIX = S1[:8]


def turn_is_free(lock_file: Path) -> bool:
    """Whether the DuckDB warehouse's turn could be taken now (by another process: a new open file description)."""
    with open(lock_file, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_a_rollover_with_a_dripping_webhook_costs_the_sync_at_most_the_deadline(dirty, monkeypatch):
    from roster_pipeline.operations.alerts import DEADLINE_SECONDS

    district, data = dirty
    started = time.monotonic()
    synced()
    normal = time.monotonic() - started
    # The date rule: ROSTER_SCHOOL_YEAR_START passed since the last publish, so the next sync is a new school year.
    warehouse_query("update roster.publishes set published_at = published_at - interval '400 days'")
    free_while_sending: list[bool] = []
    receiver = Receiver(drip_seconds=0.5, on_request=lambda: free_while_sending.append(
        turn_is_free(data / "warehouse.duckdb.lock")))
    monkeypatch.setenv("ROSTER_ALERT_WEBHOOK_URL", receiver.url)
    started = time.monotonic()
    synced()
    rollover = time.monotonic() - started
    receiver.shutdown()
    receiver.server_close()
    assert [b["problem"] for b in receiver.bodies] == ["new school year"]  # one attempt, cut at the deadline
    assert free_while_sending == [True]  # the warehouse's turn is not held while the alert is sent
    assert rollover < normal + DEADLINE_SECONDS + 20, (normal, rollover)
    assert warehouse_query("select new_school_year is not null from roster.publishes order by published_at desc limit 1") == [(True,)]
