"""dlt's copies of a district's rows on disk, removed once they are in the warehouse.

dlt keeps every load package after loading it: the rows as parquet files (names, birth dates,
state ids, demographic flags) and the SQL it ran, under the pipeline's folder. That copy sits
outside the warehouse and its roles (on Postgres too), so it goes as soon as the load committed.
dlt's own `delete_completed_jobs` setting cannot be set through `dlt.pipeline()` in dlt 1.31 (the
pipeline builds its load storage configuration with the volume path only) and would keep failed
packages anyway; removing the folders is one `rmtree` each.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dlt


def remove_loaded_packages(pipeline: dlt.Pipeline) -> int:
    """Delete every package dlt finished with (loaded, or aborted as a killed run's); returns how many.

    The state and schema dlt needs for the next load live outside these folders (state.json, the
    warehouse's `_dlt_*` tables), so nothing the next sync reads is lost.
    """
    loaded = Path(pipeline.working_dir) / "load" / "loaded"
    removed = 0
    for package in loaded.glob("*"):
        if package.is_dir():
            shutil.rmtree(package, ignore_errors=True)
            removed += 1
    return removed
