"""Every name the Dagster layer shows or matches on: owner, groups, pool, jobs, checks and `roster/*` tags.

In one place because the UI, the run queue (dagster.yaml's limits), the CLI and the alerts all
match on these strings; a renamed tag must change everywhere at once.
"""

OWNER = "team:data-engineering"

# Asset groups, in the order a district's data flows through them.
RAW_GROUP = "clever_raw"
ROSTER_GROUP = "roster"
REPORTS_GROUP = "reports"

# DuckDB allows one writing process: dagster.yaml limits this pool (Postgres runs use none).
WAREHOUSE_POOL = "roster_warehouse"

DISTRICT_PARTITIONS_NAME = "district"
DISTRICT_SYNC_JOB = "district_sync"
RAW_LOAD_OP = "clever_raw"
DISTRICT_BATCH_JOB = "district_batch"
BATCH_OP = "sync_districts"
FRESHNESS_JOB = "district_freshness"

# The blocking checks on each mart.
CONTRACT_CHECK = "pandera_contract"
MASS_CHANGE_CHECK = "mass_change_guard"
FRESHNESS_CHECK = "freshness"  # on roster/published, per district; recorded by the district_freshness job

# Run tags of this project.
DISTRICT_TAG = "roster/district"
DISTRICT_NAME_TAG = "roster/district_name"  # set by the run itself once it has read the district from Clever
TRIGGER_TAG = "roster/trigger"              # schedule, discovery, events, manual
WAREHOUSE_TAG = "roster/warehouse"          # duckdb or postgres: dagster.yaml's per-warehouse limit
BATCH_TAG = "roster/batch"                  # the nightly batch run a district's run belongs to
BATCH_SIZE_TAG = "roster/batch_size"
APPROVAL_TAG = "roster/accept_mass_change"  # "true": publish despite the mass-change guard, this run only
SKIP_ANALYST_COPY_TAG = "roster/skip_analyst_copy"  # a batch refreshes the analysts' file once, at its end

# Dagster's own tags that this project reads.
PARTITION_TAG = "dagster/partition"  # the district of every partitioned run, however it was launched
FROM_UI_TAG = "dagster/from_ui"      # the UI adds it to everything it launches
