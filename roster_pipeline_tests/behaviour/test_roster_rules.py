"""Golden tests: a hand-made dirty district through the sandbox, the engine's SQL models and checks (no Dagster run)."""

from __future__ import annotations

import copy

import pytest

from roster_pipeline_tests.fixtures.dirty_district import (
    DISTRICT_ID,
    ROSTER_TABLES,
    S1,
    S2,
    oid,
    query,
    rejected,
    run_sync,
    section,
    student,
)
from roster_pipeline_tests.fixtures.engine import sync_results
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS

# Every test here runs on both warehouses.
pytestmark = pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)


def test_every_rule_keeps_or_excludes_each_hand_made_record(dirty):
    _, data_dir = dirty
    code, out = run_sync()
    assert code == 0, out
    rejects = rejected(data_dir)

    # Grades: Kindergarten = 0, "1".."12" kept; every other value excluded with its own code.
    students = dict(query(data_dir, "select student_id, grade from roster.students"))
    assert students == {oid("student", 1): 0, oid("student", 2): 1, oid("student", 3): 12,
                        oid("student", 13): 3, oid("student", 14): 5, oid("student", 15): 4}
    expected_student_reasons = {
        4: ("GRADE_OTHER", 'grade is "Other"'), 5: ("GRADE_MISSING", "grade is missing (empty or null)"),
        6: ("GRADE_MISSING", "grade is missing (empty or null)"),
        7: ("GRADE_POSTGRADUATE", 'grade is "PostGraduate"'), 8: ("GRADE_UNGRADED", 'grade is "Ungraded"'),
        9: ("GRADE_OUT_OF_RANGE", 'grade is "PreKindergarten"'), 10: ("GRADE_OUT_OF_RANGE", 'grade is "13"'),
        11: ("GRADE_NOT_NUMERIC", 'grade is "K"'), 12: ("GRADE_NOT_NUMERIC", 'grade is "Grade 3"'),
        16: ("GRADE_NOT_NUMERIC", 'grade is "５"'),
    }
    for n, (code_, detail) in expected_student_reasons.items():
        assert rejects[f"{oid('student', n)}:excluded"] == (code_, "excluded", detail), n
    assert rejects[f"{oid('student', 17)}:excluded"][0] == "SCHOOL_NOT_IN_SCOPE"  # role was not an object

    # Student email and birth date: normalized, or nulled with a field_nulled record.
    detail = dict(query(data_dir, "select student_id, email || '|' || coalesce(cast(birth_date as varchar), '') "
                                  "from roster.students where student_id in (?, ?)", [oid("student", 1), oid("student", 2)]))
    assert detail[oid("student", 1)] == "kid.one@students.lincoln.k12.us|2020-03-07"
    assert query(data_dir, "select email, birth_date from roster.students where student_id = ?", [oid("student", 2)]) == [
        (None, __import__("datetime").date(2019, 9, 1))]
    assert rejects[f"{oid('student', 2)}:field_nulled"] == (
        "STUDENT_EMAIL_INVALID", "field_nulled",
        'email "not-an-email" is not a valid address (it does not match the rules profile\'s student_pattern); email set to NULL')
    assert rejects[f"{oid('student', 3)}:field_nulled"][0] == "STUDENT_DOB_INVALID"
    assert '"2/30/2008"' in rejects[f"{oid('student', 3)}:field_nulled"][2]

    # Teacher emails: trimmed and lower-cased; missing, malformed and shared ones excluded.
    teachers = dict(query(data_dir, "select teacher_id, email from roster.teachers"))
    assert teachers == {oid("teacher", 1): "ana.lopez@lincoln.k12.us", oid("teacher", 7): "gia.rossi@roosevelt.k12.us"}
    assert rejects[f"{oid('teacher', 2)}:excluded"] == ("TEACHER_EMAIL_MISSING", "excluded", "email is missing (empty or null)")
    assert rejects[f"{oid('teacher', 3)}:excluded"] == ("TEACHER_EMAIL_MISSING", "excluded", "email is missing (empty or null)")
    assert rejects[f"{oid('teacher', 4)}:excluded"][0] == "TEACHER_EMAIL_INVALID"
    for mine, other in ((5, "Finn Wu"), (6, "Eve Stone")):
        code_, _, text = rejects[f"{oid('teacher', mine)}:excluded"]
        assert code_ == "TEACHER_EMAIL_DUPLICATE" and other in text and "shared@roosevelt.k12.us" in text

    # Sections: math and ELA only, processable grade, kept primary teacher.
    sections = dict(query(data_dir, "select section_id, subject || ':' || grade from roster.sections"))
    assert sections == {oid("section", 1): "math:0", oid("section", 2): "ela:1", oid("section", 5): "math:12"}
    assert rejects[f"{oid('section', 3)}:excluded"] == ("SECTION_SUBJECT_NOT_IN_SCOPE", "excluded", 'subject is "science"')
    assert rejects[f"{oid('section', 4)}:excluded"][0] == "SECTION_TEACHER_EXCLUDED"
    assert "TEACHER_EMAIL_DUPLICATE" in rejects[f"{oid('section', 4)}:excluded"][2]
    assert rejects[f"{oid('section', 6)}:excluded"] == ("GRADE_OTHER", "excluded", 'grade is "Other"')
    assert rejects[f"{oid('section', 7)}:excluded"] == ("SECTION_TEACHER_EXCLUDED", "excluded", "the section has no primary teacher")
    assert rejects[f"{oid('section', 8)}:excluded"][0] == "GRADE_OUT_OF_RANGE"

    # Enrollments only between kept students and kept sections, with the section's teacher.
    enrollments = set(query(data_dir, "select section_id, student_id, period_name, teacher_email from roster.enrollments"))
    s, st = (lambda n: oid("section", n)), (lambda n: oid("student", n))
    assert enrollments == {
        (s(1), st(1), "Math K - P1", "ana.lopez@lincoln.k12.us"), (s(1), st(2), "Math K - P1", "ana.lopez@lincoln.k12.us"),
        (s(1), st(13), "Math K - P1", "ana.lopez@lincoln.k12.us"), (s(2), st(2), "ELA 1 - P2", "ana.lopez@lincoln.k12.us"),
        (s(2), st(14), "ELA 1 - P2", "ana.lopez@lincoln.k12.us"), (s(5), st(3), "Math 12 - P2", "gia.rossi@roosevelt.k12.us"),
    }

    # Admins: staff → school admins (one row per school, none invented), district_admin → district admin.
    admins = set(query(data_dir, "select user_id, role, school_id, email from roster.admins"))
    assert admins == {
        (oid("staff", 1), "school_admin", S1, "paula.principal@district.org"),
        (oid("staff", 1), "school_admin", S2, "paula.principal@district.org"),
        (oid("staff", 2), "school_admin", None, "carl@district.org"),
        (oid("district_admin", 1), "district_admin", None, "dana@district.org"),
    }

    # Demographics: Y/N flags and FRL statuses.
    demo = {r[0]: r[1:] for r in query(data_dir, "select student_id, special_education, frl_status, frl_eligible, ell, "
                                                 "section_504, gifted from roster.demographics")}
    assert demo[st(1)] == (True, "free", True, False, None, True)
    assert demo[st(2)] == (False, "reduced", True, False, False, False)
    assert demo[st(3)] == (None, "paid", False, False, False, False)
    assert demo[st(13)] == (True, "other", None, False, False, False)  # iep "Yes" means "Y"
    assert demo[st(14)] == (False, None, None, False, False, False)
    assert set(demo) == set(students)

    # Hostile shapes end as kept records (or rejected ones above), never a crash.
    names = dict(query(data_dir, "select student_id, coalesce(first_name, '<null>') || '|' || coalesce(last_name, '<null>') "
                                 "from roster.students"))
    assert names[st(13)] == "Zoë|Ñúñez-Łukasz 李"
    assert names[st(14)] == "<null>|<null>"
    assert names[st(15)] == "A" * 10240 + "|<null>"
    assert query(data_dir, "select birth_date from roster.students where student_id = ?", [st(15)]) == [
        (__import__("datetime").date(2015, 4, 5),)]

    # The school summary counts what the liaison must confirm.
    summary = {r[0]: r[1:] for r in query(
        data_dir, "select school_id, students, teachers, sections, enrollments, excluded_students, excluded_sections, "
                  "students_grade_k from roster.school_roster_summary")}
    assert summary[S1] == (5, 1, 2, 5, 9, 1, 1)  # student 17 names no school, so no school counts it
    assert summary[S2] == (1, 1, 1, 1, 1, 4, 0)

    # Every excluded or nulled record has exactly one explained row per reason.
    counts = query(data_dir, "select count(*), count(distinct record_id || action) from roster.rejected_records")
    assert counts[0][0] == counts[0][1]


def test_a_failing_contract_blocks_the_publish_and_keeps_the_previous_version(dirty, tmp_path, monkeypatch):
    district, data_dir = dirty
    assert run_sync()[0] == 0
    before = {t: query(data_dir, f"select count(*) from roster.{t}")[0][0] for t in ROSTER_TABLES}
    # A rules profile that lets any teacher email through: the malformed address of teacher 4
    # reaches the teachers table, and the pandera contract (well-formed emails) must stop it.
    rules = tmp_path / "lax.toml"
    rules.write_text("[emails]\nteacher_pattern = '.*'\ncheck_syntax = false\n")
    monkeypatch.setenv("ROSTER_RULES", str(rules))
    done = sync_results()[DISTRICT_ID]
    assert not done.published
    after = {t: query(data_dir, f"select count(*) from roster.{t}")[0][0] for t in ROSTER_TABLES}
    assert after == before  # the previous complete version is still what readers see
    assert query(data_dir, "select count(*) from roster.teachers where email = 'dev.patel-at-roosevelt'") == [(0,)]
    # The failing check says what failed, with the record ids (never the values), for the UI.
    failed = [c for c in done.roster.contracts if not c.passed]
    assert [c.table for c in failed] == ["teachers"]
    assert failed[0].failure_count >= 1
    assert oid("teacher", 4) in failed[0].failures_markdown
    assert "dev.patel-at-roosevelt" not in failed[0].failures_markdown
    assert "str_matches" in failed[0].failures_markdown
    out = done.roster.failure
    assert "roster.teachers failed its pandera contract" in out


def test_foreign_district_objects_are_rejected_and_repeated_ids_kept_once(dirty):
    district, data_dir = dirty
    repeated = copy.deepcopy(district.objects["student"][0])
    district.objects["student"].append(repeated)  # the same student served twice, on another page
    foreign = student(50, "3", first="Foreign")
    foreign["district"] = "f" * 24
    district.objects["student"].append(foreign)
    stray = section(20, "Math 3 - P7", "math", "3", 1, [1])
    stray["district"] = "f" * 24
    district.objects["section"].append(stray)
    code, out = run_sync()
    assert code == 0, out
    assert query(data_dir, "select count(*) from roster.students where student_id = ?", [oid("student", 1)]) == [(1,)]
    assert query(data_dir, "select count(*) from roster.enrollments where student_id = ? and section_id = ?",
                 [oid("student", 1), oid("section", 1)]) == [(1,)]
    rejects = rejected(data_dir)
    for record in (oid("student", 50), oid("section", 20)):
        code_, _, detail = rejects[f"{record}:excluded"]
        assert code_ == "DISTRICT_MISMATCH" and "f" * 24 in detail and DISTRICT_ID in detail
    assert query(data_dir, "select count(*) from roster.enrollments where section_id = ?", [oid("section", 20)]) == [(0,)]


def test_rules_profile_changes_the_output(dirty, tmp_path, monkeypatch):
    _, data_dir = dirty
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[subjects]\nkeep = ["math", "ela", "science"]\n'
        '[grades.numbers]\n"13" = 13\n'
    )
    monkeypatch.setenv("ROSTER_RULES", str(rules))
    assert run_sync()[0] == 0
    sections = dict(query(data_dir, "select section_id, subject || ':' || grade from roster.sections"))
    assert sections[oid("section", 3)] == "science:3"
    assert sections[oid("section", 8)] == "ela:13"
    assert query(data_dir, "select grade from roster.students where student_id = ?", [oid("student", 10)]) == [(13,)]
    assert (oid("section", 8), oid("student", 10)) in set(query(data_dir, "select section_id, student_id from roster.enrollments"))

    # Scope this district to one school, through a per-district override.
    rules.write_text(f'[districts."{DISTRICT_ID}".scope]\nschools = ["{S2}"]\n')
    assert run_sync()[0] == 0
    assert query(data_dir, "select school_id from roster.schools") == [(S2,)]
    assert {r[0] for r in query(data_dir, "select school_id from roster.students")} == {S2}
    scope_rejects = query(data_dir, "select entity, record_id from roster.rejected_records where reason_code = 'SCHOOL_NOT_IN_SCOPE'")
    assert ("school", S1) in scope_rejects and ("student", oid("student", 1)) in scope_rejects
    assert ("teacher", oid("teacher", 1)) in scope_rejects and ("section", oid("section", 1)) in scope_rejects
    assert ("admin", oid("staff", 1)) in scope_rejects
    assert query(data_dir, "select count(*) from roster.students where grade = 13") == [(0,)]  # back to default grades


def test_a_malformed_rules_file_fails_fast_naming_the_variable(dirty, tmp_path, monkeypatch, capsys):
    from roster_pipeline.cli import main

    rules = tmp_path / "bad.toml"
    rules.write_text('[grades]\nexcluded = { Other = "NOT_A_CODE" }\n')
    monkeypatch.setenv("ROSTER_RULES", str(rules))
    assert main(["sync"]) == 2
    err = capsys.readouterr().err
    assert "ROSTER_RULES" in err and "NOT_A_CODE" in err


def test_schema_yml_documents_every_model_and_column_the_sql_produces(dirty):
    from roster_pipeline.modeling.project import SqlProject

    _, data_dir = dirty
    assert run_sync()[0] == 0
    project = SqlProject()
    assert set(project.docs) == set(project.models)
    for name, model in project.models.items():
        produced = [r[0] for r in query(
            data_dir, "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                      "order by ordinal_position", [model.schema, name])]
        assert produced, name
        documented = set(project.docs[name]["columns"])
        if model.layer == "intermediate":
            # Intermediate models document the columns they add; the rest pass through from what they ref.
            inherited = {c for ref in model.refs if ref in project.docs for c in project.docs[ref]["columns"]}
            assert set(produced) <= documented | inherited, (name, set(produced) - documented - inherited)
            assert documented <= set(produced), (name, documented - set(produced))
        else:
            assert produced == list(project.docs[name]["columns"]), name


def test_readers_see_a_whole_district_version_while_it_is_published(dirty):
    """Students and enrollments always come from the same complete version, never a mix or a gap."""
    import threading

    from roster_pipeline.modeling.project import SqlProject
    from roster_pipeline.publishing.publish import publish_district, publish_plan
    from roster_pipeline.warehouse.connection import Warehouse

    district, data_dir = dirty
    assert run_sync()[0] == 0
    version_a = query(data_dir, "select (select count(*) from roster.students), (select count(*) from roster.enrollments)")[0]
    district.objects["student"] = [s for s in district.objects["student"] if s["id"] != oid("student", 2)]

    seen, stop = set(), threading.Event()

    def read() -> None:
        # DuckDB: same process as the writer, sharing one database instance; Postgres: a session.
        with warehouse.connect() as con:
            cursor = con if warehouse.kind == "duckdb" else con.cursor()
            if warehouse.kind == "postgres":
                con.autocommit = True
            while not stop.is_set():
                cursor.execute("select (select count(*) from roster.students), (select count(*) from roster.enrollments)")
                seen.add(tuple(cursor.fetchone()))

    from roster_pipeline.settings import warehouse_url

    warehouse = Warehouse(warehouse_url(), data_dir / "dlt")
    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert run_sync()[0] == 0
        project = SqlProject()
        plan = publish_plan(project, [m.name for m in project.marts()])
        for _ in range(10):
            with warehouse.transaction() as sql:
                publish_district(sql, DISTRICT_ID, plan)
    finally:
        stop.set()
        reader.join()
    version_b = query(data_dir, "select (select count(*) from roster.students), (select count(*) from roster.enrollments)")[0]
    assert version_b == (version_a[0] - 1, version_a[1] - 2)  # student 2 sat in two kept sections
    assert seen <= {version_a, version_b} and version_b in seen
