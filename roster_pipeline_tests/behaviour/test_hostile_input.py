"""Property-based: arbitrary Clever users and sections never crash a sync, and none is lost.

Hypothesis generates whole districts with wrong types, missing or nested objects, unicode and
long strings in every field; each district goes through the real sandbox, the engine's SQL models
and checks. Every served student, teacher and section must end up either in the roster or in
`rejected_records` (kept + rejected = served).
"""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roster_pipeline.sandbox.districts import SandboxData
from roster_pipeline.sandbox.handmade_district import HandmadeDistrict
from roster_pipeline.sandbox.server import start_sandbox
from roster_pipeline_tests.fixtures.engine import sync
from roster_pipeline_tests.fixtures.warehouses import warehouse_query

DISTRICT = "5e5e5e5e01" + "0" * 14
SCHOOLS = [f"5e5e5e5e02{n:014x}" for n in range(2)]
GRADES = ["Kindergarten", *map(str, range(1, 14)), "Other", "PostGraduate", "Ungraded", "", "PreKindergarten", "K"]

# A long string is a short one repeated: 2,000-3,000 drawn characters would overrun Hypothesis's
# buffer, and an example that overruns is discarded (most of them were, and the test ran one).
long_text = st.tuples(st.text(min_size=1, max_size=4), st.integers(500, 3000)).map(lambda t: (t[0] * t[1])[:t[1]])
scalar = st.one_of(st.none(), st.text(max_size=40), st.integers(), st.booleans(), st.floats(allow_nan=False),
                   long_text)
anything = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                        max_leaves=6)
maybe_grade = st.one_of(st.sampled_from(GRADES), anything)
maybe_school = st.one_of(st.sampled_from(SCHOOLS), anything)
maybe_email = st.one_of(st.emails().map(str), anything)
name = st.one_of(st.fixed_dictionaries({"first": anything, "last": anything}), anything)


@st.composite
def district(draw) -> dict[str, list]:
    def user_ids(kind: int, count: int) -> list[str]:
        return [f"5e5e5e5e{kind:02x}{n:014x}" for n in range(count)]

    students = [
        {"id": sid, "district": draw(st.one_of(st.just(DISTRICT), anything)), "name": draw(name),
         "email": draw(maybe_email),
         "roles": draw(st.one_of(st.fixed_dictionaries({"student": st.fixed_dictionaries({
             "school": maybe_school, "grade": maybe_grade, "dob": anything, "gender": anything,
             "iep_status": anything, "frl_status": anything, "schools": anything})}), anything))}
        for sid in user_ids(3, draw(st.integers(1, 25)))
    ]
    teachers = [
        {"id": tid, "district": DISTRICT, "name": draw(name), "email": draw(maybe_email),
         "roles": {"teacher": {"school": draw(maybe_school), "title": draw(anything)}}}
        for tid in user_ids(4, draw(st.integers(1, 6)))
    ]
    sections = [
        {"id": section_id, "district": DISTRICT, "school": draw(maybe_school), "name": draw(anything),
         "grade": draw(maybe_grade), "subject": draw(st.one_of(st.sampled_from(["math", "english/language arts"]), anything)),
         "teacher": draw(st.one_of(st.sampled_from([t["id"] for t in teachers]), anything)),
         "students": draw(st.one_of(st.lists(st.sampled_from([s["id"] for s in students]), max_size=10), anything)),
         "teachers": draw(anything)}
        for section_id in user_ids(7, draw(st.integers(1, 8)))
    ]
    schools = [{"id": school_id, "district": DISTRICT, "name": draw(anything), "low_grade": draw(maybe_grade),
                "high_grade": draw(maybe_grade)} for school_id in SCHOOLS]
    return {"district": [{"id": DISTRICT, "name": "Hypothesis USD"}], "school": schools, "student": students,
            "teacher": teachers, "section": sections}


@pytest.fixture(scope="module")
def hostile_sandbox():
    served = HandmadeDistrict(DISTRICT, "hypothesis-token", {})
    server = start_sandbox(SandboxData(districts=0, handmade=[served]))
    yield server, served
    server.shutdown()
    server.server_close()


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(objects=district())
def test_any_district_syncs_and_every_record_is_kept_or_rejected(objects, hostile_sandbox, tmp_path_factory, monkeypatch):
    server, served = hostile_sandbox
    served.objects = objects
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    for name in ("CLEVER_CLIENT_ID", "CLEVER_CLIENT_SECRET", "ROSTER_WAREHOUSE", "ROSTER_RULES", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLEVER_API_BASE_URL", server.env()["CLEVER_API_BASE_URL"])
    monkeypatch.setenv("CLEVER_DISTRICT_TOKENS", f"{DISTRICT}=hypothesis-token")
    monkeypatch.setenv("ROSTER_DATA_DIR", str(data_dir))
    out = io.StringIO()
    assert sync(out=out) == 0, out.getvalue()
    for entity, table, key, kind in (("student", "students", "student_id", "student"),
                                     ("teacher", "teachers", "teacher_id", "teacher"),
                                     ("section", "sections", "section_id", "section")):
        kept = {r[0] for r in warehouse_query(f"select {key} from roster.{table}")}
        rejected = {r[0] for r in warehouse_query(
            "select record_id from roster.rejected_records where entity = ? and action = 'excluded'", [entity])}
        assert kept.isdisjoint(rejected), entity
        assert kept | rejected == {o["id"] for o in objects[kind]}, entity
