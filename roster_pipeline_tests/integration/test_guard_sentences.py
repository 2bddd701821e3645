"""The guard's sentences add up (issue 28, part 3): two schools unshared at once are both named, with
their own numbers, in every table's sentence; a school that comes back moved 100 %, not 57,300 %;
`status` keeps to one short line a district and `status --district` says everything, with ISO times
in `--json`; `approve` without districts says what it needs.

A sandbox district of the test's own; real syncs into a DuckDB warehouse.
"""

from __future__ import annotations

import io
import json
import math
import re
from datetime import datetime

import httpx
import pytest

from roster_pipeline.cli import main
from roster_pipeline.cli.sync import sync
from roster_pipeline.modeling.contract_check import RECORD_KEYS
from roster_pipeline_tests.fixtures.warehouses import warehouse_query

TABLES = ("students", "teachers", "sections", "enrollments")


@pytest.fixture
def district(own_sandbox, warehouse_env, monkeypatch):
    monkeypatch.setenv("ROSTER_MASS_CHANGE_MIN_ROWS", "10")  # the schools' few teachers count too
    return own_sandbox(seed=31, students=900)


def synced(expected: int, **options) -> str:
    out = io.StringIO()
    assert sync(out=out, **options) == expected, out.getvalue()
    return out.getvalue()


def sentences(said: str) -> dict[str, str]:
    """table → the guard's sentence about it, from a sync's or `status --district`'s output."""
    found = {}
    for table in TABLES:
        match = re.search(rf"\b{table}: [\d,]+ published, [\d,]+ now \(.*?(?=; (?:students|teachers|sections|enrollments)"
                          r": [\d,]+ published|\n|$)", said)
        if match:
            found[table] = match.group(0)
    return found


def bound(table: str, schools: list[str]) -> str:
    """What the guard must say of these schools: their largest share of records moved (removed or
    added, against the larger of before and after), read here from the published and the checked build."""
    keys = ", ".join(RECORD_KEYS[table])

    def count(query: str, school: str) -> int:
        return warehouse_query(f"select count(*) from ({query}) as rows", [school] * query.count("?"))[0][0]

    most = 0.0
    for school in schools:
        sides = [f"select {keys} from {schema}.{table} where school_id = ?" for schema in ("roster", "roster_build")]
        moved = max(count(f"{sides[0]} except {sides[1]}", school), count(f"{sides[1]} except {sides[0]}", school))
        most = max(most, moved / max(count(sides[0], school), count(sides[1], school), 1))
    if most == 0:
        return "did not change"
    return "changed by less than 1 %" if most < 0.01 else f"changed by at most {math.ceil(most * 100 - 1e-9)} %"


def test_two_unshared_schools_are_both_named_in_every_sentence(district, capsys):
    control = lambda path, **body: httpx.post(f"{district.base_url}/sandbox/{path}", json=body,  # noqa: E731
                                              timeout=60).raise_for_status().json()
    synced(0)
    (district_id,), = warehouse_query("select district_id from roster.districts")
    two = warehouse_query("select school_id, name from roster.school_roster_summary order by students desc limit 2")
    counts = {school: {table: warehouse_query(f"select count(*) from roster.{table} where school_id = ?",
                                              [school])[0][0] for table in TABLES} for school, _ in two}
    for school, _ in two:
        control("share-school", school=school, shared=False)

    said = synced(1)
    blocked = sentences(said)
    assert {"students", "sections", "enrollments"} <= set(blocked), said
    for table, sentence in blocked.items():
        for school, name in two:
            n = counts[school][table]
            if n:  # each school, with its own numbers, in every table where it moved
                assert f"{name}: {n:,} of {n:,} {table} removed (100%)" in sentence, sentence
        others = [school for (school,) in warehouse_query(f"select distinct school_id from roster.{table}")
                  if school not in counts]
        assert f"the {len(others)} other school{'s' if len(others) != 1 else ''} {bound(table, others)}" in sentence, \
            sentence

    # status: one short line; --district: every sentence; --json: ISO 8601 times.
    capsys.readouterr()
    assert main(["status"]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and len(line) <= 200, line
    assert f"BLOCKED: 2 schools, students -{sum(c['students'] for c in counts.values()):,}" in line, line
    assert f"see status --district {district_id}" in line
    assert main(["status", "--district", district_id]) == 0
    details = capsys.readouterr().out
    for table, sentence in blocked.items():
        assert sentence.split(": publish blocked")[0] in details, details
    assert f"roster-pipeline approve --district {district_id}" in details
    assert main(["status", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    for key in ("last_publish", "last_run_at", "last_failure_at", "published_at"):
        assert datetime.fromisoformat(listed[key]).utcoffset() is not None, (key, listed[key])
    assert listed["blocked_tables"]["students"] == -sum(c["students"] for c in counts.values())

    # approve without districts: one sentence, exit 2.
    assert main(["approve"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--district ID" in err and "--all-blocked" in err and "not both" not in err

    # The schools come back: each moved 100 % of the larger count, not thousands of percent.
    synced(0, accept_mass_change=True)
    for school, _ in two:
        control("share-school", school=school, shared=True)
    said = synced(1)
    back = sentences(said)
    assert "students" in back, said
    for table, sentence in back.items():
        per_school = sentence.split(" added. ", 1)[1]  # (the table's own share is of what was published: +300 %)
        assert all(int(p.replace(",", "")) <= 100 for p in re.findall(r"([\d,]+) ?%", per_school)), sentence
        for school, name in two:
            n = counts[school][table]
            if n:
                assert f"{name}: {n:,} {table} added to 0 (100%)" in sentence, sentence
