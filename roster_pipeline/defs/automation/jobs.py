"""The district job: everything of one district (raw load, SQL models, checks, publish), and its run tags.

Sensors and the schedule add their request's tags to the job's; the CLI and the nightly batch pass
tags to `execute_in_process`; a UI launch gets only the job's `tags` (so the defaults live there)
and run_coordinator.py adds what it lacks. The run adds its own once it knows them: which kind of
sync the raw load did and why (`roster/sync_kind`, `roster/sync_reason`).
"""

from __future__ import annotations

from dagster import AssetCheckKey, AssetKey, AssetSelection, define_asset_job

from roster_pipeline.defs.constants import (
    APPROVAL_TAG,
    DISTRICT_SYNC_JOB,
    DISTRICT_TAG,
    FRESHNESS_CHECK,
    RAW_LOAD_OP,
    ROSTER_GROUP,
    TRIGGER_TAG,
    WAREHOUSE_TAG,
)
from roster_pipeline.defs.partitions import district_partitions

# Set by the run's raw load (defs/clever_raw): "incremental" or "full", and why: "181 events", or
# "no cursor", "cursor past retention", "events turned off", "full refresh asked".
SYNC_KIND_TAG = "roster/sync_kind"
SYNC_REASON_TAG = "roster/sync_reason"
# Beside APPROVAL_TAG when the command line approved (`approve`, `sync --accept-mass-change`);
# without it, or on a run launched from the UI, the approval came from the tag alone.
APPROVED_BY_TAG = "roster/approved_by"


def build_district_sync_job(warehouse_kind: str):
    """The job, tagged with the warehouse kind (the instance lets two DuckDB runs go at once).

    `tags`, not `run_tags`: a launch from the UI merges only `tags` into the run. A launch that
    names no trigger is a person's, hence the default `manual`; sensors and the CLI name theirs.
    """
    return define_asset_job(
        DISTRICT_SYNC_JOB,
        # Everything but the freshness check, which judges the district from outside its sync.
        selection=AssetSelection.all() - AssetSelection.checks(AssetCheckKey(AssetKey([ROSTER_GROUP, "published"]),
                                                                            FRESHNESS_CHECK)),
        partitions_def=district_partitions,
        tags={WAREHOUSE_TAG: warehouse_kind, TRIGGER_TAG: "manual"},
        description="Sync one district: load its Clever data (full refresh or events), rebuild its roster "
                    "tables, check them, and publish them when every check passes.",
    )


def sync_run_config(incremental: bool) -> dict:
    """Run config choosing a full refresh or an incremental (events) load."""
    return {"ops": {RAW_LOAD_OP: {"config": {"incremental": incremental}}}}


def run_tags(district_id: str, trigger: str) -> dict[str, str]:
    """Every run says which district and what started it (schedule, discovery, events, manual)."""
    return {DISTRICT_TAG: district_id, TRIGGER_TAG: trigger}


def approval_tags() -> dict[str, str]:
    """The tags of a run the command line approves past the mass-change guard."""
    return {APPROVAL_TAG: "true", APPROVED_BY_TAG: "command"}


def sync_kind(tags: dict[str, str]) -> str:
    """What kind of sync a run was, and why, in the CLI's words: "incremental, 181 events",
    "full: no cursor" ("" before its raw load decided)."""
    kind, reason = tags.get(SYNC_KIND_TAG), tags.get(SYNC_REASON_TAG)
    if not kind:
        return ""
    return f"{kind}, {reason}" if kind == "incremental" else f"{kind}: {reason}" if reason else kind
