"""The `reports` group: each district's school confirmation pages, written after every publish."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from roster_pipeline.defs.clever_raw.assets import warehouse_pool
from roster_pipeline.defs.constants import OWNER, REPORTS_GROUP
from roster_pipeline.defs.partitions import district_partitions
from roster_pipeline.defs.resources import WarehouseResource
from roster_pipeline.defs.roster.assets import PUBLISHED_KEY
from roster_pipeline.reports.school_reports import reports_dir, write_reports

SCHOOL_REPORTS_KEY = AssetKey([REPORTS_GROUP, "school_confirmation"])


def build_school_confirmation(warehouse_kind: str):
    """The reports asset; it reads the warehouse, so on DuckDB it waits in the warehouse pool."""

    @asset(
        key=SCHOOL_REPORTS_KEY, group_name=REPORTS_GROUP, partitions_def=district_partitions, deps=[PUBLISHED_KEY],
        owners=[OWNER], kinds={"html", "csv"}, pool=warehouse_pool(warehouse_kind),
        description="Roster confirmation pages for school liaisons: one self-contained HTML page per school (and CSVs "
                    "of the same tables) with students per grade against the previous sync, the math and ELA sections "
                    "with teacher, period and enrollment count, and every excluded record with the reason in plain "
                    "words and the fix to make in the SIS; plus a district index. Written under ROSTER_REPORTS_DIR "
                    "(default: reports/ in the data directory), one folder per district.",
    )
    def school_confirmation(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        written = write_reports(warehouse.warehouse(), context.partition_key, reports_dir())
        context.log.info(f"Wrote {written['schools']} school pages to {written['folder']}.")
        return MaterializeResult(metadata={
            "index": MetadataValue.path(str(written["index"])),
            "schools": MetadataValue.int(written["schools"]),
            "excluded_records": MetadataValue.int(written["excluded"]),
            "schools_preview": MetadataValue.md(written["preview"]),
        })

    return school_confirmation
