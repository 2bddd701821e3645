"""The built wheel is the product: installed into a new virtualenv, it syncs from an empty folder.

Nothing here imports the checkout: the wheel is built from the repository, installed with its
dependencies (pip, from the package index or pip's cache) into a virtualenv outside it, and every
command runs that virtualenv's own executables from an empty directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

from roster_pipeline_tests.fixtures.services import CLEVER_VARS, free_port

REPO = Path(__file__).resolve().parents[2]
RUN_TIME_FILES = ("roster_pipeline/dbt_like_sql/marts/_marts.yml", "roster_pipeline/dbt_like_sql/staging/_sources.yml",
                  "roster_pipeline/dbt_like_sql/macros/dedupe.sql", "roster_pipeline/dbt_like_sql/dbt_project.yml", "roster_pipeline/dbt_like_sql/seeds/reason_codes.csv",
                  "roster_pipeline/dbt_like_sql/marts/students.sql", "roster_pipeline/modeling/rules_profiles/default.toml",
                  "roster_pipeline/reports/templates/school_report.html.j2", "roster_pipeline/dagster.yaml")


@pytest.fixture(scope="session")
def installed(tmp_path_factory, worker_id) -> Path:
    """A new virtualenv holding the wheel built from this repository; its bin/ folder.

    Built once per test session: the xdist workers share it (the first builds it, the others wait
    on the lock), as pytest-xdist's docs advise for an expensive session fixture.
    """
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if worker_id != "master" else base) / "installed_wheel"
    with FileLock(f"{root}.lock"):
        if not (root / "ready").exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(REPO)],
                           check=True, capture_output=True)
            (wheel,) = (root / "dist").glob("roster_pipeline-*.whl")
            venv = root / "venv"
            started = time.monotonic()
            subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", str(wheel)],
                           check=True, capture_output=True, timeout=900)
            print(f"new virtualenv + pip install of the wheel and its dependencies: {time.monotonic() - started:.1f}s")
            (root / "ready").touch()
    return root / "venv" / "bin"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new user: no project variables, no project virtualenv on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in CLEVER_VARS and not k.startswith(("ROSTER_", "DAGSTER_", "PYTEST"))}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return {**env, **extra}


def test_the_wheel_holds_what_the_package_needs_at_run_time(installed):
    (wheel,) = installed.parent.parent.glob("dist/roster_pipeline-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        local_instance = archive.read("roster_pipeline/dagster.yaml").decode()
    assert set(RUN_TIME_FILES) <= names
    assert not any(n.startswith(("roster_pipeline_tests/", "dbt_like_sql/")) for n in names)
    assert "dagster.yaml" not in names  # the local instance's file ships inside the package only
    assert local_instance == (REPO / "dagster.yaml").read_text()


def test_the_installed_package_syncs_from_an_empty_directory(installed, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    where = subprocess.run([str(installed / "python"), "-c", "import roster_pipeline; print(roster_pipeline.__file__)"],
                           cwd=empty, env=clean_env(), capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(installed.parent)) and str(REPO) not in where

    port = free_port()
    sandbox = subprocess.Popen([str(installed / "roster-pipeline"), "sandbox", "--port", str(port), "--districts", "2",
                                "--students", "400"], cwd=empty, env=clean_env(), stdout=subprocess.PIPE, text=True)
    try:
        exports = {}
        for line in sandbox.stdout:
            if match := re.match(r"\s+export (\w+)=(\S+)", line):
                exports[match[1]] = match[2]
            if line.startswith("Press Ctrl+C"):
                break
        started = time.monotonic()
        sync = subprocess.run([str(installed / "roster-pipeline"), "sync"], cwd=empty, env=clean_env(**exports),
                              capture_output=True, text=True, timeout=600)
        seconds = time.monotonic() - started
        assert sync.returncode == 0, sync.stdout[-3000:] + sync.stderr[-3000:]
        assert "2 of 2 districts synced" in sync.stdout
        print(f"installed wheel: `roster-pipeline sync` of 2 districts from an empty directory in {seconds:.1f}s")
    finally:
        sandbox.terminate()
        try:
            sandbox.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a stop the sandbox missed must not hide the sync's result
            sandbox.kill()
            sandbox.wait(timeout=30)

    query = ("import duckdb; c = duckdb.connect('data/warehouse_for_analysts.duckdb', read_only=True); "
             "print(*[c.execute(f'select count(distinct district_id), count(*) from roster.{t}').fetchone() "
             "for t in ('students', 'sections', 'enrollments', 'rejected_records')])")
    counts = subprocess.run([str(installed / "python"), "-c", query], cwd=empty, env=clean_env(),
                            capture_output=True, text=True, check=True).stdout.split(") (")
    for table in counts:
        districts, rows = (int(x) for x in table.strip("()\n").split(","))
        assert districts == 2 and rows > 0
    reports = sorted((empty / "data" / "reports").glob("*/index.html"))  # templates came from the wheel
    assert len(reports) == 2

    # The CLI's default DAGSTER_HOME was configured from the wheel's copy of the top-level dagster.yaml
    # (the run queue and its limits), its storage paths left out: the storage is that folder.
    shipped = subprocess.run([str(installed / "python"), "-c", "from roster_pipeline.cli.dagster_home import "
                              "local_instance_file; print(local_instance_file())"], cwd=empty, env=clean_env(),
                             capture_output=True, text=True, check=True).stdout.strip()
    assert shipped.startswith(str(installed.parent)) and shipped.endswith("roster_pipeline/dagster.yaml")
    home = empty / "data" / "dagster_home"
    local = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert yaml.safe_load((home / "dagster.yaml").read_text()) == {
        key: value for key, value in local.items() if key not in ("storage", "local_artifact_storage", "compute_logs")}
    assert (home / "history" / "runs.db").is_file() and (home / "schedules" / "schedules.db").is_file()


def test_dagster_validates_the_installed_definitions(installed, tmp_path):
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump({"load_from": [{"python_module": {
        "module_name": "roster_pipeline.definitions", "attribute": "defs", "location_name": "roster_pipeline"}}]}))
    result = subprocess.run([str(installed / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
                            cwd=tmp_path, env=clean_env(ROSTER_DATA_DIR=str(tmp_path / "data")),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Validation successful" in result.stdout + result.stderr


def test_the_dockerfile_builds_the_image_the_helm_values_name():
    """No Docker engine runs here, so check what can be checked: sources, user, entry point."""
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, flags=re.M):
        for path in source.split():
            assert (REPO / path).exists(), path
    assert re.findall(r"^USER (\S+)", dockerfile, flags=re.M)[-1] not in ("root", "0")
    assert "pip wheel" in dockerfile and "pip install -e" not in dockerfile
    values = yaml.safe_load((REPO / "deploy" / "helm-values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    command = re.search(r"^CMD (\[.*?\])$", dockerfile, flags=re.M | re.S)[1].replace("\\\n", "")
    assert '"dagster", "api", "grpc"' in command
    for flag, value in zip(args[::2], args[1::2]):
        assert f'"{flag}", "{value}"' in command
    assert f'"--port", "{deployment["port"]}"' in command
