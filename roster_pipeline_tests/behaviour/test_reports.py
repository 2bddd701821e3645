"""School confirmation reports on the hand-made dirty district: parsed as HTML, no browser."""

from __future__ import annotations

import csv

from roster_pipeline.cli import main
from roster_pipeline.modeling.reason_codes import REASON_CODES
from roster_pipeline.reports.school_reports import DETAIL_WITHOUT_VALUE
from roster_pipeline_tests.fixtures.dirty_district import DISTRICT_ID, S1, S2, oid, query, run_sync, student
from roster_pipeline_tests.fixtures.pages import Page


def test_each_school_page_lists_every_excluded_record_with_reason_and_fix(dirty, tmp_path, monkeypatch):
    _, data_dir = dirty
    reports = tmp_path / "liaison_reports"
    monkeypatch.setenv("ROSTER_REPORTS_DIR", str(reports))
    code, out = run_sync()
    assert code == 0, out
    folder = reports / DISTRICT_ID
    index = Page((folder / "index.html").read_text(encoding="utf-8"))
    published = dict(query(data_dir, "select school_id, name from roster.school_roster_summary"))
    assert sorted(index.links) == sorted(f"school_{s}.html" for s in published)
    assert [row[0] for row in index.tables["schools-table"][1:]] == sorted(published.values())

    rejected = query(data_dir, "select school_id, entity, record_id, reason_code, detail from roster.rejected_records "
                               "where action = 'excluded' and entity in ('student', 'section', 'teacher')")
    assert rejected
    for school_id in published:
        text = (folder / f"school_{school_id}.html").read_text(encoding="utf-8")
        page = Page(text)
        assert page.external == [] and "index.html" in page.links  # self-contained, links back
        rows = page.tables.get("to-fix-table", [])[1:] + page.tables.get("by-design-table", [])[1:]
        mine = [r for r in rejected if r[0] == school_id]
        assert len(rows) == len(mine)
        for _, entity, record_id, reason, detail in mine:
            (row,) = [r for r in rows if r[2] == record_id]
            # a detail that quotes an email or a birth date is said without it (names stay in the warehouse)
            assert row[0] == entity and row[3] == REASON_CODES[reason].meaning
            assert row[4] == detail or (reason in DETAIL_WITHOUT_VALUE and '"' not in row[4])
            # the code's fix, or for a grade Clever does not define, the value Clever expects
            assert row[5] == REASON_CODES[reason].fix or (reason == "GRADE_NOT_NUMERIC" and row[5].startswith("Clever expects"))
        # the same excluded records in the school's CSV
        with open(folder / f"school_{school_id}_excluded.csv", newline="", encoding="utf-8") as handle:
            assert {r["record_id"] for r in csv.DictReader(handle) if r["action"] == "excluded"} == {m[2] for m in mine}

    # The plain-words reasons a liaison needs, on the page of the school the record belongs to.
    s1 = Page((folder / f"school_{S1}.html").read_text(encoding="utf-8")).tables["to-fix-table"]
    other = [r for r in s1 if r[2] == oid("student", 4)][0]
    assert "Other" in other[3] and '"Kindergarten" or 1 to 12' in other[5]
    s2 = Page((folder / f"school_{S2}.html").read_text(encoding="utf-8")).tables["to-fix-table"]
    shared = [r for r in s2 if r[2] == oid("teacher", 5)][0]
    # the other teacher is named by id (on the page too), the email and names are not
    assert oid("teacher", 6) in shared[4] and "own school email" in shared[5]
    assert shared[1] == "SIS id T5" and "Finn" not in shared[4] and "roosevelt" not in shared[4]

    # Grades against the previous sync: the first sync says so; after a re-sync the counts compare.
    grades = Page((folder / f"school_{S1}.html").read_text(encoding="utf-8")).tables["grades-table"][1:]
    assert all(row[3] == "first sync" for row in grades)
    assert sum(int(row[1]) for row in grades) == query(
        data_dir, "select count(*) from roster.students where school_id = ?", [S1])[0][0]
    assert run_sync()[0] == 0
    grades = Page((folder / f"school_{S1}.html").read_text(encoding="utf-8")).tables["grades-table"][1:]
    assert all(row[3] == "=" and row[1] == row[2] for row in grades)

    # Sections with teacher, period and enrollments, as published.
    sections = Page((folder / f"school_{S1}.html").read_text(encoding="utf-8")).tables["sections-table"][1:]
    expected = query(data_dir, "select count(*) from roster.sections where school_id = ?", [S1])[0][0]
    assert len(sections) == expected and all(row[6].isdigit() for row in sections)  # students enrolled


def test_report_command_regenerates_one_school(dirty, tmp_path, monkeypatch, capsys):
    _, data_dir = dirty
    reports = tmp_path / "again"
    monkeypatch.setenv("ROSTER_REPORTS_DIR", str(reports))
    assert run_sync()[0] == 0
    for page in (reports / DISTRICT_ID).iterdir():
        page.unlink()
    assert main(["report", "--district", DISTRICT_ID, "--school", S2]) == 0
    assert sorted(p.name for p in (reports / DISTRICT_ID).iterdir()) == sorted(
        f"school_{S2}{suffix}" for suffix in (".html", "_grades.csv", "_sections.csv", "_excluded.csv", "_changes.csv"))
    assert main(["report", "--district", DISTRICT_ID, "--school", "f" * 24]) != 0
    assert "--school" in capsys.readouterr().err


def test_pages_rendered_on_two_processes_are_the_pages_of_one(dirty, tmp_path, monkeypatch):
    """A large district's pages are written by two processes; the files must not depend on that."""
    from roster_pipeline.reports.school_reports import write_reports
    from roster_pipeline.warehouse.connection import Warehouse

    _, data_dir = dirty
    monkeypatch.setenv("ROSTER_REPORTS_DIR", str(tmp_path / "sync"))
    assert run_sync()[0] == 0
    warehouse = Warehouse(f"duckdb:///{data_dir / 'warehouse.duckdb'}", data_dir / "dlt")
    one, two = tmp_path / "one", tmp_path / "two"
    assert write_reports(warehouse, DISTRICT_ID, one, parallel=False)["schools"] >= 2
    write_reports(warehouse, DISTRICT_ID, two, parallel=True)
    names = sorted(p.name for p in (one / DISTRICT_ID).iterdir())
    assert names == sorted(p.name for p in (two / DISTRICT_ID).iterdir()) and len(names) > 5
    for name in names:
        assert (one / DISTRICT_ID / name).read_bytes() == (two / DISTRICT_ID / name).read_bytes(), name


def test_the_school_page_leads_with_what_to_fix_and_folds_what_is_not_processed_by_design(dirty, tmp_path, monkeypatch):
    district, data_dir = dirty
    # Roosevelt High serves 9 to Clever's "13" (not a K-12 grade: read as 12); one student is in grade 7.
    district.objects["school"][1]["high_grade"] = "13"
    district.objects["student"].append(student(90, "7", school_id=S2))
    monkeypatch.setenv("ROSTER_REPORTS_DIR", str(tmp_path / "reports"))
    code, out = run_sync()
    assert code == 0, out
    folder = tmp_path / "reports" / DISTRICT_ID
    rejected = query(data_dir, "select school_id, entity, record_id, reason_code from roster.rejected_records "
                               "where action = 'excluded'")
    for school_id in (S1, S2):
        page = Page((folder / f"school_{school_id}.html").read_text(encoding="utf-8"))
        mine = [r for r in rejected if r[0] == school_id]
        to_fix = [r for r in mine if REASON_CODES[r[3]].to_fix_in_sis]
        by_design = [r for r in mine if not REASON_CODES[r[3]].to_fix_in_sis]
        assert to_fix and by_design, school_id  # both kinds on both pages, or the test proves nothing

        # The headline counts both kinds apart; right after it come the records to fix, people first.
        assert page.text["to-fix-count"] == str(len(to_fix)) and page.text["by-design-count"] == str(len(by_design))
        after_headline = page.outline[page.outline.index(("/div", "headline")) + 1:]
        assert after_headline[:2] == [("h2", "to-fix"), ("table", "to-fix-table")]
        rows = page.tables["to-fix-table"][1:]
        assert sorted(r[2] for r in rows) == sorted(r[2] for r in to_fix)
        entities = [r[0] for r in rows]
        assert entities == sorted(entities, key=["student", "teacher", "section"].index)

        # The by-design records: last, in a closed <details> whose summary gives their count.
        assert page.outline[-4:] == [("details", "by-design"), ("summary", ""), ("table", "by-design-table"),
                                     ("/details", "by-design")]
        (details,) = [attrs for tag, attrs in page.inside["by-design-table"] if tag == "details"]
        assert "open" not in details
        assert page.text["by-design-summary-count"] == str(len(by_design))
        assert sorted(r[2] for r in page.tables["by-design-table"][1:]) == sorted(r[2] for r in by_design)
        assert not any(r[2] in {b[2] for b in by_design} for r in rows)

        # The CSV holds the page's records in the page's order, saying which kind each is.
        cleared = [r[2] for r in page.tables.get("cleared-table", [])[1:]]
        with open(folder / f"school_{school_id}_excluded.csv", newline="", encoding="utf-8") as handle:
            csv_rows = list(csv.DictReader(handle))
        assert [r["record_id"] for r in csv_rows] == [r[2] for r in rows] + cleared + [
            r[2] for r in page.tables["by-design-table"][1:]]
        assert [r["to_fix_in_sis"] for r in csv_rows if r["action"] == "excluded"] == ["yes"] * len(rows) + ["no"] * len(by_design)

    # Lincoln: a subject outside math and ELA and a pre-kindergarten student need no fix.
    s1 = Page((folder / f"school_{S1}.html").read_text(encoding="utf-8"))
    assert {r[2] for r in s1.tables["by-design-table"][1:]} == {oid("section", 3), oid("student", 9)}
    assert s1.text["by-design-count"] == "2"

    # The grades the school serves (Clever's low..high), plus any other grade with students; in the CSV too.
    s2 = Page((folder / f"school_{S2}.html").read_text(encoding="utf-8"))
    expected = {S1: ["Kindergarten", "1", "2", "3", "4", "5"], S2: ["7", "9", "10", "11", "12"]}
    for school_id, page in ((S1, s1), (S2, s2)):
        grades = page.tables["grades-table"][1:]
        assert [row[0] for row in grades] == expected[school_id]
        with open(folder / f"school_{school_id}_grades.csv", newline="", encoding="utf-8") as handle:
            assert [[r["grade"], r["students"]] for r in csv.DictReader(handle)] == [row[:2] for row in grades]
    assert dict((row[0], row[1]) for row in s2.tables["grades-table"][1:])["7"] == "1"

    # Kindergarten in plain words: what Clever expects for a "K", and never a bare "K" as a grade shown.
    (k_row,) = [r for r in s1.tables["to-fix-table"] if r[2] == oid("student", 11)]
    assert k_row[4] == 'grade is "K"' and k_row[5] == 'Clever expects "Kindergarten", not "K": correct the grade in the SIS.'
    assert 'Clever expects "Kindergarten" (not "K")' in REASON_CODES["GRADE_NOT_NUMERIC"].fix
    (math_k,) = [r for r in s1.tables["sections-table"] if r[0] == "Math K - P1"]
    assert math_k[3] == "Kindergarten"
    assert "K" not in [row[0] for row in s1.tables["grades-table"]] + [row[3] for row in s1.tables["sections-table"]]
