"""Co-teachers: `roster.section_teachers` holds every published teacher of each published section, its
primary teacher marked; a section whose Clever `teacher` is empty takes the first of its teacher list
and the change log says so; a co-teacher who is not published is accounted for in rejected_records.
A generated district is checked against what the sandbox serves (read with plain httpx), a hand-made
one case by case through an incremental sync and the full refresh after it. DuckDB and Postgres.
"""

from __future__ import annotations

import copy
import csv
import io

import httpx
import pytest

from roster_pipeline_tests.fixtures.dirty_district import S1, S2, oid, section, teacher
from roster_pipeline_tests.fixtures.engine import sync
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS, warehouse_query

pytestmark = pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)

FROM_LIST = "primary teacher taken from the section's teacher list"


def run_sync(**options) -> tuple[int, str]:
    out = io.StringIO()
    return sync(out=out, **options), out.getvalue()


def served_sections(server) -> dict[str, dict]:
    """The sections the sandbox serves, by id: paged with plain httpx, not the pipeline's client."""
    base_url, (spec,) = server.env()["CLEVER_API_BASE_URL"], server.data.specs
    token = spec.token
    found, url, params = {}, f"{base_url}/sections", {"limit": 10000}
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as http:
        while url:
            body = http.get(url, params=params).raise_for_status().json()
            found.update({item["data"]["id"]: item["data"] for item in body["data"]})
            more = [link["uri"] for link in body["links"] if link["rel"] == "next"]
            url, params = (base_url.split("/v3.1")[0] + more[0], None) if more else (None, None)
    return found


def links() -> set[tuple[str, str, bool]]:
    return set(warehouse_query("select section_id, teacher_id, is_primary from roster.section_teachers"))


def rejected(entity: str = "section") -> set[tuple[str, str, str, str]]:
    return set(warehouse_query("select record_id, reason_code, action, detail from roster.rejected_records "
                               "where entity = ?", [entity]))


def test_a_generated_district_publishes_every_teacher_of_its_sections(own_sandbox, warehouse_env):
    server = own_sandbox(seed=10, students=500)
    code, out = run_sync()
    assert code == 0, out
    served = served_sections(server)
    published = {s: (t, from_list) for s, t, from_list in warehouse_query(
        "select section_id, teacher_id, teacher_from_list from roster.sections")}
    teachers = {t for (t,) in warehouse_query("select teacher_id from roster.teachers")}

    expected_links, expected_dropped = set(), set()
    for section_id, (primary, from_list) in published.items():
        clever = served[section_id]
        assert primary == (clever["teacher"] or clever["teachers"][0]), section_id
        assert from_list == (clever["teacher"] is None), section_id
        expected_links.add((section_id, primary, True))
        for listed in clever["teachers"]:
            if listed != primary and listed in teachers:
                expected_links.add((section_id, listed, False))
            elif listed != primary:
                expected_dropped.add((section_id, listed))
    assert links() == expected_links
    assert {(s, detail.split()[1]) for s, code_, action, detail in rejected()
            if code_ == "SECTION_COTEACHER_EXCLUDED" and action == "link_dropped"} == expected_dropped
    assert sum(not primary for _, _, primary in expected_links) >= 3  # the sandbox co-teaches some sections
    assert any(from_list for _, from_list in published.values())  # and leaves some without `teacher`
    assert warehouse_query("select count(*) from roster.section_teachers st join roster.sections s "
                           "on s.section_id = st.section_id and s.school_id = st.school_id") == [(len(expected_links),)]

    # A section without any teacher is still excluded, as before.
    no_teacher = {s for s, obj in served.items() if obj["teacher"] is None and not obj["teachers"]}
    assert no_teacher  # the sandbox serves some
    kept_out = {record for record, code_, _, detail in rejected()
                if code_ == "SECTION_TEACHER_EXCLUDED" and detail == "the section has no primary teacher"}
    assert kept_out and kept_out <= no_teacher and not no_teacher & published.keys()

    # Enrollments keep the primary teacher's name and email, a primary from the list too.
    from_list = [s for s, (_, flag) in published.items() if flag]
    described = set(warehouse_query(
        "select e.section_id, e.teacher_id = s.teacher_id and e.teacher_email = t.email "
        "and e.teacher_last_name = t.last_name from roster.enrollments e "
        "join roster.sections s on s.section_id = e.section_id join roster.teachers t on t.teacher_id = s.teacher_id"))
    assert {flag for _, flag in described} == {True}
    assert {s for s, _ in described} & set(from_list)


def test_co_teachers_through_an_incremental_sync_and_the_full_refresh_after_it(dirty):
    district, data_dir = dirty
    objects = district.objects
    t = {n: oid("teacher", n) for n in (1, 4, 7, 8)}
    unknown = oid("teacher", 99)  # listed, but not a teacher Clever serves
    objects["teacher"].append(teacher(8, "Kai", "Moss", "kai.moss@lincoln.k12.us"))
    by_id = {s["id"]: s for s in objects["section"]}
    by_id[oid("section", 5)]["teachers"] = [t[7], t[1]]  # co-taught across schools
    objects["section"] += [
        {**section(9, "Math 2 - P3", "math", "2", 1, [13, 15]), "teachers": [t[1], t[8], t[4], unknown]},
        {**section(10, "ELA 2 - P4", "english/language arts", "2", None, [1, 14]), "teachers": [t[8], t[1]]},
        {**section(11, "Math 3 - P5", "math", "3", None, [13]), "teachers": [t[4], t[1]]},
        {**section(12, "ELA 3 - P6", "english/language arts", "3", 1, [13]), "teachers": [t[8]]},
    ]
    s = {n: oid("section", n) for n in range(1, 13)}
    code, out = run_sync()
    assert code == 0, out

    assert links() == {
        (s[1], t[1], True), (s[2], t[1], True), (s[5], t[7], True), (s[5], t[1], False),
        (s[9], t[1], True), (s[9], t[8], False),  # T4 (bad email) and the unknown id are left out
        (s[10], t[8], True), (s[10], t[1], False),  # no `teacher`: the first listed is the primary
        (s[12], t[1], True), (s[12], t[8], False),  # a list without the primary still gets it
    }
    assert dict(warehouse_query("select section_id, teacher_from_list from roster.sections")) == {
        s[1]: False, s[2]: False, s[5]: False, s[9]: False, s[10]: True, s[12]: False}
    assert {r for r in rejected() if r[0] in (s[7], s[9], s[11])} == {
        (s[7], "SECTION_TEACHER_EXCLUDED", "excluded", "the section has no primary teacher"),
        (s[9], "SECTION_COTEACHER_EXCLUDED", "link_dropped", f"co-teacher {t[4]} was excluded (TEACHER_EMAIL_INVALID)"),
        (s[9], "SECTION_COTEACHER_EXCLUDED", "link_dropped", f"co-teacher {unknown} is not in the roster"),
        # the first listed is the primary even when it is excluded: never a guess further down the list
        (s[11], "SECTION_TEACHER_EXCLUDED", "excluded", f"primary teacher {t[4]} was excluded (TEACHER_EMAIL_INVALID)"),
    }
    assert set(warehouse_query("select student_id, teacher_id, teacher_first_name, teacher_email from roster.enrollments "
                               "where section_id = ?", [s[10]])) == {
        (oid("student", 1), t[8], "Kai", "kai.moss@lincoln.k12.us"),
        (oid("student", 14), t[8], "Kai", "kai.moss@lincoln.k12.us")}

    # The school pages list each section's co-teachers, by SIS id (names stay in the warehouse).
    folder = data_dir / "reports" / district.id
    for school, section_n, co_teachers in ((S1, 9, "SIS id T8"), (S1, 10, "SIS id T1"), (S1, 1, ""),
                                           (S2, 5, "SIS id T1")):
        with open(folder / f"school_{school}_sections.csv", newline="", encoding="utf-8") as handle:
            listed = {row["section_id"]: row["co_teachers"] for row in csv.DictReader(handle)}
        assert listed[s[section_n]] == co_teachers, (school, section_n)
    page = (folder / f"school_{S1}.html").read_text(encoding="utf-8")
    assert "<th>co-teachers</th>" in page and "<td>SIS id T8</td>" in page and "Kai" not in page

    # Clever's events: T8's email breaks (no section changes with it), section 2 loses its `teacher`,
    # section 5's primary becomes its co-teacher, section 1 gains a co-teacher.
    district.upsert("teacher", {**teacher(8, "Kai", "Moss", "kai.moss.lincoln.k12.us")})
    district.upsert("section", {**copy.deepcopy(by_id[s[2]]), "teacher": None})
    district.upsert("section", {**copy.deepcopy(by_id[s[5]]), "teacher": t[1]})
    district.upsert("section", {**copy.deepcopy(by_id[s[1]]), "teachers": [t[1], t[7]]})
    code, out = run_sync(incremental=True)
    assert code == 0 and "incremental" in out, out

    assert links() == {
        (s[1], t[1], True), (s[1], t[7], False), (s[2], t[1], True), (s[5], t[1], True), (s[5], t[7], False),
        (s[9], t[1], True), (s[12], t[1], True)}
    (published_at,) = warehouse_query("select max(published_at) from roster.publishes")[0]
    logged = set(warehouse_query(
        "select entity, record_id, change, detail from roster.roster_changes where published_at = ? "
        "and entity in ('section', 'section_teacher')", [published_at]))
    assert logged == {
        ("section", s[2], "changed", FROM_LIST),
        ("section", s[5], "changed", "teacher id changed"),
        ("section", s[10], "removed", "no longer in the roster"),  # its primary, T8, was excluded
        ("section_teacher", f"{s[1]}:{t[7]}", "added", "added to the section's teachers"),
        ("section_teacher", f"{s[5]}:{t[1]}", "changed", "now the section's primary teacher"),
        ("section_teacher", f"{s[5]}:{t[7]}", "changed", "no longer the section's primary teacher"),
        *(("section_teacher", f"{section_id}:{teacher_id}", "removed", "no longer one of the section's teachers")
          for section_id, teacher_id in ((s[9], t[8]), (s[10], t[8]), (s[10], t[1]), (s[12], t[8]))),
    }
    assert warehouse_query("select school_id from roster.roster_changes where published_at = ? and record_id = ?",
                           [published_at, f"{s[5]}:{t[1]}"]) == [(S2,)]
    dropped = f"co-teacher {t[8]} was excluded (TEACHER_EMAIL_INVALID)"
    assert {(r[0], r[3]) for r in rejected() if r[3] == dropped} == {(s[9], dropped), (s[12], dropped)}

    # The full refresh of the same data publishes exactly what the incremental sync did.
    tables = ("sections", "section_teachers", "enrollments", "rejected_records")
    before = {table: sorted(map(repr, warehouse_query(f"select * from roster.{table}"))) for table in tables}
    changes = warehouse_query("select count(*) from roster.roster_changes")
    code, out = run_sync()
    assert code == 0 and "full" in out, out
    assert {table: sorted(map(repr, warehouse_query(f"select * from roster.{table}"))) for table in tables} == before
    assert warehouse_query("select count(*) from roster.roster_changes") == changes
