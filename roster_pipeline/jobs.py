"""The one job: everything of one district (raw load, SQL models, checks, publish)."""

from dagster import AssetSelection, define_asset_job

from roster_pipeline.partitions import district_partitions

DISTRICT_SYNC_JOB = "district_sync"
RAW_LOAD_OP = "clever_raw"

def build_district_sync_job(warehouse_kind: str):
    """The job, tagged with the warehouse kind: the instance lets one DuckDB run write at a time."""
    return define_asset_job(
        DISTRICT_SYNC_JOB,
        selection=AssetSelection.all(),
        partitions_def=district_partitions,
        run_tags={"roster/warehouse": warehouse_kind},
        description="Sync one district: load its Clever data (full refresh or events), rebuild its roster "
                    "tables, check them, and publish them when every check passes.",
    )


def sync_run_config(incremental: bool) -> dict:
    """Run config choosing a full refresh or an incremental (events) load."""
    return {"ops": {RAW_LOAD_OP: {"config": {"incremental": incremental}}}}


def run_tags(district_id: str, trigger: str) -> dict[str, str]:
    """Every run says which district and what started it (schedule, discovery, events, manual)."""
    return {"roster/district": district_id, "roster/trigger": trigger}
