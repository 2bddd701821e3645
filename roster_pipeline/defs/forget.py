"""A forgotten district's records in the Dagster instance: its runs, their logs, its check results, its partition.

Dagster has no "forget this partition" (`wipe_asset_partitions` is not implemented by its SQL
storages in 1.13), so this deletes what the instance keeps per district through what it does
offer: `delete_run` (the run and its event log), the compute-log manager's `delete_logs`, and
`delete_dynamic_partition`. Two index tables keep copies that `delete_run` leaves: the asset-check
executions (keyed by the run) and each asset's cached latest materialization; both are cleared
for the deleted runs with Dagster's own table definitions. A local (SQLite) instance then gets a
VACUUM, since a delete only frees SQLite's pages and the bytes stay in the file until reused.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from dagster import DagsterInstance, RunsFilter

from roster_pipeline.defs.constants import DISTRICT_PARTITIONS_NAME

PARTITION_TAG = "dagster/partition"  # the tag Dagster puts on a partition's runs


def forget_district_runs(instance: DagsterInstance, district_id: str) -> int:
    """Delete the district's runs with everything recorded about them, and its partition; how many runs."""
    runs = instance.get_run_ids(RunsFilter(tags={PARTITION_TAG: district_id}))
    storage = instance.event_log_storage
    for run_id in runs:
        instance.delete_run(run_id)
        instance.compute_log_manager.delete_logs(prefix=[run_id])
        shard = getattr(storage, "path_for_shard", None)  # SQLite keeps a file per run
        if shard is not None:
            Path(shard(run_id)).unlink(missing_ok=True)
    if runs and hasattr(storage, "index_connection"):
        _clear_index_copies(storage, runs)
    if instance.has_dynamic_partition(DISTRICT_PARTITIONS_NAME, district_id):
        instance.delete_dynamic_partition(DISTRICT_PARTITIONS_NAME, district_id)
    return len(runs)


def _clear_index_copies(storage, runs: list[str]) -> None:
    from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, AssetKeyTable

    with storage.index_connection() as conn:
        conn.execute(AssetCheckExecutionsTable.delete().where(AssetCheckExecutionsTable.c.run_id.in_(runs)))
        conn.execute(AssetKeyTable.update().where(AssetKeyTable.c.last_run_id.in_(runs)).values(
            last_materialization=None, last_run_id=None, cached_status_data=None))


def sqlite_folders(instance) -> list[Path]:
    """The folders of the instance's SQLite storage, from its configuration (none for Postgres).

    Not DAGSTER_HOME itself: the README's `dg dev` line makes the repository root DAGSTER_HOME,
    and only the storage under data/dagster_home is the instance's.
    """
    import yaml

    ref = instance.get_ref()
    folders = set()
    for data in (ref.storage_data, ref.run_storage_data, ref.event_storage_data, ref.schedule_storage_data):
        if data is not None and "sqlite" in data.class_name.lower():
            base = (yaml.safe_load(data.config_yaml) or {}).get("base_dir")
            if base:
                folders.add(Path(base).resolve())
    return sorted(f for f in folders if not any(f != other and other in f.parents for other in folders))


def vacuum_sqlite_storage(folders: list[Path]) -> list[str]:
    """VACUUM every SQLite file in these folders (best effort: a file in use is left); the files done."""
    done = []
    for folder in folders:
        for path in sorted(folder.rglob("*.db")):
            with open(path, "rb") as file:
                if file.read(16) != b"SQLite format 3\x00":
                    continue
            try:
                with closing(sqlite3.connect(path, timeout=5)) as db:
                    db.execute("vacuum")
                done.append(str(path))
            except sqlite3.Error:
                continue
    return done
