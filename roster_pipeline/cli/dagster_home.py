"""The Dagster instance the command line runs through: `DAGSTER_HOME`, or a local one it sets up.

Every sync run goes through a Dagster instance, so runs from the command line show up in the UI
like scheduled ones. Without `DAGSTER_HOME` the CLI keeps a local instance (SQLite storage) under
the data directory, with the same run limits as production.
"""

from __future__ import annotations

import os
from pathlib import Path

from roster_pipeline.settings import data_dir

LOCAL_INSTANCE_YAML = """\
# Written by roster-pipeline for local use (SQLite storage under this folder).
# Production uses the project's deploy/dagster.yaml (Postgres storage). roster-pipeline
# rewrites this file when its defaults change: for settings of your own, use another DAGSTER_HOME.
telemetry:
  enabled: false
run_coordinator:                  # Dagster's queued coordinator; it tags runs launched from the UI
  module: roster_pipeline.defs.automation.run_coordinator
  class: RosterRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: dagster/partition    # runs of one district never overlap, however they were launched
        value:
          applyLimitPerUniqueValue: true
        limit: 1
      - key: roster/warehouse     # DuckDB: a run per core; the runs take turns on the file
        value: duckdb
        limit: 2
  pools:
    default_limit: 2   # warehouse steps, one per core; processes take turns on the DuckDB file
"""


def ensure_dagster_home() -> Path:
    """Use `DAGSTER_HOME`, or set up a local instance folder under the data directory."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        return Path(home)
    path = data_dir() / "dagster_home"
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    # A file an older roster-pipeline wrote is brought up to date (its run limits and coordinator).
    if not config.exists() or (config.read_text().startswith(LOCAL_INSTANCE_YAML.splitlines()[0])
                               and config.read_text() != LOCAL_INSTANCE_YAML):
        config.write_text(LOCAL_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(path)
    _create_storage_once(path)
    return path


def _create_storage_once(home: Path) -> None:
    """Create the local instance's SQLite storage under a lock, the first time.

    Dagster creates its tables when an instance is first opened; two commands started together on
    a new installation both did, and one failed ("table run_tags already exists"). Once the
    storage exists this costs one `exists()`.
    """
    if (home / "schedules" / "schedules.db").exists():
        return
    from dagster import DagsterInstance
    from filelock import FileLock

    with FileLock(home / ".create-storage.lock", timeout=120):
        if not (home / "schedules" / "schedules.db").exists():
            with DagsterInstance.get():
                pass
