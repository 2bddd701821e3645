"""School pages a liaison can trust (issue 29, part 4), on DuckDB and Postgres.

Every page and CSV says which publish it shows; a school no longer shared has no page left and
the index says so; a section dropped by design is never "to fix", whatever its grade; a teacher's
new email is one line, not one per enrollment; the index and the page count the same changes
"since the last sync"; sections of one name are told apart by section number; a district whose
SIS Clever has not synced for ROSTER_SIS_STALE_DAYS is flagged in `status` and on the index.

A hand-made district of the test's own (one record per case) and a generated sandbox district made
stale with `/sandbox/last-sync`; real syncs through the CLI's code, pages parsed as HTML.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest

from roster_pipeline.clever.sis_sync import sis_stale_since
from roster_pipeline.cli import main
from roster_pipeline.cli.sync import sync
from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.handmade_district import HandmadeDistrict
from roster_pipeline.sandbox.server import start_sandbox
from roster_pipeline.settings import ConfigError, sis_stale_days
from roster_pipeline_tests.fixtures.dirty_district import DISTRICT_ID, TOKEN, oid, school, section, student, teacher
from roster_pipeline_tests.fixtures.pages import Page
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS, warehouse_query

ZONE = "America/New_York"  # not the default: the pages must follow ROSTER_SYNC_TIMEZONE
HAUCK, SECOND = oid("school", 1), oid("school", 2)
SAME_NAME = "Tenth Grade English - Hauck - 7"
DROPPED_BY_DESIGN = {oid("section", 4): "arts and music", oid("section", 5): "language", oid("section", 6): "science"}


def clever_time(moment: datetime) -> str:
    """A time as Clever writes it: 2026-11-01T06:00:00.000Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def liaison_objects() -> dict[str, list[dict]]:
    """Hauck High: three ELA sections of one name (one teacher), Art, Spanish and Science sections with
    bad grades, and a math section with a bad grade; Second Street: a small school that will be unshared."""
    english = [section(n, SAME_NAME, "english/language arts", "10", 1, list(range(5 * n - 4, 5 * n + 1)), HAUCK)
               for n in (1, 2, 3)]
    for n, s in enumerate(english, 1):
        s.update(period="7", section_number=f"10-7-{n}")
    return {
        "district": [{"id": DISTRICT_ID, "name": "Liaison Unified", "sis_type": "PowerSchool", "state": "success",
                      "last_sync": clever_time(datetime.now(timezone.utc) - timedelta(hours=20))}],
        "school": [school(1, "Hauck High", "9", "12"), school(2, "Second Street Elementary", "Kindergarten", "5")],
        "student": [student(n, "10", school_id=HAUCK) for n in range(1, 16)]
                   + [student(n, "3", school_id=SECOND) for n in (16, 17, 18)],
        "teacher": [teacher(1, "Haylie", "Hauck", "hauck@hauck.k12.us", HAUCK),
                    teacher(2, "Ari", "Arts", "arts@hauck.k12.us", HAUCK),
                    teacher(3, "Sam", "Second", "sam@second.k12.us", SECOND)],
        "section": [*english,
                    section(4, "Art 10 - P1", "arts and music", "Other", 2, [1, 2], HAUCK),
                    section(5, "Spanish 10 - P2", "language", "K", 2, [3], HAUCK),
                    section(6, "Science 10 - P3", "science", "Ungraded", 2, [4], HAUCK),
                    section(7, "Math 10 - P4", "math", "Other", 2, [5], HAUCK),
                    section(8, "Math 3 - P1", "math", "3", 3, [16, 17, 18], SECOND)],
        "course": [{"id": oid("course", 1), "district": DISTRICT_ID, "name": "Course", "number": "C1"}],
        "term": [{"id": oid("term", 1), "district": DISTRICT_ID, "name": "Fall 2026",
                  "start_date": "2026-08-20", "end_date": "2027-01-15"}],
    }


@pytest.fixture
def liaison(tmp_path, monkeypatch, warehouse_env):
    """A sandbox serving only the hand-made district, the installation pointed at it."""
    district = HandmadeDistrict(DISTRICT_ID, TOKEN, copy.deepcopy(liaison_objects()))
    server = start_sandbox(SandboxData(districts=0, handmade=[district]))
    for name in ("CLEVER_CLIENT_ID", "CLEVER_CLIENT_SECRET", "ROSTER_RULES", "DAGSTER_HOME", "ROSTER_REPORTS_DIR",
                 "ROSTER_SIS_STALE_DAYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLEVER_API_BASE_URL", server.env()["CLEVER_API_BASE_URL"])
    monkeypatch.setenv("CLEVER_DISTRICT_TOKENS", f"{DISTRICT_ID}={TOKEN}")
    monkeypatch.setenv("ROSTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ROSTER_SYNC_TIMEZONE", ZONE)
    monkeypatch.chdir(tmp_path)
    yield district, tmp_path / "data" / "reports" / DISTRICT_ID
    server.shutdown()
    server.server_close()


def synced() -> None:
    out = io.StringIO()
    assert sync(out=out) == 0, out.getvalue()


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def last_publish() -> datetime:
    return aware(warehouse_query("select max(published_at) from roster.publishes")[0][0])


def as_of(moment: datetime, zone: str = ZONE) -> tuple[str, str]:
    """What a page says of a publish ("Roster as of December 4, 2026, 10:58 PM EST"), and a CSV's roster_as_of."""
    local = moment.astimezone(ZoneInfo(zone))
    words = f"Roster as of {local:%B} {local.day}, {local.year}, {local.hour % 12 or 12}:{local:%M} " \
            f"{'AM' if local.hour < 12 else 'PM'} {local.tzname()}"
    return words, local.isoformat(timespec="seconds")


def day_in_words(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%B} {local.day}, {local.year}"


def csv_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def every_file_says(folder, moment: datetime) -> None:
    """Each page names the publish in words, each CSV row carries it."""
    words, iso = as_of(moment)
    files = sorted(folder.iterdir())
    assert [f for f in files if f.suffix == ".csv"] and [f for f in files if f.name.startswith("school_")]
    for path in files:
        if path.suffix == ".html":
            assert Page(path.read_text(encoding="utf-8")).text["roster-as-of"] == words, path.name
        else:
            rows = csv_rows(path)
            assert {r["roster_as_of"] for r in rows} <= {iso}, path.name
    assert any(csv_rows(p) for p in files if p.suffix == ".csv")  # rows that carry it, or nothing is shown


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_pages_say_their_publish_tell_sections_apart_and_keep_by_design_out_of_to_fix(liaison):
    district, folder = liaison
    synced()
    every_file_says(folder, last_publish())
    index = Page((folder / "index.html").read_text(encoding="utf-8"))
    assert "stale-sis" not in index.text  # Clever synced the SIS 20 hours ago
    hauck = Page((folder / f"school_{HAUCK}.html").read_text(encoding="utf-8"))

    # Sections of one name: told apart by section number, on the page and in the CSV.
    numbers = dict(warehouse_query("select section_id, section_number from roster.sections where name = ?", [SAME_NAME]))
    assert len(numbers) == 3 and len(set(numbers.values())) == 3
    shown = [row[0] for row in hauck.tables["sections-table"][1:] if row[0].startswith(SAME_NAME)]
    assert sorted(shown) == sorted(f"{SAME_NAME} (section {n})" for n in numbers.values())
    sections_csv = {r["section_id"]: r for r in csv_rows(folder / f"school_{HAUCK}_sections.csv")}
    assert {s: (sections_csv[s]["name"], sections_csv[s]["section_number"]) for s in numbers} == {
        s: (SAME_NAME, n) for s, n in numbers.items()}

    # Dropped by design (the subject is not kept) is never "to fix", even with a bad grade; a kept
    # subject's bad grade still is.
    reasons = dict(warehouse_query("select record_id, reason_code from roster.rejected_records where entity = 'section'"))
    assert {s: reasons[s] for s in DROPPED_BY_DESIGN} == dict.fromkeys(DROPPED_BY_DESIGN, "SECTION_SUBJECT_NOT_IN_SCOPE")
    assert reasons[oid("section", 7)] == "GRADE_OTHER"
    to_fix = {row[2] for row in hauck.tables["to-fix-table"][1:]}
    by_design = {row[2] for row in hauck.tables["by-design-table"][1:]}
    assert set(DROPPED_BY_DESIGN) <= by_design and not set(DROPPED_BY_DESIGN) & to_fix
    assert oid("section", 7) in to_fix
    excluded_csv = {r["record_id"]: r["to_fix_in_sis"] for r in csv_rows(folder / f"school_{HAUCK}_excluded.csv")}
    assert {excluded_csv[s] for s in DROPPED_BY_DESIGN} == {"no"} and excluded_csv[oid("section", 7)] == "yes"

    # The next night: Hauck's teacher has a new email, a student withdrew, Second Street is no longer shared.
    first_publish = last_publish()
    objects = district.objects
    objects["teacher"][0]["email"] = "haylie.hauck@hauck.k12.us"
    objects["student"] = [s for s in objects["student"] if s["id"] != oid("student", 15)
                          and s["roles"]["student"]["school"] != SECOND]
    objects["section"][2]["students"].remove(oid("student", 15))
    for kind in ("school", "teacher", "section"):
        objects[kind] = [o for o in objects[kind] if o.get("school") != SECOND and o["id"] != SECOND
                         and (o.get("roles") or {}).get("teacher", {}).get("school") != SECOND]
    synced()
    published = last_publish()
    assert published > first_publish
    every_file_says(folder, published)

    # Removed school: no page, no CSV; the index says it is no longer shared, since when, and what left.
    assert not list(folder.glob(f"school_{SECOND}*"))
    index_text = (folder / "index.html").read_text(encoding="utf-8")
    index = Page(index_text)
    assert f"school_{SECOND}.html" not in index.links and "Second Street Elementary" not in str(index.tables)
    (unshared,) = [line for line in index_text.splitlines() if f"<code>{SECOND}</code>" in line]
    assert "Second Street Elementary" in unshared
    assert f"no longer shared since {day_in_words(published, ZONE)}; 3 students, 3 enrollments, 1 teacher, 1 section" \
        in unshared and unshared.endswith(" removed with it</li>"), unshared
    left = warehouse_query("select entity, count(*) from roster.roster_changes where published_at = ? and school_id = ? "
                           "and entity <> 'school' and detail = 'school no longer shared' group by entity",
                           [published, SECOND])
    for entity, n in left:  # every kind of record that left with it, counted as roster_changes has them
        assert f" {n} {entity.replace('_', ' ')}{'' if n == 1 else 's'}" in unshared, (entity, n, unshared)

    # One line per change: the teacher's email is one line that counts its enrollments; the withdrawn
    # student's line counts the section left.
    logged = warehouse_query("select entity, change, record_id, changed_columns from roster.roster_changes "
                             "where published_at = ? and school_id = ?", [published, HAUCK])
    copies = [r for r in logged if r[0] == "enrollment" and r[1] == "changed"]
    assert len(copies) == 14 and {r[3] for r in copies} == {"teacher_email"}
    hauck = Page((folder / f"school_{HAUCK}.html").read_text(encoding="utf-8"))
    lines = hauck.tables["changes-table"][1:]
    assert sorted((line[0], line[1]) for line in lines) == [("SIS id STU15 (student)", "removed"),
                                                             ("SIS id T1 (teacher)", "changed")], lines
    said = {line[0]: line[2] for line in lines}
    assert said["SIS id T1 (teacher)"] == f"email changed (in {len(copies)} enrollments of 3 sections)"
    assert said["SIS id STU15 (student)"] == "withdrawn (left 1 section)"
    changes_csv = csv_rows(folder / f"school_{HAUCK}_changes.csv")
    assert len(changes_csv) == len(lines) and sum(int(r["records"]) for r in changes_csv) == len(logged)

    # The same words and numbers: the index counts the page's lines "since the last sync".
    kinds = Counter(line[1] for line in lines)
    header = index.tables["schools-table"][0]
    assert header[-1] == "changes since the last sync (added / removed / changed)"
    (row,) = [r for r in index.tables["schools-table"][1:] if r[0] == "Hauck High"]
    assert row[-1] == f"{kinds['added']} / {kinds['removed']} / {kinds['changed']}"
    assert "Changes since the last sync" in (folder / f"school_{HAUCK}.html").read_text(encoding="utf-8")
    assert hauck.text["changes-count"].startswith(
        f"{len(lines)} changes since the last sync ({kinds['added']} added, {kinds['removed']} removed, "
        f"{kinds['changed']} changed)")


class Sandbox:
    """A generated sandbox district driven over HTTP, as Clever would change it."""

    def __init__(self, server) -> None:
        self.base_url, self.env = server.base_url, server.env()

    def control(self, path: str, **body) -> dict:
        return httpx.post(f"{self.base_url}/sandbox/{path}", json=body, timeout=60).raise_for_status().json()

    def district(self) -> dict:
        """The district object Clever serves now."""
        tokens = httpx.get(self.env["CLEVER_OAUTH_TOKENS_URL"], params={"owner_type": "district"}, timeout=60,
                           auth=(self.env["CLEVER_CLIENT_ID"], self.env["CLEVER_CLIENT_SECRET"])).json()["data"]
        return httpx.get(f"{self.env['CLEVER_API_BASE_URL']}/districts", timeout=60,
                         headers={"Authorization": f"Bearer {tokens[0]['access_token']}"}).json()["data"][0]["data"]


def said(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_a_district_whose_sis_clever_has_not_synced_is_flagged_in_status_and_on_the_index(
        own_sandbox, warehouse_env, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ROSTER_SIS_STALE_DAYS", raising=False)
    sandbox = Sandbox(own_sandbox(seed=29, students=150))
    fresh = datetime.fromisoformat(sandbox.district()["last_sync"].replace("Z", "+00:00"))
    assert timedelta(0) <= datetime.now(timezone.utc) - fresh < timedelta(days=1, hours=6)  # a new district is fresh

    stale = (datetime.now(timezone.utc) - timedelta(days=10)).replace(microsecond=0)
    (served,) = sandbox.control("last-sync", last_sync=clever_time(stale))["districts"].values()
    assert served["last_sync"].startswith(stale.date().isoformat())
    synced()
    (district_id, last_sync), = warehouse_query("select district_id, last_sync from roster.districts")
    assert aware(last_sync) == stale

    # status: the short line flags it, status --district says it in a sentence, --json carries it.
    sentence = f"Clever has not synced this district's SIS since {stale.date().isoformat()}"
    code, out, _ = said(capsys, "status")
    assert code == 0 and f"SIS not synced since {stale.date().isoformat()}" in out and len(out.strip()) <= 200, out
    code, out, _ = said(capsys, "status", "--district", district_id)
    assert code == 0 and sentence in out, out
    code, out, _ = said(capsys, "status", "--json")
    (listed,) = json.loads(out)
    assert listed["sis_stale"] is True and listed["sis_last_sync"].startswith(stale.date().isoformat())

    # The index page: the same sentence, the date in the district's time zone (ROSTER_SYNC_TIMEZONE's default).
    index = tmp_path / "data" / "reports" / district_id / "index.html"
    flagged = Page(index.read_text(encoding="utf-8")).text["stale-sis"]
    assert f"Clever has not synced this district's SIS since {day_in_words(stale, 'America/Los_Angeles')} " \
           "(more than 7 days)" in flagged, flagged

    # Ten days is not stale for a district allowed thirty: neither status nor the regenerated index flags it.
    monkeypatch.setenv("ROSTER_SIS_STALE_DAYS", "30")
    code, out, _ = said(capsys, "status", "--district", district_id)
    assert code == 0 and "SIS not synced" not in out and "Clever has not synced" not in out, out
    assert said(capsys, "report", "--district", district_id)[0] == 0
    assert "stale-sis" not in Page(index.read_text(encoding="utf-8")).text

    # A bad value stops the command with one sentence naming the setting.
    monkeypatch.setenv("ROSTER_SIS_STALE_DAYS", "a week")
    code, out, err = said(capsys, "status")
    assert code != 0 and "ROSTER_SIS_STALE_DAYS must be a whole number of days" in err and "Traceback" not in err


def test_stale_means_older_than_the_days_and_never_while_clever_pauses_the_district():
    now = datetime(2026, 12, 5, 12, tzinfo=timezone.utc)
    assert sis_stale_since(now - timedelta(days=7, minutes=1), False, now, 7) == now - timedelta(days=7, minutes=1)
    assert sis_stale_since(now - timedelta(days=6, hours=23), False, now, 7) is None
    assert sis_stale_since(now - timedelta(days=40), True, now, 7) is None  # paused: Clever says so itself
    assert sis_stale_since(None, False, now, 7) is None  # Clever sent no last_sync: nothing to judge
    assert sis_stale_days({}) == 7 and sis_stale_days({"ROSTER_SIS_STALE_DAYS": "14"}) == 14
    for bad in ("0", "-3", "7.5", "a week"):
        with pytest.raises(ConfigError, match="^ROSTER_SIS_STALE_DAYS must be a whole number of days"):
            sis_stale_days({"ROSTER_SIS_STALE_DAYS": bad})


def test_a_section_that_came_with_its_teachers_and_students_is_one_line():
    """A new section's enrollments and section teachers (co-teachers) come with it: one line counts them;
    a co-teacher added to a section that stays is a line of its own."""
    from roster_pipeline.reports.school_reports import one_line_per_change

    def change(entity, record_id, detail="added to the roster", name=None):  # named as _changes names them
        return {"entity": entity, "change": "added", "record_id": record_id, "school_id": HAUCK, "changed_columns": None,
                "detail": detail, "published_at": None, "name": name or record_id}

    rows = [change("enrollment", f"sec9:stu{n}", detail="joined the section") for n in range(3)] + [
        change("section", "sec9", name="Math 10 - P5"), change("section_teacher", "sec9:t1"), change("section_teacher", "sec9:t2"),
        change("section_teacher", "sec1:t3")]
    lines = one_line_per_change(rows, {}, {"sec9": "t1"})
    assert [(line["entity"], line["record_id"], line["records"]) for line in lines] == [
        ("section", "sec9", 6), ("section_teacher", "sec1:t3", 1)]
    assert lines[0]["name"] == "Math 10 - P5"
    assert lines[0]["detail"] == "added to the roster (with 3 enrollments, 2 section teachers)"


def test_records_back_with_their_school_are_counted_on_its_line_whatever_else_their_change_says():
    from roster_pipeline.reports.school_reports import one_line_per_change

    back = "school shared again"
    rows = [{"entity": entity, "change": "added", "record_id": record_id, "school_id": HAUCK, "changed_columns": None,
             "detail": detail, "published_at": None, "name": record_id} for entity, record_id, detail in (
        ("student", "stu1", back), ("enrollment", "sec1:stu1", back),
        ("section", "sec1", f"{back}; primary teacher taken from the section's teacher list"), ("school", HAUCK, back))]
    (line,) = one_line_per_change(rows, {}, {})
    assert (line["entity"], line["records"]) == ("school", 4)
    assert line["detail"] == f"{back} (1 student, 1 enrollment, 1 section came back with it)"
