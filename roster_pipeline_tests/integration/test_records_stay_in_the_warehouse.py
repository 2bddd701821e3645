"""Student records live only in the warehouse (issue 27, item 2), on DuckDB and on Postgres.

A student and a teacher with a planted, distinctive name are synced (one student kept, one to fix
in the SIS, so the school pages have something to say about both). Then every file under the data
folder, the reports folder and DAGSTER_HOME is read byte for byte: only the DuckDB warehouse files
may hold the name (dlt's load packages, the pages and CSVs, Dagster's storage may not). What we
wrote is its owner's only (another login cannot read it), the analysts' copy carries no
demographics, and after `forget --yes` no file holds the name or anything of the district.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
from pathlib import Path

import duckdb
import pytest

from roster_pipeline.cli import main
from roster_pipeline.modeling.project import sql_project
from roster_pipeline_tests.fixtures.dirty_district import DISTRICT_ID, TOKEN, student, teacher
from roster_pipeline_tests.fixtures.warehouses import WAREHOUSE_KINDS, warehouse_query

PLANTED = "Quillonbright"  # in no word list, no sandbox name, no Dagster text
DUCKDB_WAREHOUSE_FILES = {"warehouse.duckdb", "warehouse_for_analysts.duckdb", "warehouse_demographics.duckdb"}


def files_holding(folder: Path, needle: str) -> set[str]:
    """Every file under `folder` whose bytes hold `needle` (as UTF-8 or UTF-16, as SQLite may store text)."""
    spellings = [needle.encode(), needle.encode("utf-16-le")]
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and any(s in p.read_bytes() for s in spellings)}


def plant(district) -> None:
    district.upsert("student", student(40, "4", first="Ada", last=PLANTED))  # kept
    district.upsert("student", student(41, "K", first="Bo", last=PLANTED))  # to fix: "K" is not a Clever grade
    district.upsert("teacher", teacher(40, "Cy", PLANTED, "cy.q@lincoln.k12.us"))


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_a_planted_name_is_only_in_the_warehouse_and_forget_removes_every_trace(dirty, warehouse_env, capsys):
    district, data_dir = dirty
    plant(district)
    assert main(["sync"]) == 0, capsys.readouterr()  # as a user runs it (the command sets the file modes)
    assert warehouse_query("select count(*) from roster.students where last_name = ?", [PLANTED]) == [(1,)]
    assert warehouse_query("select count(*) from roster.rejected_records where record_name like ?",
                           [f"%{PLANTED}%"]) == [(1,)]
    # The school pages were written (with the student to fix), and every file was looked at.
    pages = data_dir / "reports" / DISTRICT_ID
    assert len(list(pages.glob("school_*.html"))) == 2
    assert (data_dir / "dagster_home").is_dir() and any((data_dir / "dlt").rglob("*"))

    holding = files_holding(data_dir, PLANTED)
    allowed = DUCKDB_WAREHOUSE_FILES if warehouse_env == "duckdb" else set()
    assert holding <= allowed, holding - allowed
    if warehouse_env == "duckdb":
        assert "warehouse.duckdb" in holding  # the scan finds the name where it belongs
    assert files_holding(data_dir, TOKEN) == set()  # the district token: in no file at all

    # Every folder is its owner's; every file too, but the analysts' copy, which its group may read.
    for path in [data_dir, *data_dir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, (path, oct(mode))
        elif path.name == "warehouse_for_analysts.duckdb":
            assert mode == 0o640, (path, oct(mode))
        elif not path.name.endswith(".lock"):  # filelock's empty lock file holds nothing
            assert mode & 0o077 == 0, (path, oct(mode))
    if os.geteuid() == 0:  # another login (nobody) cannot read what we wrote
        target = data_dir / ("warehouse_for_analysts.duckdb" if warehouse_env == "duckdb" else "reports")
        denied = subprocess.run(["runuser", "-u", "nobody", "--", "ls", "-R", str(target)], capture_output=True)
        assert denied.returncode != 0 and b"Permission denied" in denied.stderr

    if warehouse_env == "duckdb":  # no roles in DuckDB: demographics go to their own copy
        access = sql_project().access_classes
        with duckdb.connect(str(data_dir / "warehouse_for_analysts.duckdb"), read_only=True) as con:
            analysts = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        with duckdb.connect(str(data_dir / "warehouse_demographics.duckdb"), read_only=True) as con:
            restricted = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
            assert con.execute("select count(*) from roster.demographics").fetchone()[0] > 0
        assert restricted == {"demographics", "demographics_history"}
        assert analysts == {t for t, c in access.items() if c == "reader"}
        assert not analysts & restricted

    # Every table the publish wrote has an access class: none is left to chance.
    published = {r[0] for r in warehouse_query(
        "select table_name from information_schema.tables where table_schema = 'roster'")}
    assert published and published <= set(sql_project().access_classes), published - set(sql_project().access_classes)

    assert main(["forget", "--district", DISTRICT_ID, "--yes"]) == 0
    said = capsys.readouterr().out
    assert "school pages and CSVs removed" in said and "runs with their logs and check results deleted" in said
    assert files_holding(data_dir, PLANTED) == set()
    assert not pages.exists() and not (data_dir / "dlt" / f"clever_{DISTRICT_ID}").exists()
    assert files_holding(data_dir / "dagster_home", DISTRICT_ID) == set()
    assert warehouse_query("select count(*) from roster.students") == [(0,)]


def test_forget_asks_first_and_refuses_without_a_terminal(dirty, capsys, monkeypatch):
    _, data_dir = dirty
    assert main(["sync"]) == 0, capsys.readouterr()
    data_dir.chmod(0o755)  # as an older version left it: the next command narrows it
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal, and no --yes
    assert main(["forget", "--district", DISTRICT_ID]) == 2
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert "confirm on a terminal, or pass --yes" in capsys.readouterr().err
    assert warehouse_query("select count(*) from roster.students")[0][0] > 0  # nothing was removed
