"""A first `dg dev` is quiet and right: the README's command, run as written, without Clever settings.

The sensors skip with one line naming the missing settings (no ConfigError traceback every five
minutes), and Dagster does not warn about the repository's top-level dagster.yaml (the local
instance), which it does when started from the folder holding it while DAGSTER_HOME points
elsewhere: the README's line sets DAGSTER_HOME to that folder. The instance it opens is the one
the command line keeps in data/dagster_home, both ways. The checkout is a `dg` project ([tool.dg]
in pyproject.toml): `dg check defs` and `dg list defs` run from the repository root load the same
Definitions as workspace.yaml.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import yaml
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from roster_pipeline.defs.constants import (
    DISTRICT_BATCH_JOB,
    DISTRICT_SYNC_JOB,
    FRESHNESS_JOB,
    RAW_GROUP,
    REPORTS_GROUP,
    ROSTER_GROUP,
)
from roster_pipeline_tests.fixtures.services import CLEVER_VARS, free_port

PROJECT = Path(__file__).resolve().parents[2]
README = PROJECT / "README.md"
NOT_CONFIGURED = ("Clever is not configured: set CLEVER_DISTRICT_TOKENS, or CLEVER_CLIENT_ID and "
                  "CLEVER_CLIENT_SECRET.")
SENSORS = ("district_discovery", "clever_events")
TICKS = """
{ sensorsOrError(repositorySelector: {repositoryLocationName: "roster_pipeline", repositoryName: "__repository__"}) {
    ... on Sensors { results { name sensorState { ticks(limit: 5) { status skipReason error { message } } } } } } }
"""


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def readme_dg_dev_command() -> str:
    """The command the README's "Browse it in the Dagster UI" section leads with, as written."""
    block = re.search(r"```bash\n(.*?)```", readme_section("Browse it in the Dagster UI"), re.S).group(1)
    commands = [line for line in block.splitlines() if re.search(r"\bdg dev\b", line)]
    assert len(commands) == 1, block
    return commands[0]


@pytest.fixture
def no_clever(monkeypatch, tmp_path):
    for name in CLEVER_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROSTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


def test_sensors_and_schedule_skip_with_one_reason_without_clever_settings(no_clever, tmp_path):
    from roster_pipeline.definitions import build_definitions

    repository = build_definitions().get_repository_def()  # as the code server loads it from this environment
    resources = {name: repository.get_top_level_resources()[name] for name in ("clever", "warehouse")}  # the ticks get
    # Each context is closed inside the instance's block: a context left to the garbage collector
    # closes later, in another test, and points Dagster's current definitions-state storage back at
    # this test's deleted instance ("Attempted to resolve undefined DagsterInstance weakref").
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        for name in SENSORS:
            with build_sensor_context(instance=instance, repository_def=repository, resources=resources) as context:
                result = repository.get_sensor_def(name)(context)
            assert isinstance(result, SkipReason) and result.skip_message == NOT_CONFIGURED, name
        with build_schedule_context(instance=instance, repository_def=repository, resources=resources,
                                    scheduled_execution_time=datetime(2026, 11, 3, tzinfo=timezone.utc)) as context:
            nightly = repository.get_schedule_def("nightly_full_refresh")(context)
        assert [r.skip_message for r in nightly] == [NOT_CONFIGURED]


def test_a_malformed_clever_setting_still_fails_the_tick(no_clever, tmp_path):
    from roster_pipeline.defs.automation.sensors import build_discovery_sensor
    from roster_pipeline.defs.resources import CleverResource
    from roster_pipeline.settings import ConfigError

    with DagsterInstance.local_temp(str(tmp_path)) as instance, pytest.raises(ConfigError), build_sensor_context(
            instance=instance, resources={"clever": CleverResource(district_tokens="not-a-district=token")}) as context:
        build_discovery_sensor(300)(context)


def checkout(root: Path) -> Path:
    """A repository checkout: the venv and the three yaml files (the local and production instances, the workspace)."""
    root.mkdir()
    (root / ".venv").symlink_to(Path(sys.executable).parents[1])
    for name in ("workspace.yaml", "dagster.yaml", "deploy/dagster.yaml"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text((PROJECT / name).read_text())
    return root


def checkout_after_demo(root: Path) -> Path:
    """A repository checkout as `scripts/demo` leaves it: the yaml files and the CLI's data/dagster_home."""
    checkout(root)
    (root / "data" / "dagster_home").mkdir(parents=True)
    from roster_pipeline.cli.dagster_home import LOCAL_INSTANCE_YAML

    (root / "data" / "dagster_home" / "dagster.yaml").write_text(LOCAL_INSTANCE_YAML)  # as ensure_dagster_home does
    return root


def dagster_home_folders(root: Path) -> set[str]:
    """The folders Dagster keeps an instance's storage in, found directly under `root`."""
    return {name for name in ("history", "schedules", "storage") if (root / name).exists()}


def sensor_ticks(port: int) -> dict[str, list[dict]]:
    reply = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": TICKS}, timeout=10).json()
    results = ((reply.get("data") or {}).get("sensorsOrError") or {}).get("results") or []
    return {r["name"]: r["sensorState"]["ticks"] for r in results}


# The README's command as written, and the same with the older `dagster dev`; each with click's variable
# for its --port option, so the command stays as written.
DEV_COMMANDS = {"dg dev": "DAGSTER_DG_DEV_PORT", "dagster dev": "DAGSTER_CLI_DEV_PORT"}
# `dagster dev` warns that `dg dev` supersedes it (Dagster's own notice); `dg dev` itself warns of nothing.
SUPERSEDED = ("SupersessionWarning: Function `dev_command` is superseded and its usage is discouraged. "
              "Use 'dg dev' instead.")


@pytest.mark.parametrize("dev", DEV_COMMANDS)
def test_the_readme_dg_dev_command_starts_quietly_and_the_sensors_skip(tmp_path, dev):
    command = readme_dg_dev_command().replace("dg dev", dev)
    root = checkout_after_demo(tmp_path / "checkout")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in CLEVER_VARS and k != "DAGSTER_HOME"}
    env[DEV_COMMANDS[dev]] = str(port)

    def default_signals():  # a process started from a background job may inherit ignored SIGINT/SIGTERM
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    log = tmp_path / "dagster_dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(["bash", "-c", command], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=default_signals)
    ticks: dict[str, list[dict]] = {}
    try:
        deadline = time.monotonic() + 45
        # A tick is listed as STARTED while it evaluates: wait for each sensor's first finished tick.
        while time.monotonic() < deadline and not all(
                ticks.get(name) and all(t["status"] != "STARTED" for t in ticks[name]) for name in SENSORS):
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
            try:
                ticks = sensor_ticks(port)
            except httpx.HTTPError:
                continue
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as a person stops it
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text())

    for name in SENSORS:
        assert ticks.get(name), f"no {name} tick within 45 s:\n{output[-3000:]}"
        assert [(t["status"], t["skipReason"], t["error"]) for t in ticks[name]] == [("SKIPPED", NOT_CONFIGURED, None)]
        assert f"Sensor {name} skipped: {NOT_CONFIGURED}" in output
    assert f"Serving dagster-webserver on http://127.0.0.1:{port}" in output
    assert "dagster.yaml" not in output, output  # "Found a dagster instance configuration value (dagster.yaml) ..."
    assert "Traceback" not in output and "ConfigError" not in output, output
    assert not re.search(r" - (WARNING|ERROR|CRITICAL) - ", output), output
    python_warnings = re.findall(r"\w+Warning: .*", output)
    assert python_warnings == ([] if dev == "dg dev" else [SUPERSEDED]), python_warnings

    # The instance it opened is the command line's: the CLI's own file in data/dagster_home sees its
    # sensors' ticks, and nothing of an instance landed at the top of the checkout.
    assert dagster_home_folders(root) == set(), sorted(p.name for p in root.iterdir())
    with DagsterInstance.from_config(str(root / "data" / "dagster_home")) as instance:
        states = instance.all_instigator_state()
        skipped = {state.instigator_name: [tick.skip_reason for tick in instance.get_ticks(state.instigator_origin_id,
                                                                                            state.selector_id)]
                   for state in states if state.instigator_name in SENSORS}
    assert skipped == {name: [NOT_CONFIGURED] for name in SENSORS}


OLDER_CLI_FILE = """\
# Written by roster-pipeline for local use (SQLite storage under this folder).
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 8
"""  # what an older roster-pipeline wrote: its first line, other limits and no run coordinator


def test_a_sync_from_the_repository_root_shows_in_the_instance_dg_dev_opens(own_sandbox, tmp_path, monkeypatch):
    """`roster-pipeline sync` with the defaults, then the instance opened as the README's `dg dev` opens it."""
    from roster_pipeline.cli.dagster_home import LOCAL_INSTANCE_YAML, STORAGE_PATHS

    server = own_sandbox(seed=5, students=200)
    district_id = server.data.specs[0].id
    root = checkout(tmp_path / "checkout")
    (root / "data" / "dagster_home").mkdir(parents=True)
    (root / "data" / "dagster_home" / "dagster.yaml").write_text(OLDER_CLI_FILE)
    for name in ("ROSTER_DATA_DIR", "DAGSTER_HOME", "ROSTER_WAREHOUSE"):  # the defaults: ./data, and the CLI's own
        monkeypatch.delenv(name, raising=False)
    sync = subprocess.run([str(root / ".venv" / "bin" / "roster-pipeline"), "sync"], cwd=root, env=dict(os.environ),
                          capture_output=True, text=True, timeout=300)
    assert sync.returncode == 0, sync.stdout[-3000:] + sync.stderr[-3000:]

    # The CLI's DAGSTER_HOME is data/dagster_home; the older file there was brought up to date: the
    # top-level file's settings, its storage paths left out (the storage is that folder).
    written = (root / "data" / "dagster_home" / "dagster.yaml").read_text()
    assert written == LOCAL_INSTANCE_YAML
    top = yaml.safe_load((root / "dagster.yaml").read_text())
    assert yaml.safe_load(written) == {k: v for k, v in top.items() if k not in STORAGE_PATHS}
    assert {top[key].get("config", top[key].get("sqlite"))["base_dir"] for key in STORAGE_PATHS} == {
        "data/dagster_home", "data/dagster_home/storage"}

    monkeypatch.chdir(root)  # dg dev runs from the root, with DAGSTER_HOME=$PWD
    monkeypatch.setenv("DAGSTER_HOME", str(root))
    with DagsterInstance.get() as instance:
        assert type(instance.run_coordinator).__name__ == "RosterRunCoordinator"
        assert instance.get_settings("concurrency") == top["concurrency"]
        (run,) = instance.get_run_records(RunsFilter(tags={"dagster/partition": district_id}))
        assert run.dagster_run.status == DagsterRunStatus.SUCCESS
        assert run.dagster_run.tags["roster/district"] == district_id
        materialized = {r.asset_key.to_user_string() for r in instance.get_records_for_run(
            run.dagster_run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records}
    assert {"clever_raw/students", "roster/published", "reports/school_confirmation"} <= materialized
    assert (root / "data" / "dagster_home" / "storage" / run.dagster_run.run_id / "compute_logs").is_dir()
    assert dagster_home_folders(root) == set()


def test_the_readme_gives_the_ui_address_and_the_three_steps_of_a_district_run(no_clever):
    from roster_pipeline.definitions import build_definitions

    section = readme_section("Browse it in the Dagster UI")
    assert "http://127.0.0.1:3000" in section  # what `dg dev` prints without --port
    job = build_definitions().resolve_job_def("district_sync")
    steps = {node.name for node in job.graph.node_defs}
    assert steps == {"clever_raw", "roster_models", "reports__school_confirmation"}
    assert "a run has three steps (raw load, roster, reports)" in " ".join(section.split())


def run_dg(*args: str, home: Path, data: Path) -> subprocess.CompletedProcess:
    """`dg ARGS` from the repository root, as a person with the project's venv active runs it.

    No Clever settings (the sensors skip), a Dagster instance of its own in a temporary folder
    (without DAGSTER_HOME, dg would make a temporary instance configured by the top-level
    dagster.yaml, whose storage is the checkout's own data/dagster_home), and the warehouse in a
    temporary data folder.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # as the CLI's local instance has it
    venv = Path(sys.executable).parents[1]
    env = {k: v for k, v in os.environ.items() if k not in CLEVER_VARS}
    env.update(DAGSTER_HOME=str(home), ROSTER_DATA_DIR=str(data), VIRTUAL_ENV=str(venv),
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return subprocess.run([str(venv / "bin" / "dg"), *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_dg_check_defs_loads_the_definitions_from_the_repository_root(tmp_path):
    result = run_dg("check", "defs", home=tmp_path / "dagster_home", data=tmp_path / "data")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "All definitions loaded successfully." in result.stdout, output
    assert "Traceback" not in output, output


def test_dg_list_defs_lists_the_groups_jobs_and_automations_that_the_code_builds(no_clever, tmp_path):
    from roster_pipeline.definitions import build_definitions

    result = run_dg("list", "defs", "--json", home=tmp_path / "dagster_home", data=tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr
    listed = json.loads(result.stdout)

    groups = {asset["group_name"] for asset in listed["assets"]}
    assert groups == {RAW_GROUP, ROSTER_GROUP, REPORTS_GROUP}
    assert {job["name"] for job in listed["jobs"]} == {DISTRICT_SYNC_JOB, DISTRICT_BATCH_JOB, FRESHNESS_JOB}
    assert sorted(s["name"] for s in listed["schedules"]) == ["daily_freshness", "nightly_full_refresh"]
    assert sorted(s["name"] for s in listed["sensors"]) == sorted([*SENSORS, "district_alerts"])
    assert {"clever", "warehouse", "rules", "dlt"} <= {r["name"] for r in listed["resources"]}

    # The same assets and checks as the Definitions the code builds (workspace.yaml's), nothing autoloaded besides.
    repository = build_definitions().get_repository_def()
    assert {a["asset_key"] for a in listed["assets"]} == {
        key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert len(listed["asset_checks"]) == len(repository.asset_graph.asset_check_keys)
    # The reports asset names the subjects the rules profile keeps (the bundled default: math and ELA).
    (reports,) = [a for a in listed["assets"] if a["group_name"] == REPORTS_GROUP]
    assert "the math and ELA sections (`subjects.keep` of default.toml)" in reports["description"]
