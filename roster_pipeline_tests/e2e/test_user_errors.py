"""Every mistake a user can make gets one sentence on stderr, a non-zero exit, and no change.

Each case runs the real `roster-pipeline` command in its own process (as a person would), after
a good sync, and the published `roster` tables must be exactly what that sync published.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from roster_pipeline_tests.fixtures.warehouses import POSTGRES, WAREHOUSE_KINDS, warehouse_query

ROSTER_TABLES = ("students", "teachers", "sections", "enrollments", "rejected_records")
HOLD_FILE = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('holding', flush=True); time.sleep(120)"


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "roster_pipeline.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


def published() -> dict[str, list]:
    return {t: sorted(map(repr, warehouse_query(f"select * from roster.{t}"))) for t in ROSTER_TABLES}


def assert_one_sentence(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit code 2, nothing on stdout, exactly one line on stderr that says what is wrong."""
    err = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, err[-2000:])
    assert "Traceback" not in err and err.count("\n") == 0, err[-2000:]
    assert err.startswith("roster-pipeline: ") and err.endswith("."), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def mistakes_before_any_warehouse_work(tmp_path: Path) -> None:
    """A refused client secret, a district without a token, bad values in the rules file."""
    wrong_secret = assert_one_sentence(cli("sync", env={"CLEVER_CLIENT_SECRET": "not-the-secret"}),
                                       "CLEVER_CLIENT_SECRET", "refused")
    assert "not-the-secret" not in wrong_secret
    assert_one_sentence(cli("sync", "--district", "0123456789abcdef01234567"),
                        "--district 0123456789abcdef01234567", "no Clever token")
    rules = tmp_path / "rules.toml"
    rules.write_text('[grades.numbers]\n"5" = "five"\n')
    assert_one_sentence(cli("sync", env={"ROSTER_RULES": str(rules)}), "ROSTER_RULES", "grades.numbers.5", "'five'")
    rules.write_text('[subjects]\nkeep = "math"\n')  # a bare string would be read letter by letter
    assert_one_sentence(cli("sync", env={"ROSTER_RULES": str(rules)}), "ROSTER_RULES", "subjects.keep")
    # The API's address without its version, or with another one: every collection answers 404.
    api = os.environ["CLEVER_API_BASE_URL"]
    for wrong in (api.replace("/v3.1", "/v3"), api.replace("/v3.1", "")):
        assert_one_sentence(cli("sync", env={"CLEVER_API_BASE_URL": wrong}), "check CLEVER_API_BASE_URL", "/v3.1")
    tokens_url = os.environ["CLEVER_OAUTH_TOKENS_URL"]
    assert_one_sentence(cli("sync", env={"CLEVER_OAUTH_TOKENS_URL": tokens_url + "/v2"}),
                        "404", "check CLEVER_OAUTH_TOKENS_URL")


@pytest.mark.parametrize("warehouse_env", WAREHOUSE_KINDS, indirect=True)
def test_mistakes_print_one_sentence_and_leave_the_published_roster_alone(pipeline_env, sandbox, warehouse_env, tmp_path):
    assert cli("sync").returncode == 0
    before = published()
    assert len(before["students"]) > 100

    if warehouse_env == "duckdb":  # these stop before the warehouse is opened: one warehouse kind is enough
        mistakes_before_any_warehouse_work(tmp_path)
    unknown = "0123456789abcdef01234567"  # well formed, never synced here: no empty index, no folder
    assert_one_sentence(cli("report", "--district", unknown), f"--district {unknown}", "no published roster")
    assert not list(tmp_path.rglob(unknown))
    if warehouse_env == "postgres":
        database = os.environ["ROSTER_WAREHOUSE"].rsplit("/", 1)[1]
        down = assert_one_sentence(cli("sync", env={"ROSTER_WAREHOUSE": f"postgresql://postgres:pw@127.0.0.1:1/{database}"}),
                                   "ROSTER_WAREHOUSE", "127.0.0.1:1", "Connection refused")
        assert "pw@" not in down
        assert_one_sentence(cli("sync", env={"ROSTER_WAREHOUSE": f"{POSTGRES.replace('postgres@', 'no_such_login@')}/{database}"}),
                            "ROSTER_WAREHOUSE", 'role "no_such_login" does not exist')
    else:
        warehouse_file = pipeline_env / "warehouse.duckdb"
        holder = subprocess.Popen([sys.executable, "-c", HOLD_FILE, str(warehouse_file)], stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "holding"
            assert_one_sentence(cli("sync"), str(warehouse_file), f"PID {holder.pid}",
                                str(pipeline_env / "warehouse_for_analysts.duckdb"))
        finally:
            holder.kill()
            holder.wait()
        assert_one_sentence(cli("sync", env={"ROSTER_WAREHOUSE": "duckdb:////proc/roster/warehouse.duckdb"}),
                            "/proc/roster", "cannot be written")
        (tmp_path / "a_file").write_text("")
        assert_one_sentence(cli("sync", env={"ROSTER_WAREHOUSE": f"duckdb:///{tmp_path}/a_file/warehouse.duckdb"}),
                            "ROSTER_WAREHOUSE", "is a file, not a folder")
        assert_one_sentence(cli("sync", env={"ROSTER_WAREHOUSE": "duckdb://host/warehouse.duckdb"}), "ROSTER_WAREHOUSE")
    assert published() == before


def test_both_standard_duckdb_url_spellings_work(pipeline_env, sandbox, tmp_path):
    """`duckdb:////abs/file` is absolute and `duckdb:///file` relative to the working directory (SQLAlchemy, dlt)."""
    district = sandbox.data.specs[1].id
    absolute = tmp_path / "absolute" / "warehouse.duckdb"
    assert cli("sync", "--district", district, env={"ROSTER_WAREHOUSE": f"duckdb:///{absolute}"}).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    relative = cli("sync", "--district", district, env={"ROSTER_WAREHOUSE": "duckdb:///relative/warehouse.duckdb"},
                   cwd=elsewhere)
    assert relative.returncode == 0, relative.stderr[-2000:]
    import duckdb

    counts = []
    for path in (absolute, elsewhere / "relative" / "warehouse.duckdb"):
        with duckdb.connect(str(path), read_only=True) as conn:
            counts.append(conn.execute("select count(*) from roster.students").fetchone()[0])
    assert counts[0] == counts[1] > 0


def test_settings_read_duckdb_urls_the_standard_way(tmp_path, monkeypatch):
    from roster_pipeline.settings import ConfigError, warehouse_url

    monkeypatch.chdir(tmp_path)
    assert warehouse_url({"ROSTER_WAREHOUSE": "duckdb:////srv/roster/w.duckdb"}) == "duckdb:////srv/roster/w.duckdb"
    assert warehouse_url({"ROSTER_WAREHOUSE": "duckdb:///w.duckdb"}) == f"duckdb:///{tmp_path / 'w.duckdb'}"
    assert warehouse_url({"ROSTER_DATA_DIR": str(tmp_path)}) == f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    for bad in ("duckdb:///", "duckdb:///:memory:", f"duckdb:///{tmp_path}/", "duckdb://w.duckdb", "postgresql://h:port/db"):
        with pytest.raises(ConfigError, match="ROSTER_WAREHOUSE"):
            warehouse_url({"ROSTER_WAREHOUSE": bad})
    with pytest.raises(ConfigError, match="folder"):
        warehouse_url({"ROSTER_WAREHOUSE": f"duckdb:///{tmp_path}"})


def test_a_blocked_sync_is_one_paragraph(own_sandbox, tmp_path):
    """A blocked publish is a designed outcome: the district, what happened, each table's sentence and
    the fix once, on stdout; no Dagster error record or stack trace on the terminal (they stay in the run's log)."""
    import httpx

    server = own_sandbox(11, 300)
    assert cli("sync").returncode == 0
    school = warehouse_query("select school_id from roster.school_roster_summary order by students desc limit 1")[0][0]
    httpx.post(f"{server.base_url}/sandbox/share-school", json={"school": school, "shared": False},
               timeout=60).raise_for_status()

    blocked = cli("sync")
    assert blocked.returncode == 1, blocked.stderr[-2000:]
    assert blocked.stderr == "", blocked.stderr[-3000:]
    lines = blocked.stdout.strip().splitlines()
    assert len(lines) < 16 and "Traceback" not in blocked.stdout and "Stack Trace" not in blocked.stdout, lines
    said = [line for line in lines if ": done, " not in line]  # the paging progress, one line per collection
    district_id = warehouse_query("select district_id from roster.districts")[0][0]
    assert said[0].startswith("district ") and district_id in said[0] and "FAILED" in said[0]
    assert said[1] == f"  roster_models: District {district_id} not published; the previous version stays."
    assert [line.split(":")[0] for line in said[2:4]] == ["  check roster/students", "  check roster/enrollments"]
    assert said[4].startswith("  If the change is real, approve it with ") and said[4].count("--accept-mass-change") == 1
    assert blocked.stdout.count("--accept-mass-change") == 1 and said[5] == "0 of 1 districts synced."


def test_a_failed_sync_is_not_called_killed_later(pipeline_env, sandbox):
    """A run that failed while paging Clever leaves its extract behind as a killed one would; the next
    sync discards it and says the earlier sync did not finish, not that it was killed."""
    import httpx

    district = sandbox.data.specs[0].id
    # The address check and the first collections pass; every later request is refused.
    httpx.post(f"{sandbox.base_url}/sandbox/faults", json={"status": 400, "after": 4, "count": 1000},
               timeout=60).raise_for_status()
    try:
        failed = cli("sync", "--district", district)
    finally:
        sandbox.faults.configure({})
    assert failed.returncode == 1 and "Traceback" not in failed.stdout + failed.stderr, failed.stdout[-2000:]
    again = cli("sync", "--district", district)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "an earlier sync that did not finish left" in again.stderr, again.stderr[-2000:]
    assert "killed" not in (failed.stdout + failed.stderr + again.stdout + again.stderr).lower()


def test_every_command_says_what_it_does_and_its_defaults():
    top = cli("--help")
    assert top.returncode == 0
    commands = top.stdout.split("{", 1)[1].split("}", 1)[0].split(",")
    assert {"sync", "status", "approve", "report", "sandbox", "demo"} <= set(commands)
    for command in commands:
        shown = cli(command, "--help")
        assert shown.returncode == 0, shown.stderr
        description = shown.stdout.split("\n\n")[1]
        assert "\n" not in description.strip() or len(description) < 120, (command, description)
        assert description.strip().endswith("."), (command, description)
    sandbox = " ".join(cli("sandbox", "--help").stdout.split())
    for default in ("(default: 127.0.0.1)", "(default: 8765)", "(default: 3)", "(default: 5000)", "(default: 42)"):
        assert default in sandbox, default
    assert "(default: None)" not in sandbox and "(default: False)" not in sandbox


def test_the_demo_names_its_districts_and_ends_with_the_dagster_ui_line(tmp_path):
    data = tmp_path / "data"
    env = {name: "" for name in ("CLEVER_DISTRICT_TOKENS", "ROSTER_WAREHOUSE", "DAGSTER_HOME")}
    demo = cli("demo", "--districts", "1", "--students", "200", env={**env, "ROSTER_DATA_DIR": str(data)}, cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    lines = demo.stdout.strip().splitlines()
    listed = lines[lines.index("Districts:") + 1]
    assert listed.startswith("  ") and listed.endswith(")") and " (" in listed, listed  # "  Name (id)"
    assert lines[-1].strip().startswith("DAGSTER_HOME=") and f"ROSTER_DATA_DIR={data} " in lines[-1]
    assert lines[-1].endswith("dg dev -w workspace.yaml"), lines[-1]
