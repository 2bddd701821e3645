"""The Dagster instance the command line runs through: `DAGSTER_HOME`, or a local one it sets up.

Every sync run goes through a Dagster instance, so runs from the command line show up in the UI
like scheduled ones. Without `DAGSTER_HOME` the CLI keeps a local instance (SQLite storage) in
`<data dir>/dagster_home`, configured by the project's top-level `dagster.yaml` (the run queue and
its limits; the wheel ships the file as `roster_pipeline/dagster.yaml`). From the repository root
that folder is the one the top-level file names for `dg dev`, so the UI shows the CLI's runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from roster_pipeline.settings import data_dir

WRITTEN_BY = "# Written by roster-pipeline"  # the first line of every file the CLI wrote, older versions' too
STORAGE_PATHS = ("storage", "local_artifact_storage", "compute_logs")  # where dg dev keeps the instance


def local_instance_file() -> Path:
    """The local instance's `dagster.yaml`: inside the installed package (the wheel ships it), else at the top of a checkout."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "dagster.yaml"
    return packaged if packaged.is_file() else package.parent / "dagster.yaml"


def local_instance_yaml() -> str:
    """The local instance's configuration for an instance folder of its own: its storage paths left out.

    The top-level file's paths name `data/dagster_home` relative to the working directory (the
    repository root, for `dg dev`); left out, Dagster keeps the storage in `DAGSTER_HOME` itself,
    which is that same folder when the CLI runs from the root, and still right anywhere else.
    """
    config = yaml.safe_load(local_instance_file().read_text())
    for key in STORAGE_PATHS:
        config.pop(key, None)
    return (f"{WRITTEN_BY} from the project's dagster.yaml (the local instance), less its storage paths:\n"
            "# the storage is this folder. It is rewritten when that file changes: for settings of your own,\n"
            "# use another DAGSTER_HOME. Production uses deploy/dagster.yaml (Postgres storage).\n"
            + yaml.safe_dump(config, sort_keys=False))


LOCAL_INSTANCE_YAML = local_instance_yaml()


def ensure_dagster_home() -> Path:
    """Use `DAGSTER_HOME`, or set up a local instance folder under the data directory."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        return Path(home)
    path = data_dir() / "dagster_home"
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    # A file a roster-pipeline wrote is brought up to date (run limits, coordinator); a file of the user's is kept.
    current = config.read_text() if config.exists() else None
    if current is None or (current.startswith(WRITTEN_BY) and current != LOCAL_INSTANCE_YAML):
        partial = path / f".dagster.yaml.{os.getpid()}"  # replaced in one step: a second command never reads half a file
        partial.write_text(LOCAL_INSTANCE_YAML)
        partial.replace(config)
    os.environ["DAGSTER_HOME"] = str(path)
    _create_storage_once(path)
    return path


def checkout_root(home: Path) -> Path | None:
    """The working directory, when `dg dev` started there opens the instance at `home`, the CLI's default.

    That is a checkout run with the default data directory: `home` is `./data/dagster_home` and
    `./dagster.yaml` is the local instance's file, whose storage paths name that folder.
    """
    cwd = Path.cwd()
    top = cwd / "dagster.yaml"
    if home.resolve() != (cwd / "data" / "dagster_home").resolve() or not top.is_file():
        return None
    try:
        same = yaml.safe_load(top.read_text()) == yaml.safe_load(local_instance_file().read_text())
    except (OSError, yaml.YAMLError):
        return None
    return cwd if same and (cwd / "workspace.yaml").is_file() else None


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
