"""Changes say what happened (issue 28, part 4): a school the district stops sharing is recorded as
"school no longer shared" (and "school shared again" when it comes back), never as withdrawals, in
`roster_changes`, the guard's sentences and the pages; an approval that overrode the guard is in
`roster.publishes` (how, the run, the verdict); a sync's line and its run's tags say which kind of
sync it was and why.

A sandbox district of the test's own; real syncs through the CLI's code into DuckDB and Postgres.
"""

from __future__ import annotations

import io
import re

import httpx
import pytest
from dagster import DagsterInstance

from roster_pipeline.cli import main
from roster_pipeline.cli.sync import sync
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS, warehouse_query

SCHOOL_TABLES = {"students": "student", "teachers": "teacher", "sections": "section", "enrollments": "enrollment",
                 "section_teachers": "section_teacher", "admins": "admin"}


def synced(expected: int, **options) -> str:
    out = io.StringIO()
    assert sync(out=out, **options) == expected, out.getvalue()
    return out.getvalue()


def run_of(said: str) -> str:
    """The run id a sync's (single district's) line names."""
    (run_id,) = re.findall(r"\(run ([0-9a-f-]{36})\)", said)
    return run_id


def tags_of(run_id: str) -> dict[str, str]:
    with DagsterInstance.get() as instance:
        return dict(instance.get_run_by_id(run_id).tags)


class Sandbox:
    """The test's sandbox, driven over HTTP as a district admin and Clever would change it."""

    def __init__(self, server) -> None:
        self.base_url, self.env = server.base_url, server.env()

    def control(self, path: str, **body) -> dict:
        return httpx.post(f"{self.base_url}/sandbox/{path}", json=body, timeout=60).raise_for_status().json()

    def events(self) -> int:
        """How many events Clever serves the district now (from the start of its log)."""
        tokens = httpx.get(self.env["CLEVER_OAUTH_TOKENS_URL"], params={"owner_type": "district"}, timeout=60,
                           auth=(self.env["CLEVER_CLIENT_ID"], self.env["CLEVER_CLIENT_SECRET"])).json()["data"]
        headers = {"Authorization": f"Bearer {tokens[0]['access_token']}"}
        count, params = 0, {"limit": "10000"}
        while True:
            page = httpx.get(f"{self.env['CLEVER_API_BASE_URL']}/events", params=params, headers=headers,
                             timeout=60).raise_for_status().json()
            count += len(page["data"])
            if not page["data"]:
                return count
            params = {"limit": "10000", "starting_after": page["data"][-1]["data"]["id"]}


@pytest.fixture
def district(own_sandbox, warehouse_env, monkeypatch):
    monkeypatch.setenv("ROSTER_MASS_CHANGE_MIN_ROWS", "10")
    return Sandbox(own_sandbox(seed=23, students=600))


def school_rows(school: str) -> dict[str, int]:
    return {entity: warehouse_query(f"select count(*) from roster.{table} where school_id = ?", [school])[0][0]
            for table, entity in SCHOOL_TABLES.items()}


def changes_of(school: str, published_at) -> dict[tuple[str, str, str], int]:
    """(entity, change, detail) → records, of the school in one publish."""
    return {(e, c, d): n for e, c, d, n in warehouse_query(
        "select entity, change, detail, count(*) from roster.roster_changes where school_id = ? and published_at = ? "
        "group by entity, change, detail", [school, published_at])}


def last_publish() -> tuple:
    return warehouse_query("select published_at, run_id, approved, approved_how, overridden_verdict "
                           "from roster.publishes order by published_at desc limit 1")[0]


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_an_unshared_school_is_said_so_everywhere_and_its_approvals_are_recorded(district, tmp_path, capsys):
    said = synced(0)
    assert "full: no cursor" in said, said
    (district_id,), = warehouse_query("select district_id from roster.districts")
    school, name = warehouse_query("select school_id, name from roster.school_roster_summary "
                                   "order by students desc limit 1")[0]
    before = school_rows(school)
    assert before["student"] > 50 and before["enrollment"] > 50

    # Unshared: the guard blocks, naming the school and what happened to it.
    district.control("share-school", school=school, shared=False)
    said = synced(1)
    assert f"{name}: {before['student']:,} of {before['student']:,} students removed (100%), school no longer shared" \
        in said, said
    assert "withdrawn" not in said

    # Approved with the command: every record of the school left "school no longer shared".
    capsys.readouterr()
    assert main(["approve", "--district", district_id, "--yes"]) == 0
    approved_run = run_of(capsys.readouterr().out)
    published_at, run_id, approved, how, verdict = last_publish()
    assert (run_id, approved, how) == (approved_run, True, "command")
    logged = changes_of(school, published_at)
    expected = {(entity, "removed", "school no longer shared"): n for entity, n in before.items() if n}
    assert logged == {**expected, ("school", "removed", "school no longer shared"): 1}, logged
    assert not warehouse_query("select count(*) from roster.roster_changes where published_at = ? "
                               "and detail = 'withdrawn'", [published_at])[0][0]
    # The overridden verdict: the guard's sentences (counts, ids, the school's name), no person's values.
    assert verdict.startswith("students: ") and " sections: " in verdict, verdict  # one sentence per table over the limit
    assert f"{name}: {before['student']:,} of {before['student']:,} students removed (100%), school no longer shared" \
        in verdict, verdict
    assert ": publish blocked" not in verdict and "approved for this run" not in verdict
    people = warehouse_query("select first_name, last_name, email from roster.students_history where school_id = ?",
                             [school])
    assert not [p for p in people if f"{p[0]} {p[1]}" in verdict or (p[2] and p[2] in verdict)]
    # Earlier publishes overrode nothing.
    assert warehouse_query("select approved, approved_how, overridden_verdict from roster.publishes "
                           "where published_at < ?", [published_at]) == [(False, None, None)]

    # The pages: the index names the school no longer shared and what left with it; its page and CSVs
    # are gone (no stale roster to confirm).
    folder = tmp_path / "data" / "reports" / district_id
    index = (folder / "index.html").read_text()
    assert "Schools no longer shared" in index and f"<code>{school}</code>" in index
    assert f"{before['student']:,} students" in index and "withdrawn" not in index
    assert not list(folder.glob(f"school_{school}*")) and f"school_{school}.html" not in index

    # Shared again: blocked as a mass change, then approved by the run tag alone (as a UI launch sets it).
    district.control("share-school", school=school, shared=True)
    said = synced(1)
    assert f"{name}: {before['student']:,} students added to 0 (100%), school shared again" in said, said
    launched_from_ui(district_id)
    published_at, run_id, approved, how, verdict = last_publish()
    assert (approved, how) == (True, "tag") and tags_of(run_id).get("dagster/from_ui") == "true"
    assert "school shared again" in verdict
    logged = changes_of(school, published_at)
    expected = {(entity, "added", "school shared again"): n for entity, n in before.items() if n}
    assert logged == {**expected, ("school", "added", "school shared again"): 1}, logged
    assert school_rows(school) == before
    page = (folder / f"school_{school}.html").read_text()
    assert "School shared again." in page and f"{before['student']:,} students" in page


def launched_from_ui(district_id: str) -> None:
    """A district_sync run with the tags a launch from the UI's launchpad carries: the approval tag typed in."""
    from roster_pipeline.cli.dagster_home import ensure_dagster_home
    from roster_pipeline.definitions import build_definitions
    from roster_pipeline.defs.automation.jobs import sync_run_config

    ensure_dagster_home()
    with DagsterInstance.get() as instance:
        job = build_definitions().resolve_job_def("district_sync")
        result = job.execute_in_process(
            partition_key=district_id, instance=instance, raise_on_error=False,
            tags={"dagster/from_ui": "true", "roster/accept_mass_change": "true", "roster/district": district_id},
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}, **sync_run_config(False)})
    assert result.success


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_each_sync_says_its_kind_and_why_on_its_line_and_in_its_run_tags(district):
    def kind(expected: str, **options) -> None:
        said = synced(0, **options)
        (line,) = [line for line in said.splitlines() if line.startswith("district ")]
        assert re.search(rf": ok in [\d.]+s, {re.escape(expected)} \(run ", line), line
        tags = tags_of(run_of(said))
        kind, reason = expected.split(", " if expected.startswith("incremental") else ": ")
        assert (tags["roster/sync_kind"], tags["roster/sync_reason"]) == (kind, reason)

    kind("full: no cursor")
    kind("full: full refresh asked")
    events = district.events()
    district.control("advance-day", share=0.03)
    new_events = district.events() - events
    assert new_events > 20
    kind(f"incremental, {new_events:,} events", incremental=True)
    kind("incremental, 0 events", incremental=True)

    # Events that cannot bring the district up to date: a full refresh, and the line says why.
    district.control("expire-events")
    district.control("advance-day", share=0.01)
    kind("full: cursor past retention", incremental=True)
    district.control("events-enabled", enabled=False)
    kind("full: events turned off", incremental=True)
