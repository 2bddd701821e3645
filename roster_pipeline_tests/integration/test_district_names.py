"""Districts by name: the published `roster.districts`, report titles, CLI lines and run tags."""

from __future__ import annotations

import datetime
import io

import pytest
from dagster import DagsterInstance

from roster_pipeline.cli.sync import sync
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS, warehouse_query


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_districts_are_published_by_name_with_clevers_sync_state(pipeline_env, sandbox, warehouse_env):
    started = datetime.datetime.now(datetime.timezone.utc)
    out = io.StringIO()
    assert sync(out=out) == 0
    rows = {r[0]: r[1:] for r in warehouse_query(
        "select district_id, name, state, last_sync, pause_start, pause_end, published_at from roster.districts")}
    served = {spec.id: spec.build("district", 0) for spec in sandbox.data.specs}
    assert set(rows) == set(served)
    for district_id, district in served.items():
        name, state, last_sync, pause_start, pause_end, published_at = rows[district_id]
        assert (name, state) == (district["name"], district["state"])
        assert (last_sync, pause_start, pause_end) == (
            utc(district["last_sync"]), utc(district["pause_start"]), utc(district["pause_end"]))
        assert started <= published_at <= datetime.datetime.now(datetime.timezone.utc)
        # The person at the command line reads the name, with the id to paste into --district.
        assert f"district {name} ({district_id}): ok" in out.getvalue()
    columns = "select column_name, data_type from information_schema.columns where table_schema = 'roster' " \
              "and table_name = 'school_roster_summary' and column_name in ('name', 'school_name')"
    assert [c for c, _ in warehouse_query(columns)] == ["name"]

    with DagsterInstance.get() as instance:
        runs = instance.get_runs()
    assert {r.tags["roster/district"]: r.tags.get("roster/district_name") for r in runs} == {
        d: served[d]["name"] for d in served}

    if warehouse_env == "duckdb":
        report_pages_title_the_district_by_name(pipeline_env, served)
    # A second publish moves published_at and keeps one row per district.
    first = {d: r[5] for d, r in rows.items()}
    assert sync(out=io.StringIO()) == 0
    again = dict(warehouse_query("select district_id, published_at from roster.districts"))
    assert set(again) == set(first) and all(again[d] > first[d] for d in first)


def report_pages_title_the_district_by_name(data_dir, served: dict[str, dict]) -> None:
    for district_id, district in served.items():
        folder = data_dir / "reports" / district_id  # folders keep the stable id
        index = (folder / "index.html").read_text()
        assert f"<h1>Roster confirmation: {district['name']} ({district_id[:4]}…)</h1>" in index
        school_page = next(folder.glob("school_*.html")).read_text()
        assert f"{district['name']} ({district_id[:4]}…)" in school_page
