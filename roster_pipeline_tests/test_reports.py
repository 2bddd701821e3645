"""School confirmation reports on the hand-made dirty district: parsed as HTML, no browser."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser
from pathlib import Path

from roster_pipeline.cli import main
from roster_pipeline.reason_codes import REASON_CODES
from roster_pipeline_tests.dirty_district import DISTRICT_ID, S1, S2, oid
from roster_pipeline_tests.test_roster_rules import dirty, query, run_sync  # noqa: F401  (fixture)


class Page(HTMLParser):
    """Tables (by id) as lists of row texts, links, and every external reference."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[str] = []
        self.external: list[str] = []
        self._table = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("href", "src"):
            if attrs.get(name) and "://" in attrs[name]:
                self.external.append(attrs[name])
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id", f"table{len(self.tables)}"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        elif tag == "link":
            self.external.append(attrs.get("href", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_each_school_page_lists_every_excluded_record_with_reason_and_fix(dirty, tmp_path, monkeypatch):
    _, data_dir = dirty
    reports = tmp_path / "liaison_reports"
    monkeypatch.setenv("ROSTER_REPORTS_DIR", str(reports))
    code, out = run_sync()
    assert code == 0, out
    folder = reports / DISTRICT_ID
    index = Page((folder / "index.html").read_text(encoding="utf-8"))
    published = dict(query(data_dir, "select school_id, school_name from roster.school_roster_summary"))
    assert sorted(index.links) == sorted(f"school_{s}.html" for s in published)
    assert [row[0] for row in index.tables["schools-table"][1:]] == sorted(published.values())

    rejected = query(data_dir, "select school_id, entity, record_id, reason_code, detail from roster.rejected_records "
                               "where action = 'excluded' and entity in ('student', 'section', 'teacher')")
    assert rejected
    for school_id in published:
        text = (folder / f"school_{school_id}.html").read_text(encoding="utf-8")
        page = Page(text)
        assert page.external == [] and "index.html" in page.links  # self-contained, links back
        rows = page.tables.get("excluded-table", [])[1:]
        mine = [r for r in rejected if r[0] == school_id]
        assert len(rows) == len(mine)
        for _, entity, record_id, reason, detail in mine:
            (row,) = [r for r in rows if r[2] == record_id]
            assert row[0] == entity and row[4] == detail
            assert row[3] == REASON_CODES[reason].meaning and row[5] == REASON_CODES[reason].fix
        # the same excluded records in the school's CSV
        with open(folder / f"school_{school_id}_excluded.csv", newline="", encoding="utf-8") as handle:
            assert {r["record_id"] for r in csv.DictReader(handle) if r["action"] == "excluded"} == {m[2] for m in mine}

    # The plain-words reasons a liaison needs, on the page of the school the record belongs to.
    s1 = Page((folder / f"school_{S1}.html").read_text(encoding="utf-8")).tables["excluded-table"]
    other = [r for r in s1 if r[2] == oid("student", 4)][0]
    assert "Other" in other[3] and "Set a numeric grade from K to 12" in other[5]
    s2 = Page((folder / f"school_{S2}.html").read_text(encoding="utf-8")).tables["excluded-table"]
    shared = [r for r in s2 if r[2] == oid("teacher", 5)][0]
    assert "Finn Wu" in shared[4] and "own school email" in shared[5]  # the other teacher is named

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
    assert len(sections) == expected and all(row[5].isdigit() for row in sections)


def test_report_command_regenerates_one_school(dirty, tmp_path, monkeypatch, capsys):
    _, data_dir = dirty
    reports = tmp_path / "again"
    monkeypatch.setenv("ROSTER_REPORTS_DIR", str(reports))
    assert run_sync()[0] == 0
    for page in (reports / DISTRICT_ID).iterdir():
        page.unlink()
    assert main(["report", "--district", DISTRICT_ID, "--school", S2]) == 0
    assert sorted(p.name for p in (reports / DISTRICT_ID).iterdir()) == sorted(
        f"school_{S2}{suffix}" for suffix in (".html", "_grades.csv", "_sections.csv", "_excluded.csv"))
    assert main(["report", "--district", DISTRICT_ID, "--school", "f" * 24]) != 0
    assert "--school" in capsys.readouterr().err


def test_pages_rendered_on_two_processes_are_the_pages_of_one(dirty, tmp_path, monkeypatch):
    """A large district's pages are written by two processes; the files must not depend on that."""
    from roster_pipeline.reports import write_reports
    from roster_pipeline.warehouse import Warehouse

    _, data_dir = dirty
    monkeypatch.setenv("ROSTER_REPORTS_DIR", str(tmp_path / "sync"))
    assert run_sync()[0] == 0
    warehouse = Warehouse(f"duckdb://{data_dir / 'warehouse.duckdb'}", data_dir / "dlt")
    one, two = tmp_path / "one", tmp_path / "two"
    assert write_reports(warehouse, DISTRICT_ID, one, parallel=False)["schools"] >= 2
    write_reports(warehouse, DISTRICT_ID, two, parallel=True)
    names = sorted(p.name for p in (one / DISTRICT_ID).iterdir())
    assert names == sorted(p.name for p in (two / DISTRICT_ID).iterdir()) and len(names) > 5
    for name in names:
        assert (one / DISTRICT_ID / name).read_bytes() == (two / DISTRICT_ID / name).read_bytes(), name
