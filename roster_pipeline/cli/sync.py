"""`roster-pipeline sync`: a full refresh (or Clever events since the cursor) of each district, as Dagster runs.

Every sync run goes through the Dagster instance at `DAGSTER_HOME` (a local one under the data
directory when unset), so runs from the command line show up in the UI like scheduled ones.
Dagster is imported inside `sync`, so `--help` and a mistake caught early stay fast.
"""

from __future__ import annotations

import sys

from roster_pipeline.cli.dagster_home import ensure_dagster_home
from roster_pipeline.cli.progress import ProgressDisplay
from roster_pipeline.operations.terminal import printable
from roster_pipeline.settings import ConfigError, data_dir, validate_district_id, warehouse_url


def sync(district_ids: list[str] | None = None, *, incremental: bool = False, trigger: str = "manual",
         accept_mass_change: bool = False, out=None) -> int:
    """Sync each district (all when none are named); 0 only if every run succeeds.

    Without `incremental` a full refresh; with it, Clever events since each district's cursor
    (falling back to a full refresh, with the reason logged, when events cannot be used).
    """
    out = out or sys.stdout
    ensure_dagster_home()
    from dagster import DagsterInstance

    from roster_pipeline.clever.client import discover_district_tokens
    from roster_pipeline.clever.source import PROGRESS_LOGGER
    from roster_pipeline.definitions import build_definitions
    from roster_pipeline.defs.automation.batch import sync_in_process
    from roster_pipeline.defs.automation.jobs import run_tags
    from roster_pipeline.defs.constants import (
        APPROVAL_TAG,
        DISTRICT_NAME_TAG,
        DISTRICT_PARTITIONS_NAME,
        DISTRICT_SYNC_JOB,
        SKIP_ANALYST_COPY_TAG,
    )
    from roster_pipeline.publishing.publish import published_district_names
    from roster_pipeline.settings import CleverSettings
    from roster_pipeline.warehouse.connection import Warehouse

    defs = build_definitions()
    warehouse = Warehouse(warehouse_url(), data_dir() / "dlt")
    warehouse.check_ready()  # a locked file or a refused login stops us here
    known = sorted(discover_district_tokens(CleverSettings.from_env()))
    if district_ids:
        for district_id in district_ids:
            validate_district_id(district_id, "--district")
        missing = sorted(set(district_ids) - set(known))
        if missing:
            raise ConfigError(f"--district {', '.join(missing)} has no Clever token (not authorized or not listed).")
        targets = list(dict.fromkeys(district_ids))
    else:
        targets = known
    if not targets:
        print("No districts have authorized the application yet; nothing to sync.", file=out)
        return 0
    names = published_district_names(warehouse, targets)  # runs say the name from the start when we know it
    failures = 0
    # The instance is opened before the job is resolved and closed afterwards: Dagster binds the
    # definitions to the instance that is current when they are resolved.
    with ProgressDisplay(out).attached(PROGRESS_LOGGER), DagsterInstance.get() as instance:
        new = [d for d in targets if not instance.has_dynamic_partition(DISTRICT_PARTITIONS_NAME, d)]
        if new:
            instance.add_dynamic_partitions(DISTRICT_PARTITIONS_NAME, new)
        job = defs.resolve_job_def(DISTRICT_SYNC_JOB)
        # Several districts: the analysts' DuckDB file (a copy of every district) is refreshed once,
        # at the end, as a batch run does, not after each district.
        batch = {SKIP_ANALYST_COPY_TAG: "true"} if len(targets) > 1 and warehouse.kind == "duckdb" else {}
        for district_id in targets:
            outcome = sync_in_process(
                job, instance, district_id, incremental=incremental,
                tags={**run_tags(district_id, trigger), **({APPROVAL_TAG: "true"} if accept_mass_change else {}),
                      **({DISTRICT_NAME_TAG: names[district_id]} if district_id in names else {}), **batch})
            print(printable(outcome.line()), file=out)  # the district's name (and schools' in problems) is Clever's
            for problem in outcome.problems:
                print(f"  {printable(problem)}", file=out)
            failures += not outcome.success
        if batch and failures < len(targets):
            from roster_pipeline.modeling.project import sql_project
            from roster_pipeline.warehouse.analyst_copy import refresh_analyst_file

            refresh_analyst_file(warehouse, sql_project().access_classes)
    print(f"{len(targets) - failures} of {len(targets)} districts synced.", file=out)
    return 1 if failures else 0
